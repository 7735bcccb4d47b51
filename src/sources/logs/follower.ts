/**
 * Follows one log file on this machine, by name, through rotations: chokidar tells when it
 * changed, a poll timer backs it up (events can be coalesced or missed across renames). Framing is
 * the LineScanner's; this module only reads bytes in order and keeps the position.
 *
 * - First start: at the end of the file (or its start, `startAt: 'start'`); a file that appears
 *   later is read from its start.
 * - Restart: from the saved position when the file is the same one (device, inode and its first
 *   bytes); a file replaced meanwhile is read from its start.
 * - Rename + create: the old file is read to its end, and again for `retireMs` (a writer may not
 *   have reopened yet), then closed; the new file is read from 0.
 * - copytruncate: the file got shorter than the position, or its first bytes changed (it was
 *   truncated and refilled between two looks): read from 0.
 * - Deleted: read to the end, closed; a re-created file is read from 0.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { watch, type FSWatcher } from 'chokidar';
import { errorMessage, LivemigError } from '../../errors.js';
import type { LineScanner } from './line-scanner.js';

/** Where a follower is in its file, as kept in the state file. */
export interface FollowPosition {
  path: string;
  dev: number;
  ino: number;
  /** Byte offset just after the last complete line handed on. */
  offset: number;
  /** base64 of the file's first bytes (up to 256), to tell a truncated-and-refilled file. */
  head: string;
}

export type RotationReason = 'rename' | 'truncate' | 'recreate';

export interface FollowerOptions {
  path: string;
  /** A scanner per open file (old and new files of a rotation are read side by side for a while). */
  makeScanner: () => LineScanner;
  resume?: FollowPosition;
  startAt?: 'end' | 'start';
  pollMs?: number;
  retireMs?: number;
  onRotate?: (reason: RotationReason) => void;
  onError?: (error: LivemigError) => void;
  /** The file was read (after an error: reading works again). */
  onRead?: () => void;
}

export interface Follower {
  start(): Promise<void>;
  stop(): Promise<void>;
  position(): FollowPosition | undefined;
}

const HEAD_BYTES = 256;
const CHUNK = 1 << 20;

interface OpenFile {
  fh: FileHandle;
  dev: number;
  ino: number;
  offset: number;
  head: Buffer;
  scanner: LineScanner;
}

export class FileFollower implements Follower {
  private current: OpenFile | undefined;
  private retired: { file: OpenFile; untilMs: number }[] = [];
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private again = false;
  private busy = false;
  private stopped = false;
  private failing = false;
  private readonly buffer = Buffer.allocUnsafe(CHUNK);
  private finalPosition: FollowPosition | undefined;

  constructor(private readonly options: FollowerOptions) {}

  async start(): Promise<void> {
    await this.openInitial();
    this.watcher = watch(this.options.path, { ignoreInitial: true, persistent: false, atomic: false });
    this.watcher.on('all', () => this.kick());
    this.watcher.on('error', () => this.kick());
    this.timer = setInterval(() => this.kick(), this.options.pollMs ?? 500);
    this.timer.unref();
    this.kick();
    await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.watcher?.close();
    await this.running;
    // Kept for the state file written after the sources stopped.
    this.finalPosition = this.position();
    for (const { file } of this.retired) await file.fh.close().catch(() => undefined);
    this.retired = [];
    await this.current?.fh.close().catch(() => undefined);
    this.current = undefined;
  }

  position(): FollowPosition | undefined {
    const f = this.current;
    if (!f) return this.finalPosition;
    return { path: this.options.path, dev: f.dev, ino: f.ino, offset: f.offset - f.scanner.pendingBytes, head: f.head.toString('base64') };
  }

  /** Runs one look at the file now, or right after the one under way. */
  kick(): void {
    if (this.stopped) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.look();
          if (this.failing) this.options.onRead?.();
          this.failing = false;
        } catch (err) {
          this.failing = true;
          this.options.onError?.(err instanceof LivemigError ? err : new LivemigError('LME_LOG_READ', [this.options.path, 'local', errorMessage(err)]));
        }
      } while (this.again && !this.stopped);
      this.busy = false;
    })();
  }

  private async openInitial(): Promise<void> {
    const st = await statOrNull(this.options.path);
    if (!st) return;
    const file = await this.openFile(st.dev, st.ino);
    const resume = this.options.resume;
    if (resume && resume.dev === st.dev && resume.ino === st.ino && st.size >= resume.offset && (await sameHead(file, resume.head))) {
      file.offset = resume.offset;
    } else if (resume) {
      file.offset = 0; // a different file than the one we left: all of it is new to us
    } else if ((this.options.startAt ?? 'end') === 'end') {
      file.offset = await lastLineEnd(file.fh, st.size);
    }
    this.current = file;
  }

  private async openFile(dev: number, ino: number): Promise<OpenFile> {
    const fh = await open(this.options.path, 'r');
    const file: OpenFile = { fh, dev, ino, offset: 0, head: Buffer.alloc(0), scanner: this.options.makeScanner() };
    await refreshHead(file);
    return file;
  }

  private async look(): Promise<void> {
    const now = Date.now();
    for (const r of [...this.retired]) {
      await this.drain(r.file);
      if (now >= r.untilMs) {
        r.file.scanner.flush();
        await r.file.fh.close().catch(() => undefined);
        this.retired.splice(this.retired.indexOf(r), 1);
      }
    }
    const st = await statOrNull(this.options.path);
    const cur = this.current;
    if (cur && (!st || st.ino !== cur.ino || st.dev !== cur.dev)) {
      await this.drain(cur);
      this.retired.push({ file: cur, untilMs: now + (this.options.retireMs ?? 2000) });
      this.current = undefined;
      // The old file's link count tells a rename from a deletion, whether or not the path has been
      // created again by now (a writer that recreates it late leaves the path missing for a poll).
      const links = (await cur.fh.stat()).nlink;
      this.options.onRotate?.(links > 0 ? 'rename' : 'recreate');
    } else if (cur && st) {
      if (st.size < cur.offset || (st.size > cur.offset && cur.head.length > 0 && !(await sameHead(cur, cur.head.toString('base64'))))) {
        cur.scanner.flush();
        cur.offset = 0;
        cur.head = Buffer.alloc(0);
        this.options.onRotate?.('truncate');
      }
    }
    if (!this.current && st) {
      this.current = await this.openFile(st.dev, st.ino);
    }
    if (this.current) await this.drain(this.current);
  }

  /** Reads from the offset to the end of the file. */
  private async drain(file: OpenFile): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const { bytesRead } = await file.fh.read(this.buffer, 0, CHUNK, file.offset);
      if (bytesRead === 0) break;
      file.offset += bytesRead;
      file.scanner.push(this.buffer.subarray(0, bytesRead));
      if (bytesRead < CHUNK) break;
    }
    if (file.head.length < HEAD_BYTES) await refreshHead(file);
  }
}

async function statOrNull(path: string): Promise<{ dev: number; ino: number; size: number } | null> {
  try {
    const st = await stat(path);
    return { dev: st.dev, ino: st.ino, size: st.size };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new LivemigError('LME_LOG_READ', [path, 'local', errorMessage(err)]);
  }
}

async function readHead(fh: FileHandle): Promise<Buffer> {
  const buf = Buffer.alloc(HEAD_BYTES);
  const { bytesRead } = await fh.read(buf, 0, HEAD_BYTES, 0);
  return buf.subarray(0, bytesRead);
}

async function refreshHead(file: OpenFile): Promise<void> {
  file.head = await readHead(file.fh);
}

async function sameHead(file: OpenFile, headBase64: string): Promise<boolean> {
  const saved = Buffer.from(headBase64, 'base64');
  const now = await readHead(file.fh);
  return now.length >= saved.length && now.subarray(0, saved.length).equals(saved);
}

/** The offset after the last newline at or before `size` (start at the end without a half line). */
async function lastLineEnd(fh: FileHandle, size: number): Promise<number> {
  if (size === 0) return 0;
  const span = Math.min(size, 1 << 16);
  const buf = Buffer.alloc(span);
  const { bytesRead } = await fh.read(buf, 0, span, size - span);
  const nl = buf.subarray(0, bytesRead).lastIndexOf(10);
  return nl < 0 ? (size > span ? size : 0) : size - span + nl + 1;
}
