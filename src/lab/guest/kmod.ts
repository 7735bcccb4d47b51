import { livemigError } from '../../errors.js';

/**
 * Kernel modules for the guest's initramfs, without depmod: a module's dependencies are in the
 * `depends=` entry of its ELF `.modinfo` section. Pure: bytes and name maps in, lists out.
 */

const ELF_MAGIC = 0x464c457f; // "\x7fELF", read little-endian
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const SECTION_HEADER_BYTES = 64;

/** `name` as the kernel spells module names: `virtio-net` and `virtio_net` are one module. */
export function moduleName(name: string): string {
  return name.replace(/\.ko$/, '').replace(/-/g, '_');
}

/** The `key=value` strings of a 64-bit little-endian module's `.modinfo` section. */
export function parseModinfo(elf: Uint8Array, file: string): Map<string, string[]> {
  const bad = (why: string): never => {
    throw livemigError('LME_LAB_GUEST_BUILD', file, `not a usable x86-64 kernel module: ${why}`);
  };
  const buf = Buffer.from(elf.buffer, elf.byteOffset, elf.byteLength);
  if (buf.length < 64 || buf.readUInt32LE(0) !== ELF_MAGIC) bad('no ELF header');
  if (buf[4] !== ELFCLASS64 || buf[5] !== ELFDATA2LSB) bad('not ELF64 little-endian');
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shnum = buf.readUInt16LE(0x3c);
  const shstrndx = buf.readUInt16LE(0x3e);
  if (shoff + shnum * SECTION_HEADER_BYTES > buf.length || shstrndx >= shnum) bad('section headers out of bounds');
  const section = (index: number): { name: number; offset: number; size: number } => {
    const at = shoff + index * SECTION_HEADER_BYTES;
    return { name: buf.readUInt32LE(at), offset: Number(buf.readBigUInt64LE(at + 0x18)), size: Number(buf.readBigUInt64LE(at + 0x20)) };
  };
  const names = section(shstrndx);
  const nameOf = (offset: number): string => {
    const start = names.offset + offset;
    return buf.toString('latin1', start, buf.indexOf(0, start));
  };
  for (let index = 0; index < shnum; index++) {
    const candidate = section(index);
    if (nameOf(candidate.name) !== '.modinfo') continue;
    if (candidate.offset + candidate.size > buf.length) bad('.modinfo out of bounds');
    const info = new Map<string, string[]>();
    for (const entry of buf.toString('latin1', candidate.offset, candidate.offset + candidate.size).split('\0')) {
      const eq = entry.indexOf('=');
      if (eq <= 0) continue;
      const key = entry.slice(0, eq);
      info.set(key, [...(info.get(key) ?? []), entry.slice(eq + 1)]);
    }
    return info;
  }
  return bad('no .modinfo section');
}

/** The modules a module needs loaded first (its `depends=`), by kernel name. */
export function moduleDepends(modinfo: Map<string, string[]>): string[] {
  return (modinfo.get('depends') ?? []).flatMap((list) => list.split(',')).filter(Boolean).map(moduleName);
}

/**
 * Every module `wanted` needs, dependencies first, each once. `dependsOf(name)` gives a module's
 * direct dependencies; `builtin` names need no loading (nor do their dependencies).
 */
export function loadOrder(wanted: readonly string[], dependsOf: (name: string) => string[], builtin: ReadonlySet<string> = new Set()): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, chain: string[]): void => {
    if (builtin.has(name) || state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      throw livemigError('LME_LAB_GUEST_BUILD', `module ${name}`, `dependency cycle ${[...chain, name].join(' -> ')}`);
    }
    state.set(name, 'visiting');
    for (const dependency of dependsOf(name)) visit(dependency, [...chain, name]);
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of wanted) visit(moduleName(name), []);
  return order;
}

/** Module names in a kernel's `modules.builtin` (lines such as `kernel/drivers/virtio/virtio.ko`). */
export function parseModulesBuiltin(text: string): Set<string> {
  return new Set(
    text
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean)
      .map((line) => moduleName(line.slice(line.lastIndexOf('/') + 1))),
  );
}
