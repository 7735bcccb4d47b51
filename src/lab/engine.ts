import type { QmpSession } from '../sources/qmp/client.js';
import { join } from 'node:path';
import type { LabNetwork } from './netns.js';

/**
 * What the lab's orchestrators need from an engine. Every engine has two hosts, each with its
 * nova-compute log and migration interfaces (`LabEngineBase`). The QMP engines (`LabEngine`)
 * run VMs with two QMP monitors each (the orchestrator's and the exporter's) and give a
 * migration URI to each host: real QEMU in network namespaces (./qemu-engine.ts) and the
 * SIMULATED model (./sim/engine.ts), both driven by ./orchestrator.ts. The libvirt engine
 * (./libvirt-engine.ts) runs libvirt domains on two private libvirt daemons instead, driven by
 * ./libvirt-orchestrator.ts. Scenarios see only `LabOrchestrator` and `RunningVm`.
 */

export type LabHostName = 'src' | 'dst';
export const LAB_HOSTS: readonly LabHostName[] = ['src', 'dst'];

export type GuestKind = 'dirty' | 'linux';

export interface LabVmSpec {
  name: string;
  flavor: string;
  memoryMiB: number;
  /** MiB touched once (allocated, not stressed). */
  fillMiB: number;
  /** MiB dirtied again and again (the study's stressed memory). */
  stressedMiB: number;
  instanceUuid: string;
  guest: GuestKind;
  /** Free labels on the VM (e.g. the stressed memory). */
  labels: Record<string, string>;
  /** Linux guest: its LAN address (it answers ping there). */
  pingAddress?: string;
  /** Linux guest: arp_notify in the guest; the outage scenario turns it off. */
  arpNotify?: boolean;
  /** Faults of this VM's migrations, over the engine's own (the outage-causes scenario's per-VM causes). */
  faults?: LabVmFaults;
}

export interface LabVmFaults {
  /** The destination's announce-rounds. */
  announceRounds?: number;
  /** A blackhole of the VM's address in the LAN, from this long after RESUME, for this long; null: none. */
  postcopyBlackhole?: { delayMs: number; lengthMs: number } | null;
  /** QEMU max-postcopy-bandwidth (bytes/s). */
  postcopyBandwidth?: number;
}

/** A VM where it runs now, as a scenario holds it. */
export interface RunningVm {
  spec: LabVmSpec;
  host: LabHostName;
  pid: number | null;
  stop(): Promise<void>;
}

/** A VM of a QMP engine: the orchestrator's own monitor on it. */
export interface QmpVm extends RunningVm {
  /** The orchestrator's monitor. */
  qmp: QmpSession;
}

/** One live migration, as a scenario sees it. */
export interface LabMigration {
  vm: string;
  from: LabHostName;
  to: LabHostName;
  /** Where the VM runs now: the destination, or the source again after a failed migration. */
  running: RunningVm;
}

/** Plays nova for the scenarios: boots VMs and live-migrates them, writing nova-compute's log lines. */
export interface LabOrchestrator {
  /** Boots a VM where nova would have spawned it. */
  boot(spec: LabVmSpec, host: LabHostName): Promise<RunningVm>;
  /** One live migration to the other host, the way nova drives libvirt's hybrid mode. */
  migrate(running: RunningVm): Promise<LabMigration>;
  /** Waits for the log lines under way. */
  flush(): Promise<void>;
  /** No more log lines (the lab is being taken down); waits for those under way. */
  close(): Promise<void>;
}

export type LabEngineKind = 'qemu' | 'sim' | 'libvirt';

export interface LabHostInfo {
  name: LabHostName;
  netns?: string;
  interfaces: string[];
  netdevPath?: string;
  novaLog: string;
  /** nova-compute's pid on that host, for its log lines. */
  novaPid: number;
}

/** What every engine has. */
export interface LabEngineBase {
  readonly kind: LabEngineKind;
  readonly accel: string | null;
  readonly hosts: Record<LabHostName, LabHostInfo>;
  readonly pingNetns?: string;
  readonly fpingPath?: string;
  close(): Promise<void>;
}

/** A QMP engine: the orchestrator (./orchestrator.ts) drives its VMs' migrations over QMP. */
export interface LabEngine extends LabEngineBase {
  readonly kind: 'qemu' | 'sim';
  /** The exporter's monitor socket of a VM on a host (known before the VM starts). */
  observerSocket(vm: string, host: LabHostName): string;
  /** Boots a VM (source) and waits until its guest runs its load; or a destination (`-incoming defer`). */
  startVm(spec: LabVmSpec, host: LabHostName, incoming: boolean): Promise<QmpVm>;
  /** `migrate` URI to a host (`tcp:ADDR:0`: the destination picks its port). */
  migrationUri(to: LabHostName, vm: string): string;
  /** A VM's NIC as its hosts see it (the tap's name and the guest's MAC), for the frame watcher; null: it has none. */
  nicOf?(spec: LabVmSpec): { device: string; mac: string } | null;
  /** Called before a migration (the outage scenario turns the destination's announcements off). */
  beforeMigrate?(destination: QmpVm): Promise<void>;
  /** Called when the destination resumes the guest in post-copy (the outage scenario's blackhole). */
  duringPostcopy?(destination: QmpVm): Promise<void>;
}

/**
 * The lab's two hosts in its network's namespaces: the migration link's device, and a
 * nova-compute log in the run directory written as nova's process of that (made-up) pid.
 */
export function labHostsIn(network: LabNetwork, runPath: string): Record<LabHostName, LabHostInfo> {
  const host = (name: LabHostName, novaPid: number): LabHostInfo => ({
    name,
    netns: network.namespaces[name],
    interfaces: [network.layout.migration.device],
    novaLog: join(runPath, `${name}-nova-compute.log`),
    novaPid,
  });
  return { src: host('src', 4101), dst: host('dst', 4102) };
}
