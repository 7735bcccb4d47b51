import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

/**
 * A lab run's temporary directory, `$TMPDIR/lmelab-PID-RANDOM`: sockets, nova logs, counter
 * files, and `pids`, the processes the run started (QEMUs; on the libvirt engine its libvirt
 * daemons and their domains' QEMUs too). A run killed with SIGKILL runs no hook of its own; the
 * next run (or `lab --cleanup`) finds directories whose PID is dead, kills the processes listed
 * there (checking each still names the directory on its command line), and removes the directory.
 */

export const LAB_PREFIX = 'lmelab';
const PIDS_FILE = 'pids';

export interface RunDir {
  id: string;
  path: string;
}

export async function createRunDir(parent: string = tmpdir()): Promise<RunDir> {
  const id = `${LAB_PREFIX}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const path = join(parent, id);
  await mkdir(path, { recursive: true, mode: 0o700 });
  return { id, path };
}

/** Notes a process the run started, before anything can kill the run. */
export function recordPid(run: RunDir, pid: number): void {
  appendFileSync(join(run.path, PIDS_FILE), `${pid}\n`);
}

/** Run directory names of dead runs. Pure. */
export function staleRunDirs(names: readonly string[], isAlive: (pid: number) => boolean): string[] {
  const pattern = new RegExp(`^${LAB_PREFIX}-(\\d+)-[0-9a-f]+$`);
  return names.filter((name) => {
    const pid = Number(pattern.exec(name)?.[1] ?? Number.NaN);
    return Number.isSafeInteger(pid) && !isAlive(pid);
  });
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kills the processes a dead run left (only those whose command line names its directory). */
export async function removeStaleRunDirs(parent: string = tmpdir()): Promise<{ dirs: string[]; killed: { pid: number; command: string }[] }> {
  const names = await readdir(parent).catch(() => [] as string[]);
  const stale = staleRunDirs(names, processAlive);
  const killed: { pid: number; command: string }[] = [];
  const removed: string[] = [];
  for (const name of stale) {
    const dir = join(parent, name);
    // Another user's leftovers (a run as root, seen by a run as a user) are not ours to remove.
    if ((await stat(dir).catch(() => undefined))?.uid !== process.getuid?.()) continue;
    const pids = (await readFile(join(dir, PIDS_FILE), 'utf8').catch(() => ''))
      .split('\n')
      .map(Number)
      .filter((pid) => Number.isSafeInteger(pid) && pid > 1);
    for (const pid of pids) {
      const command = killIfOurs(pid, dir);
      if (command !== null) killed.push({ pid, command });
    }
    await rm(dir, { recursive: true, force: true }).then(() => removed.push(name), () => undefined);
  }
  return { dirs: removed, killed };
}

/** SIGKILL to a pid whose command line mentions the run directory (so a reused pid is left alone); the command killed, or null. */
function killIfOurs(pid: number, dir: string): string | null {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return null;
  }
  if (!cmdline.includes(dir)) return null;
  try {
    process.kill(pid, 'SIGKILL');
    return basename(cmdline.split('\0')[0] ?? '') || 'process';
  } catch {
    return null;
  }
}
