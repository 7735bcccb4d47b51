import type { MigrationInfo } from './sources/qmp/types.js';

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
