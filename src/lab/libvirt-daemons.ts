/**
 * A libvirt daemon in each lab host's network namespace, so that `virsh migrate` between them is
 * a real libvirt-driven live migration on one machine (docs/libvirt-migration-on-one-machine.md).
 * libvirt refuses to migrate to its own host UUID; each daemon here has a UUID of its own and a
 * mount namespace of its own, in which copies of this machine's /etc/libvirt, /var/lib/libvirt,
 * /var/cache/libvirt and /var/log/libvirt and an empty /run/libvirt are bind-mounted over the
 * real ones. Its sockets stay reachable from the lab's namespace through the copy of /run/libvirt.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { livemigError } from '../errors.js';
import { runTool, type ToolRun } from './exec.js';
import { HOSTS, type Host, type LabNetwork } from './netns.js';

/** The private directories of a daemon: name under its base directory, and where it is mounted. */
const PRIVATE_DIRS = [
  ['run', '/run/libvirt', null],
  ['lib', '/var/lib/libvirt', '/var/lib/libvirt'],
  ['cache', '/var/cache/libvirt', '/var/cache/libvirt'],
  ['log', '/var/log/libvirt', null],
  ['etc', '/etc/libvirt', '/etc/libvirt'],
] as const;

/**
 * QEMU 7.2, run by libvirt as an unprivileged user, refuses the postcopy-ram capability unless
 * unprivileged userfaultfd is allowed (it does not use /dev/userfaultfd, root-only here).
 */
const USERFAULTFD_SYSCTL = '/proc/sys/vm/unprivileged_userfaultfd';
const START_TIMEOUT_MS = 20_000;

export interface LabLibvirtDaemon {
  host: Host;
  hostUuid: string;
  baseDir: string;
  /** Read-write and read-only sockets, as paths in the lab's own namespace. */
  socket: string;
  readOnlySocket: string;
  /** A URI for virsh and the exporter: qemu+unix:///system?socket=SOCKET. */
  uri: string;
  /** The directory of the domains' QEMU logs (its /var/log/libvirt/qemu). */
  qemuLogDir: string;
}

export class LabLibvirt {
  private stopped = false;

  private constructor(
    readonly daemons: Record<Host, LabLibvirtDaemon>,
    private readonly savedUserfaultfd: string | null,
  ) {}

  /** Starts both daemons in the network's src and dst namespaces; dir holds their state. */
  static async start(network: LabNetwork, dir: string): Promise<LabLibvirt> {
    const savedUserfaultfd = await allowUnprivilegedUserfaultfd();
    const started: LabLibvirtDaemon[] = [];
    try {
      for (const host of HOSTS) started.push(await startDaemon(network, host, join(dir, `libvirt-${host}`)));
    } catch (err) {
      await Promise.all(started.map((d) => stopDaemon(d)));
      if (savedUserfaultfd !== null) await writeFile(USERFAULTFD_SYSCTL, savedUserfaultfd);
      throw err;
    }
    const [src, dst] = started as [LabLibvirtDaemon, LabLibvirtDaemon];
    return new LabLibvirt({ src, dst }, savedUserfaultfd);
  }

  /** Kills the daemons' QEMUs and the daemons (by the PIDs they wrote), and restores the sysctl. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(Object.values(this.daemons).map((d) => stopDaemon(d)));
    if (this.savedUserfaultfd !== null) await writeFile(USERFAULTFD_SYSCTL, this.savedUserfaultfd);
  }
}

async function allowUnprivilegedUserfaultfd(): Promise<string | null> {
  const before = (await readFile(USERFAULTFD_SYSCTL, 'utf8').catch(() => null))?.trim() ?? null;
  if (before === null || before === '1') return null;
  await writeFile(USERFAULTFD_SYSCTL, '1');
  return before;
}

async function startDaemon(network: LabNetwork, host: Host, baseDir: string): Promise<LabLibvirtDaemon> {
  const dirs = PRIVATE_DIRS.map(([name]) => join(baseDir, name));
  for (const [name, , copyOf] of PRIVATE_DIRS) {
    const target = join(baseDir, name);
    await mkdir(target, { recursive: true });
    if (copyOf) await runTool(tool('cp', ['-a', `${copyOf}/.`, target], host));
  }
  await mkdir(join(baseDir, 'log', 'qemu'), { recursive: true });
  const hostUuid = randomUUID();
  await appendFile(join(baseDir, 'etc', 'libvirtd.conf'), `\n# lab host ${host}\nhost_uuid = "${hostUuid}"\n`);
  // Positional parameters only: no path is ever part of the script's text.
  const script = [
    ...PRIVATE_DIRS.map(([, mountPoint], i) => `mount --bind "$${i + 1}" ${mountPoint}`),
    `virtlogd -d -p "$${PRIVATE_DIRS.length + 1}"`,
    `libvirtd -d -p "$${PRIVATE_DIRS.length + 2}"`,
  ].join(' && ');
  const [ip, ...args] = network.execArgv(host, 'unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', ...dirs, pidFile(baseDir, 'virtlogd'), pidFile(baseDir, 'libvirtd')]);
  await runTool({ ...tool(ip, args, host), packageName: 'iproute2' });
  const socket = join(baseDir, 'run', 'libvirt-sock');
  const daemon: LabLibvirtDaemon = {
    host,
    hostUuid,
    baseDir,
    socket,
    readOnlySocket: join(baseDir, 'run', 'libvirt-sock-ro'),
    uri: `qemu+unix:///system?socket=${socket}`,
    qemuLogDir: join(baseDir, 'log', 'qemu'),
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await accepts(socket))) {
    if (Date.now() > deadline) {
      await stopDaemon(daemon);
      throw livemigError('LME_LAB_NETWORK', `libvirtd on ${host}`, `${socket} did not accept a connection within ${START_TIMEOUT_MS} ms`);
    }
    await sleep(50);
  }
  return daemon;
}

async function stopDaemon(daemon: LabLibvirtDaemon): Promise<void> {
  // The domains' QEMUs first: they outlive their libvirtd otherwise.
  const qemuPids = await readdir(join(daemon.baseDir, 'run', 'qemu')).catch(() => [] as string[]);
  const pids = await Promise.all(qemuPids.filter((f) => f.endsWith('.pid')).map((f) => readPid(join(daemon.baseDir, 'run', 'qemu', f))));
  await killAll(pids.filter((p): p is number => p !== null), 'SIGKILL');
  for (const name of ['libvirtd', 'virtlogd'] as const) {
    const pid = await readPid(pidFile(daemon.baseDir, name));
    if (pid !== null) await killAll([pid], 'SIGTERM');
  }
}

async function killAll(pids: number[], signal: NodeJS.Signals): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
  const deadline = Date.now() + 10_000;
  while (pids.some(isRunning) && Date.now() < deadline) await sleep(50);
}

/** A daemon re-parented to PID 1 is a zombie until reaped; a zombie counts as gone. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function readPid(path: string): Promise<number | null> {
  const text = await readFile(path, 'utf8').catch(() => null);
  const pid = Number(text?.trim());
  return Number.isSafeInteger(pid) && pid > 1 ? pid : null;
}

function pidFile(baseDir: string, daemon: 'libvirtd' | 'virtlogd'): string {
  return join(baseDir, `${daemon}.pid`);
}

function tool(name: string, args: readonly string[], host: Host): ToolRun {
  return { tool: name, args, packageName: name === 'cp' ? 'coreutils' : 'libvirt-daemon-system', failure: { code: 'LME_LAB_NETWORK', subject: `libvirtd on ${host}` } };
}

function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ path });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
