import { livemigError } from '../../errors.js';

/**
 * A "newc" cpio archive (the format the kernel unpacks as an initramfs), written in memory.
 * Pure: entries in, bytes out. Times are 0 and inodes are numbered in order, so the same
 * entries always give the same bytes (the guest cache hashes its inputs, not its output).
 */

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Uint8Array; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'char'; path: string; major: number; minor: number; mode?: number };

const MAGIC = '070701';
const TRAILER = 'TRAILER!!!';
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const FIELD_MAX = 0xffffffff;

/** The archive, entries in the order given (a directory must come before what it holds). */
export function newcArchive(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  const push = (part: Buffer): void => {
    parts.push(part);
    offset += part.length;
  };
  const seen = new Set<string>();
  entries.forEach((entry, index) => {
    const path = checkedPath(entry.path, seen);
    const { mode, data, rdev } = describe(entry);
    push(header({ ino: index + 1, mode, nlink: entry.type === 'dir' ? 2 : 1, size: data.length, rdev, nameBytes: Buffer.byteLength(path) + 1 }));
    push(padded(Buffer.from(`${path}\0`), offset));
    push(padded(Buffer.from(data), offset));
  });
  push(header({ ino: 0, mode: 0, nlink: 1, size: 0, rdev: [0, 0], nameBytes: TRAILER.length + 1 }));
  push(padded(Buffer.from(`${TRAILER}\0`), offset));
  return Buffer.concat(parts);
}

function describe(entry: CpioEntry): { mode: number; data: Uint8Array; rdev: [number, number] } {
  switch (entry.type) {
    case 'dir':
      return { mode: S_IFDIR | (entry.mode ?? 0o755), data: new Uint8Array(0), rdev: [0, 0] };
    case 'file':
      return { mode: S_IFREG | (entry.mode ?? 0o644), data: entry.data, rdev: [0, 0] };
    case 'symlink':
      return { mode: S_IFLNK | 0o777, data: Buffer.from(entry.target), rdev: [0, 0] };
    case 'char':
      return { mode: S_IFCHR | (entry.mode ?? 0o600), data: new Uint8Array(0), rdev: [entry.major, entry.minor] };
  }
}

/** Paths are relative to the archive's root, as the kernel expects: `init`, `bin/busybox`. */
function checkedPath(path: string, seen: Set<string>): string {
  const bad = (why: string): never => {
    throw livemigError('LME_LAB_GUEST_BUILD', `initramfs entry ${JSON.stringify(path)}`, why);
  };
  if (path === '' || path.startsWith('/') || path.endsWith('/')) bad('paths are relative, without a leading or trailing /');
  if (path.split('/').some((part) => part === '' || part === '.' || part === '..')) bad('path has an empty, . or .. component');
  if (path.includes('\0')) bad('path contains NUL');
  if (seen.has(path)) bad('path appears twice');
  seen.add(path);
  return path;
}

interface Header {
  ino: number;
  mode: number;
  nlink: number;
  size: number;
  rdev: [number, number];
  nameBytes: number;
}

function header(h: Header): Buffer {
  // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
  const fields = [h.ino, h.mode, 0, 0, h.nlink, 0, h.size, 0, 0, h.rdev[0], h.rdev[1], h.nameBytes, 0];
  return Buffer.from(MAGIC + fields.map(hex8).join(''), 'ascii');
}

function hex8(value: number): string {
  if (!Number.isInteger(value) || value < 0 || value > FIELD_MAX) {
    throw livemigError('LME_LAB_GUEST_BUILD', 'initramfs', `cpio field value ${value} does not fit 32 bits`);
  }
  return value.toString(16).padStart(8, '0');
}

/** The part followed by NULs up to the next multiple of 4 of the archive offset. */
function padded(part: Buffer, offsetBefore: number): Buffer {
  const end = offsetBefore + part.length;
  const pad = (4 - (end % 4)) % 4;
  return pad === 0 ? part : Buffer.concat([part, Buffer.alloc(pad)]);
}
