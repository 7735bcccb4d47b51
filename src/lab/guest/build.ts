import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LivemigError, errorMessage, livemigError } from '../../errors.js';

/** `-bios` images are mapped just below 4 GiB; the guest's reset vector sits at the end of 64 KiB. */
export const GUEST_IMAGE_BYTES = 64 * 1024;

export const DEFAULT_GUEST_CACHE_DIR = join(tmpdir(), 'livemig-lab', 'guest');

export interface BuildGuestOptions {
  /** The assembler; a name looked up on PATH or a path. */
  nasm?: string;
}

/**
 * Assembles dirty.asm into a 64 KiB image, once per source version: the image is cached in
 * outDir under the source's hash. Returns the image's path.
 */
export async function buildDirtyGuest(outDir: string = DEFAULT_GUEST_CACHE_DIR, options: BuildGuestOptions = {}): Promise<string> {
  const source = dirtyGuestSource();
  const hash = createHash('sha256').update(await readFile(source)).digest('hex').slice(0, 16);
  const image = join(outDir, `dirty-${hash}.bin`);
  if ((await sizeOf(image)) === GUEST_IMAGE_BYTES) return image;

  await mkdir(outDir, { recursive: true });
  // Parallel test workers may build at once: each writes its own file, rename is atomic.
  const partial = `${image}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    await assemble(options.nasm ?? 'nasm', source, partial);
    const size = await sizeOf(partial);
    if (size !== GUEST_IMAGE_BYTES) {
      throw livemigError('LME_LAB_GUEST_BUILD', source, `image is ${size} bytes, expected ${GUEST_IMAGE_BYTES}`);
    }
    await rename(partial, image);
  } finally {
    await rm(partial, { force: true });
  }
  return image;
}

/**
 * dirty.asm sits next to this module: in src/ when run through tsx, in dist/ once the build
 * has copied it there. From a dist/ inside the repository, src/ is the fallback.
 */
export function dirtyGuestSource(): string {
  const candidates = [
    fileURLToPath(new URL('./dirty.asm', import.meta.url)),
    fileURLToPath(new URL('../../../src/lab/guest/dirty.asm', import.meta.url)),
  ];
  const found = candidates.find((path) => existsSync(path));
  if (!found) {
    throw livemigError('LME_LAB_GUEST_BUILD', candidates.join(' or '), 'no such file; the build must copy src/lab/guest/dirty.asm');
  }
  return found;
}

function assemble(nasm: string, source: string, output: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(nasm, ['-f', 'bin', '-o', output, source], { timeout: 30_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new LivemigError('LME_LAB_TOOL_MISSING', [nasm, 'install nasm (Debian package nasm)'], { cause: err }));
      } else {
        reject(new LivemigError('LME_LAB_GUEST_BUILD', [source, stderr.trim() || errorMessage(err)], { cause: err }));
      }
    });
  });
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}
