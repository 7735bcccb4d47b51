import type { MigrationInfo } from './qemu/types.js';

/** What reported: QEMU's monitor (QMP) or libvirt's API about the QEMU it runs. Evidence names it. */
export type Origin = 'qmp' | 'libvirt';

/**
 * The monitor id of libvirt's view of a VM on a host. One libvirt daemon runs at most one QEMU of
 * a domain, so this view and a QMP monitor of the same VM on the same host are one QEMU.
 */
export function libvirtMonitorId(host: string): string {
  return `libvirt:${host}`;
}

export function isLibvirtMonitor(monitor: string): boolean {
  return monitor.startsWith('libvirt:');
}

/** Which QEMU monitor an observation came from. */
export interface MonitorRef {
  /** VM name as configured (or the libvirt domain name). */
  vm: string;
  /** Host the QEMU runs on, as named in the config. */
  host: string;
  /** Stable id of the monitor endpoint, unique per VM. */
  monitor: string;
}

interface Stamped {
  ref: MonitorRef;
  /** Wall clock, ms since the epoch (QEMU's own time stamp for events). */
  wallMs: number;
  /** Exporter's monotonic clock, ms, when the observation was received. */
  monoMs: number;
  /** Unset: QMP. */
  origin?: Origin;
  /** How the report reads in evidence when it is not QMP's own, e.g. "lifecycle event suspended postcopy". */
  what?: string;
}

/** One query-migrate reply (plus the run state from query-status when it was asked). */
export interface QmpStatusObservation extends Stamped {
  kind: 'qmp-status';
  info: MigrationInfo;
  /** query-status `status`: running, inmigrate, postmigrate, finish-migrate, paused ... */
  runState?: string;
}

/** An asynchronous QMP event: MIGRATION, MIGRATION_PASS, STOP, RESUME ... */
export interface QmpEventObservation extends Stamped {
  kind: 'qmp-event';
  event: string;
  data: Record<string, unknown>;
}

/** The monitor went away (QEMU exited, socket closed). Normal for a source after migration. */
export interface MonitorGoneObservation extends Stamped {
  kind: 'monitor-gone';
  reason: string;
}

export type Observation = QmpStatusObservation | QmpEventObservation | MonitorGoneObservation;

/**
 * One probe of a ping target whose fate is known: answered (rttMs) or lost (null). Per target,
 * observations come in sequence order, so a run of nulls is one outage. Not part of
 * `Observation` (that union is keyed by a QEMU monitor); the tracker takes these separately.
 */
export interface PingObservation {
  kind: 'ping';
  /** The target's address as configured (what fping was given). */
  target: string;
  /** VM the target belongs to, when the config ties it to one. */
  vm?: string;
  /** Per target, counting up by one per probe, across fping restarts and shard moves. */
  sequence: number;
  /** Wall clock, ms since the epoch, when fping sent the probe (see src/sources/ping/sequencer.ts). */
  sentWallMs: number;
  /** Round-trip time in ms; null when the probe was lost. */
  rttMs: number | null;
  /** Wall clock, ms, when the exporter learnt the probe's fate. */
  wallMs: number;
  /** Exporter's monotonic clock, ms, at the same moment. */
  monoMs: number;
}
