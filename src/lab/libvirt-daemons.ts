/**
 * Private libvirt daemons (docs/libvirt-migration-on-one-machine.md). A `LibvirtDaemon` is one
 * libvirtd and its virtlogd in a mount namespace of their own, in which copies of this machine's
 * /etc/libvirt (without its domain and network definitions), /var/lib/libvirt and
 * /var/cache/libvirt and an empty /run/libvirt and /var/log/libvirt are bind-mounted over the
 * real ones, with a libvirtd.conf of its own (its own host UUID, no authentication on the
 * read-write socket, which only root can open). It runs in a given network namespace or in a new
 * one, so that its network driver never touches the host's bridges or firewall. Its sockets stay
 * reachable from outside through its copy of /run/libvirt; the machine's own libvirtd is never
 * touched. `LabLibvirt` is two of them, one in each lab host's namespace: libvirt refuses to
 * migrate to its own host UUID, and so `virsh migrate` between them is a real libvirt-driven live
 * migration on one machine.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LivemigError, errorMessage, livemigError } from '../errors.js';
import { runTool, type ToolOutput, type ToolRun } from './exec.js';
import { HOSTS, type Host, type LabNetwork } from './netns.js';

/** The private directories of a daemon: name under its base directory, where it is mounted, what it starts as a copy of. */
const PRIVATE_DIRS = [
  ['run', '/run/libvirt', null],
  ['lib', '/var/lib/libvirt', '/var/lib/libvirt'],
  ['cache', '/var/cache/libvirt', '/var/cache/libvirt'],
  ['log', '/var/log/libvirt', null],
  ['etc', '/etc/libvirt', '/etc/libvirt'],
] as const;

const USERFAULTFD_SYSCTL = '/proc/sys/vm/unprivileged_userfaultfd';
/** Copies of a directory the machine's libvirtd changes while it is copied. */
const COPY_ATTEMPTS = 5;
const START_TIMEOUT_MS = 20_000;
const TERM_TIMEOUT_MS = 10_000;
const KILL_TIMEOUT_MS = 5_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type DaemonName = 'libvirtd' | 'virtlogd';

/** Where the daemon runs: a network namespace given as a command wrapper (`ip netns exec NS`), or a new, empty one. */
export type LibvirtDaemonNetwork = { kind: 'netns'; argv: (command: string, args: readonly string[]) => [string, ...string[]] } | { kind: 'new' };

export interface LibvirtDaemonOptions {
  network: LibvirtDaemonNetwork;
  /** Its state; must not exist yet (its parent must). Default: a new directory under the temp dir. stop() removes it. */
  baseDir?: string;
  /** Default: a new random UUID. */
  hostUuid?: string;
  /** What the read-only socket asks of a client that is not root ('polkit' is libvirt's default). Default 'none'. */
  readOnlyAuth?: 'none' | 'polkit';
  /** Names the daemon in errors (e.g. the lab host); its directory is named too. */
  name?: string;
}

export class LibvirtDaemon {
  /** Read-write socket (root only), as a path outside the daemon's mount namespace. */
  readonly socket: string;
  /** Read-only socket, mode 0777. */
  readonly roSocket: string;
  /** A URI for virsh and the exporter: qemu+unix:///system?socket=SOCKET. */
  readonly uri: string;
  /** The directory of the domains' QEMU logs (its /var/log/libvirt/qemu). */
  readonly qemuLogDir: string;
  private readonly pids: Partial<Record<DaemonName, number>> = {};
  /** The network namespaces its libvirtds ran in: a PID in a pid file of its run/qemu is killed only if it is in one of them. */
  private readonly netNamespaces = new Set<string>();
  private stopped = false;

  private constructor(
    /** Its base directory: run, lib, cache, log and etc, and the daemons' pid files. */
    readonly dir: string,
    readonly hostUuid: string,
    private readonly network: LibvirtDaemonNetwork,
    private readonly subject: string,
  ) {
    this.socket = join(dir, 'run', 'libvirt-sock');
    this.roSocket = join(dir, 'run', 'libvirt-sock-ro');
    this.uri = `qemu+unix:///system?socket=${this.socket}`;
    this.qemuLogDir = join(dir, 'log', 'qemu');
  }

  /** Creates its directories and starts virtlogd and libvirtd; on failure stops what it started, removes the directory, and throws. */
  static async start(options: LibvirtDaemonOptions): Promise<LibvirtDaemon> {
    const hostUuid = options.hostUuid ?? randomUUID();
    const described = (dir: string) => (options.name ? `${options.name} (${dir})` : dir);
    if (!UUID.test(hostUuid)) throw livemigError('LME_LAB_LIBVIRTD', described(options.baseDir ?? 'in a temp dir'), `host UUID ${JSON.stringify(hostUuid)} is not a UUID`);
    let dir: string;
    try {
      dir = options.baseDir ?? (await mkdtemp(join(tmpdir(), 'lme-libvirtd-')));
      if (options.baseDir) await mkdir(dir);
    } catch (err) {
      throw livemigError('LME_LAB_LIBVIRTD', described(options.baseDir ?? tmpdir()), `cannot create its directory: ${errorMessage(err)}`);
    }
    const daemon = new LibvirtDaemon(dir, hostUuid, options.network, described(dir));
    try {
      await daemon.prepare(options.readOnlyAuth ?? 'none');
      await daemon.launch(['virtlogd', 'libvirtd']);
    } catch (err) {
      await daemon.stop().catch(() => undefined);
      throw err instanceof LivemigError ? err : livemigError('LME_LAB_LIBVIRTD', daemon.subject, `cannot prepare its directories: ${errorMessage(err)}`);
    }
    return daemon;
  }

  get libvirtdPid(): number | undefined {
    return this.pids.libvirtd;
  }

  /** A domain's QEMU log. */
  qemuLog(domain: string): string {
    return join(this.qemuLogDir, `${domain}.log`);
  }

  /** `virsh -c URI ARGS...`. */
  virsh(...args: string[]): Promise<ToolOutput> {
    return runTool({ tool: 'virsh', args: ['-c', this.uri, ...args], packageName: 'libvirt-clients', failure: this.failure() });
  }

  /**
   * SIGTERM to libvirtd, then a new one in a new mount namespace (with kind 'new', a new network
   * namespace too) on the same directories and sockets. Domains and virtlogd keep running, as
   * with a restart of the service.
   */
  async restart(): Promise<void> {
    await this.stopDaemon('libvirtd');
    await this.launch(['libvirtd']);
  }

  /** Kills the domains' QEMUs, then libvirtd and virtlogd (only by PIDs they wrote), and removes the directory. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // The domains' QEMUs first: they outlive their libvirtd otherwise.
    const qemuDir = join(this.dir, 'run', 'qemu');
    const pidFiles = (await readdir(qemuDir).catch(() => [] as string[])).filter((f) => f.endsWith('.pid'));
    const qemus = (await Promise.all(pidFiles.map((f) => readPid(join(qemuDir, f))))).filter((pid): pid is number => pid !== null && this.netNamespaces.has(netNamespace(pid) ?? ''));
    const survivors = await terminate(qemus, 'SIGKILL');
    for (const name of ['libvirtd', 'virtlogd'] as const) survivors.push(...(await this.stopDaemon(name)));
    if (survivors.length > 0) throw livemigError('LME_LAB_LIBVIRTD', this.subject, `PIDs ${survivors.join(', ')} did not exit after SIGKILL; its directory is left`);
    await rm(this.dir, { recursive: true, force: true });
  }

  private failure(): ToolRun['failure'] {
    return { code: 'LME_LAB_LIBVIRTD', subject: this.subject };
  }

  /** The copies, an empty run and log directory, no domains or networks of the machine's daemon, and its own libvirtd.conf. */
  private async prepare(readOnlyAuth: 'none' | 'polkit'): Promise<void> {
    for (const [name, , copyOf] of PRIVATE_DIRS) {
      const target = join(this.dir, name);
      await mkdir(target, { mode: 0o755 });
      if (copyOf) await this.copyLive(copyOf, target);
    }
    await mkdir(this.qemuLogDir);
    // Persistent domains, networks and their autostart links belong to the machine's daemon.
    const etcQemu = join(this.dir, 'etc', 'qemu');
    await rm(etcQemu, { recursive: true, force: true });
    await mkdir(etcQemu, { mode: 0o755 });
    await writeFile(
      join(this.dir, 'etc', 'libvirtd.conf'),
      [
        '# A private libvirtd of livemig-exporter (src/lab/libvirt-daemons.ts).',
        `host_uuid = "${this.hostUuid}"`,
        'unix_sock_ro_perms = "0777"',
        'unix_sock_rw_perms = "0700"',
        `auth_unix_ro = "${readOnlyAuth}"`,
        'auth_unix_rw = "none"',
        '',
      ].join('\n'),
    );
  }

  /**
   * `cp -a FROM/. TO`. The machine's libvirtd may be starting or stopping domains meanwhile (their
   * directories under /var/lib/libvirt/qemu come and go): a file gone while cp ran is no error of
   * ours, so the copy is made again from scratch, a few times.
   */
  private async copyLive(from: string, to: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await runTool({ tool: 'cp', args: ['-a', `${from}/.`, to], packageName: 'coreutils', failure: this.failure() });
        return;
      } catch (err) {
        if (attempt >= COPY_ATTEMPTS || !/No such file or directory/.test(errorMessage(err))) throw err;
        await rm(to, { recursive: true, force: true });
        await mkdir(to, { mode: 0o755 });
      }
    }
  }

  /** Mounts the private directories in a new mount namespace and starts the daemons there, daemonized, each with a pid file. */
  private async launch(daemons: readonly DaemonName[]): Promise<void> {
    const dirs = PRIVATE_DIRS.map(([name]) => join(this.dir, name));
    // Positional parameters only: no path is ever part of the script's text.
    const script = [
      ...PRIVATE_DIRS.map(([, mountPoint], i) => `mount --bind "$${i + 1}" ${mountPoint}`),
      ...daemons.map((name, i) => `${name} -d -p "$${PRIVATE_DIRS.length + i + 1}"`),
    ].join(' && ');
    const unshareArgs = ['--mount', '--propagation', 'private', ...(this.network.kind === 'new' ? ['--net'] : []), 'sh', '-c', script, 'sh', ...dirs, ...daemons.map((d) => this.pidFile(d))];
    const [tool, ...args] = this.network.kind === 'netns' ? this.network.argv('unshare', unshareArgs) : (['unshare', ...unshareArgs] as const);
    await runTool({ tool, args, packageName: tool === 'unshare' ? 'util-linux' : tool === 'ip' ? 'iproute2' : 'libvirt-daemon-system', failure: this.failure() });
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!((await canConnect(this.socket)) && (await canConnect(this.roSocket)))) {
      if (Date.now() > deadline) throw livemigError('LME_LAB_LIBVIRTD', this.subject, `${this.socket} and ${this.roSocket} did not accept a connection within ${START_TIMEOUT_MS} ms`);
      await sleep(50);
    }
    for (const name of daemons) {
      const pid = await readPid(this.pidFile(name));
      if (pid !== null && this.isOurs(name, pid)) this.pids[name] = pid;
    }
    const ns = this.pids.libvirtd === undefined ? null : netNamespace(this.pids.libvirtd);
    if (ns === null) throw livemigError('LME_LAB_LIBVIRTD', this.subject, `libvirtd answers on ${this.socket} but ${this.pidFile('libvirtd')} names no libvirtd of its own`);
    this.netNamespaces.add(ns);
  }

  /** SIGTERM (then SIGKILL) to a daemon it started, if that PID is still that daemon; returns the PIDs that survived. */
  private async stopDaemon(name: DaemonName): Promise<number[]> {
    const pid = this.pids[name] ?? (await readPid(this.pidFile(name)));
    delete this.pids[name];
    if (pid === null || !this.isOurs(name, pid)) return [];
    return terminate([pid], 'SIGTERM');
  }

  /** The process runs this daemon's command line (its pid file is in it), not a recycled PID. */
  private isOurs(name: DaemonName, pid: number): boolean {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === `${[name, '-d', '-p', this.pidFile(name)].join('\0')}\0`;
    } catch {
      return false;
    }
  }

  private pidFile(name: DaemonName): string {
    return join(this.dir, `${name}.pid`);
  }
}

/**
 * The lab's pair: a daemon in each of the network's src and dst namespaces, and
 * vm.unprivileged_userfaultfd=1 while they run: QEMU 7.2, run by libvirt as an unprivileged user,
 * refuses the postcopy-ram capability otherwise (it does not use /dev/userfaultfd, root-only here).
 */
export class LabLibvirt {
  private stopped = false;

  private constructor(
    readonly daemons: Record<Host, LibvirtDaemon>,
    private readonly savedUserfaultfd: string | null,
  ) {}

  /** Starts both daemons in the network's src and dst namespaces; dir holds their state (dir/libvirt-src, dir/libvirt-dst). */
  static async start(network: LabNetwork, dir: string): Promise<LabLibvirt> {
    const savedUserfaultfd = await allowUnprivilegedUserfaultfd();
    const started: LibvirtDaemon[] = [];
    try {
      for (const host of HOSTS) {
        const argv = (command: string, args: readonly string[]) => network.execArgv(host, command, args);
        started.push(await LibvirtDaemon.start({ baseDir: join(dir, `libvirt-${host}`), network: { kind: 'netns', argv }, name: `on ${host}` }));
      }
    } catch (err) {
      await Promise.all(started.map((d) => d.stop().catch(() => undefined)));
      if (savedUserfaultfd !== null) await writeFile(USERFAULTFD_SYSCTL, savedUserfaultfd);
      throw err;
    }
    const [src, dst] = started as [LibvirtDaemon, LibvirtDaemon];
    return new LabLibvirt({ src, dst }, savedUserfaultfd);
  }

  /** Stops both daemons (their QEMUs first) and restores the sysctl. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const results = await Promise.allSettled(Object.values(this.daemons).map((d) => d.stop()));
    if (this.savedUserfaultfd !== null) await writeFile(USERFAULTFD_SYSCTL, this.savedUserfaultfd);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

async function allowUnprivilegedUserfaultfd(): Promise<string | null> {
  const before = (await readFile(USERFAULTFD_SYSCTL, 'utf8').catch(() => null))?.trim() ?? null;
  if (before === null || before === '1') return null;
  await writeFile(USERFAULTFD_SYSCTL, '1');
  return before;
}

/** Sends the signal, waits, escalates to SIGKILL; returns the PIDs still running after that. */
async function terminate(pids: number[], signal: NodeJS.Signals): Promise<number[]> {
  signalAll(pids, signal);
  await waitGone(pids, TERM_TIMEOUT_MS);
  let left = pids.filter(isAlive);
  if (left.length > 0 && signal !== 'SIGKILL') {
    signalAll(left, 'SIGKILL');
    await waitGone(left, KILL_TIMEOUT_MS);
    left = left.filter(isAlive);
  }
  return left;
}

function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

async function waitGone(pids: number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isAlive) && Date.now() < deadline) await sleep(50);
}

/** A daemon re-parented to PID 1 is a zombie until reaped; a zombie counts as gone. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function netNamespace(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return null;
  }
}

async function readPid(path: string): Promise<number | null> {
  const text = await readFile(path, 'utf8').catch(() => null);
  const pid = Number(text?.trim());
  return Number.isSafeInteger(pid) && pid > 1 ? pid : null;
}

/** Whether a unix socket accepts a connection now. */
export function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ path });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
