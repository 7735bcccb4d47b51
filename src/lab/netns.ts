import { randomBytes } from 'node:crypto';
import { livemigError } from '../errors.js';
import { runTool, runToolSync, type ToolRun } from './exec.js';

/**
 * The lab's network: two hosts and a LAN, each a network namespace (lab-notes "Network
 * namespaces as hosts").
 *
 *   src ns                                  dst ns
 *   mig0 198.18.0.1/30 ===== veth, tbf ===== mig0 198.18.0.2/30     (migration traffic)
 *   tap0 --+                                        +-- tap0         (the VM's NIC; QEMU opens it)
 *          br0 (bridge, no address)     br0 --------+
 *   uplink-+                                        +- uplink
 *     |                                                  |
 *     +------ to-src --- br0 198.19.0.1/24 --- to-dst ---+            lan ns (pings the VMs)
 *
 * Each host bridges its tap to an uplink veth into the LAN's bridge, as a compute host bridges
 * its VMs to the physical network. A VM keeps its MAC and address across a migration, so after
 * the switch-over the LAN bridge still sends its frames to the source host until the guest (or
 * QEMU) announces itself from the destination: the forwarding tables are part of the experiment.
 *
 * Names are unique per run (PREFIX-PID-RANDOM-{src,dst,lan}); devices live only inside the
 * namespaces, so deleting the namespaces removes everything. destroy() does that, and so does
 * a hook on process exit, SIGINT and SIGTERM for networks still up.
 */

export const HOSTS = ['src', 'dst'] as const;
export type Host = (typeof HOSTS)[number];
export type NamespaceRole = Host | 'lan';

export interface LabNetworkOptions {
  /** First part of the namespace names; default `lmenet`. */
  prefix?: string;
  /** tbf rate on both ends of the migration link, in tc's syntax; null for no qdisc. Default 1gbit. */
  rate?: string | null;
  ipBinary?: string;
  tcBinary?: string;
}

export interface LabNetworkLayout {
  namespaces: Record<NamespaceRole, string>;
  /** The src<->dst veth: same device name on both ends. */
  migration: { device: string; prefixLength: number; addresses: Record<Host, string> };
  /** The LAN bridge in the lan namespace and its address, from which VMs are pinged. */
  lan: { bridge: string; address: string; prefixLength: number };
  /** In each host namespace, the tap a VM's `-netdev tap,ifname=` names. */
  tap: string;
  rate: string | null;
}

export const DEFAULT_PREFIX = 'lmenet';
export const DEFAULT_RATE = '1gbit';
/** tbf as in lab-notes: 1 Gbit/s gives 119.3 MB/s of TCP payload. */
export const TBF_BURST = '256kb';
export const TBF_LATENCY = '50ms';
const MIGRATION_DEVICE = 'mig0';
const MIGRATION_ADDRESSES: Record<Host, string> = { src: '198.18.0.1', dst: '198.18.0.2' };
const LAN = { bridge: 'br0', address: '198.19.0.1', prefixLength: 24 };
const HOST_BRIDGE = 'br0';
const UPLINK = 'uplink';
const TAP = 'tap0';

/** Names and addresses of a network, without creating it. Pure. */
export function labNetworkLayout(id: string, rate: string | null = DEFAULT_RATE): LabNetworkLayout {
  if (!/^[A-Za-z0-9_-]+$/.test(id)) throw livemigError('LME_LAB_NETWORK', JSON.stringify(id), 'an id is letters, digits, - and _');
  return {
    namespaces: { src: `${id}-src`, dst: `${id}-dst`, lan: `${id}-lan` },
    migration: { device: MIGRATION_DEVICE, prefixLength: 30, addresses: { ...MIGRATION_ADDRESSES } },
    lan: { ...LAN },
    tap: TAP,
    rate,
  };
}

/** PREFIX-PID-RANDOM: unique per run, and the pid tells a dead run's leftovers apart. */
export function uniqueNetworkId(prefix: string = DEFAULT_PREFIX): string {
  return `${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

export class LabNetwork {
  private readonly created: string[] = [];
  private destroyed = false;

  private constructor(
    readonly layout: LabNetworkLayout,
    private readonly ip: string,
    private readonly tc: string,
  ) {}

  /** Builds the whole topology; on any failure removes what it had made, then throws. */
  static async create(options: LabNetworkOptions = {}): Promise<LabNetwork> {
    if (process.geteuid?.() !== 0) {
      throw livemigError('LME_LAB_NEEDS_ROOT', 'create network namespaces', `running as uid ${process.geteuid?.() ?? 'unknown'}; run as root`);
    }
    const layout = labNetworkLayout(uniqueNetworkId(options.prefix), options.rate === undefined ? DEFAULT_RATE : options.rate);
    const network = new LabNetwork(layout, options.ipBinary ?? 'ip', options.tcBinary ?? 'tc');
    live.add(network);
    installExitHooks();
    try {
      await network.build();
    } catch (err) {
      await network.destroy().catch(() => undefined);
      throw err;
    }
    return network;
  }

  get namespaces(): Record<NamespaceRole, string> {
    return this.layout.namespaces;
  }

  /** The migration link's address of a host (the destination's is the `migrate` URI's host). */
  migrationAddress(host: Host): string {
    return this.layout.migration.addresses[host];
  }

  /** argv that runs a command inside one of the namespaces: `ip netns exec NS COMMAND ARGS...`. */
  execArgv(role: NamespaceRole, command: string, args: readonly string[] = []): [string, ...string[]] {
    return [this.ip, 'netns', 'exec', this.layout.namespaces[role], command, ...args];
  }

  /** Deletes the namespaces it created (their devices go with them). Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const failures: unknown[] = [];
    // Each name leaves `created` only once deleted: a process that dies half-way (EPIPE, a
    // second signal) still has destroySync() delete the rest at exit.
    for (const ns of [...this.created].reverse()) {
      await runTool(this.ipRun(ns, ['netns', 'delete', ns])).then(
        () => this.created.splice(this.created.indexOf(ns), 1),
        (err: unknown) => failures.push(err),
      );
    }
    this.created.splice(0);
    live.delete(this);
    if (failures.length > 0) throw failures[0];
  }

  /** destroy() for exit hooks: blocking, and never throws. */
  destroySync(): void {
    this.destroyed = true;
    live.delete(this);
    for (const ns of this.created.splice(0).reverse()) {
      try {
        runToolSync(this.ipRun(ns, ['netns', 'delete', ns]));
      } catch {
        // Exiting anyway: nothing to report to.
      }
    }
  }

  private async build(): Promise<void> {
    const { namespaces: ns, migration, lan } = this.layout;
    for (const role of ['src', 'dst', 'lan'] as const) {
      await this.ipIn(ns[role], ['netns', 'add', ns[role]]);
      this.created.push(ns[role]);
      await this.ipIn(ns[role], ['-n', ns[role], 'link', 'set', 'lo', 'up']);
    }
    // Migration link, created in src with its peer straight in dst: nothing touches the host's namespace.
    await this.ipIn(ns.src, ['-n', ns.src, 'link', 'add', migration.device, 'type', 'veth', 'peer', 'name', migration.device, 'netns', ns.dst]);
    for (const host of HOSTS) {
      await this.ipIn(ns[host], ['-n', ns[host], 'addr', 'add', `${migration.addresses[host]}/${migration.prefixLength}`, 'dev', migration.device]);
      await this.ipIn(ns[host], ['-n', ns[host], 'link', 'set', migration.device, 'up']);
      if (this.layout.rate !== null) await this.addTbf(ns[host], migration.device, this.layout.rate);
    }
    await this.ipIn(ns.lan, ['-n', ns.lan, 'link', 'add', lan.bridge, 'type', 'bridge']);
    await this.ipIn(ns.lan, ['-n', ns.lan, 'addr', 'add', `${lan.address}/${lan.prefixLength}`, 'dev', lan.bridge]);
    await this.ipIn(ns.lan, ['-n', ns.lan, 'link', 'set', lan.bridge, 'up']);
    for (const host of HOSTS) await this.buildHostLan(host);
  }

  /** In a host: br0 joining tap0 and an uplink veth whose other end is on the LAN bridge. */
  private async buildHostLan(host: Host): Promise<void> {
    const { namespaces: ns, lan, tap } = this.layout;
    const hostNs = ns[host];
    const lanSide = `to-${host}`;
    await this.ipIn(hostNs, ['-n', hostNs, 'link', 'add', HOST_BRIDGE, 'type', 'bridge']);
    await this.ipIn(hostNs, ['-n', hostNs, 'link', 'add', UPLINK, 'type', 'veth', 'peer', 'name', lanSide, 'netns', ns.lan]);
    await this.ipIn(ns.lan, ['-n', ns.lan, 'link', 'set', lanSide, 'master', lan.bridge, 'up']);
    await this.ipIn(hostNs, ['-n', hostNs, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    for (const port of [UPLINK, tap]) await this.ipIn(hostNs, ['-n', hostNs, 'link', 'set', port, 'master', HOST_BRIDGE, 'up']);
    await this.ipIn(hostNs, ['-n', hostNs, 'link', 'set', HOST_BRIDGE, 'up']);
  }

  private async addTbf(ns: string, device: string, rate: string): Promise<void> {
    await runTool({
      tool: this.tc,
      args: ['-n', ns, 'qdisc', 'add', 'dev', device, 'root', 'tbf', 'rate', rate, 'burst', TBF_BURST, 'latency', TBF_LATENCY],
      packageName: 'iproute2',
      failure: { code: 'LME_LAB_NETWORK', subject: `${ns} ${device}` },
    });
  }

  private async ipIn(subject: string, args: string[]): Promise<void> {
    await runTool(this.ipRun(subject, args));
  }

  private ipRun(subject: string, args: string[]): ToolRun {
    return { tool: this.ip, args, packageName: 'iproute2', failure: { code: 'LME_LAB_NETWORK', subject } };
  }
}

/** Names in `ip netns list` output (`NAME` or `NAME (id: N)` per line). Pure. */
export function parseNetnsList(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim().split(/\s/)[0] ?? '')
    .filter(Boolean);
}

/**
 * Lab namespaces (PREFIX-PID-RANDOM-ROLE) whose creating process is gone: what a killed run
 * (SIGKILL, a crash) leaves behind, since no hook of its own ran. Pure.
 */
export function staleLabNamespaces(names: readonly string[], isAlive: (pid: number) => boolean, prefix: string = DEFAULT_PREFIX): string[] {
  const pattern = new RegExp(`^${prefix.replace(/[^A-Za-z0-9]/g, '\\$&')}-(\\d+)-[0-9a-f]+-(src|dst|lan)$`);
  return names.filter((name) => {
    const pid = Number(pattern.exec(name)?.[1] ?? Number.NaN);
    return Number.isSafeInteger(pid) && !isAlive(pid);
  });
}

/** Deletes the namespaces staleLabNamespaces() finds on this machine; returns their names. */
export async function removeStaleLabNetworks(prefix: string = DEFAULT_PREFIX, ip = 'ip'): Promise<string[]> {
  const run = (args: string[]): ToolRun => ({ tool: ip, args, packageName: 'iproute2', failure: { code: 'LME_LAB_NETWORK', subject: args.at(-1) ?? 'netns' } });
  const { stdout } = await runTool(run(['netns', 'list']));
  const stale = staleLabNamespaces(parseNetnsList(stdout), processAlive, prefix);
  for (const name of stale) await runTool(run(['netns', 'delete', name]));
  return stale;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Networks not yet destroyed, removed by the exit hooks. */
const live = new Set<LabNetwork>();
let hooksInstalled = false;
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.once('exit', destroyAllSync);
  for (const signal of SIGNALS) {
    process.once(signal, () => {
      destroyAllSync();
      // Our listener replaced the default action (exit); restore it unless someone else handles the signal.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

function destroyAllSync(): void {
  for (const network of [...live]) network.destroySync();
}
