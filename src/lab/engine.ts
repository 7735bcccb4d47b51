import type { QmpSession } from '../sources/qmp/client.js';

/**
 * What the orchestrator needs from a lab: two hosts that run VMs with two QMP monitors each (the
 * orchestrator's and the exporter's), a migration URI to each host, and each host's nova-compute
 * log. Two engines: real QEMU in network namespaces (./qemu-engine.ts) and the SIMULATED model
 * (./sim/engine.ts).
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
}

export interface RunningVm {
  spec: LabVmSpec;
  host: LabHostName;
  /** The orchestrator's monitor. */
  qmp: QmpSession;
  pid: number | null;
  stop(): Promise<void>;
}

export interface LabHostInfo {
  name: LabHostName;
  netns?: string;
  interfaces: string[];
  netdevPath?: string;
  novaLog: string;
  /** nova-compute's pid on that host, for its log lines. */
  novaPid: number;
}

export interface LabEngine {
  readonly kind: 'qemu' | 'sim';
  readonly accel: string | null;
  readonly hosts: Record<LabHostName, LabHostInfo>;
  readonly pingNetns?: string;
  readonly fpingPath?: string;
  /** The exporter's monitor socket of a VM on a host (known before the VM starts). */
  observerSocket(vm: string, host: LabHostName): string;
  /** Boots a VM (source) and waits until its guest runs its load; or a destination (`-incoming defer`). */
  startVm(spec: LabVmSpec, host: LabHostName, incoming: boolean): Promise<RunningVm>;
  /** `migrate` URI to a host (`tcp:ADDR:0`: the destination picks its port). */
  migrationUri(to: LabHostName, vm: string): string;
  /** Called before a migration (the outage scenario turns the destination's announcements off). */
  beforeMigrate?(destination: RunningVm): Promise<void>;
  /** Called when the destination resumes the guest in post-copy (the outage scenario's blackhole). */
  duringPostcopy?(destination: RunningVm): Promise<void>;
  close(): Promise<void>;
}
