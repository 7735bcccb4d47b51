/** The per-migration record: what the tracker closes each migration into, and what the API serves. */
import type { RamStats } from '../sources/qmp/types.js';

export const MIGRATION_RESULTS = ['completed', 'failed', 'cancelled', 'postcopy-paused'] as const;
export type MigrationResult = (typeof MIGRATION_RESULTS)[number];

/** pre-copy only; post-copy from the first pass; hybrid = at least one full pre-copy pass, then post-copy. */
export const MIGRATION_MODES = ['precopy', 'postcopy', 'hybrid'] as const;
export type MigrationMode = (typeof MIGRATION_MODES)[number];

/** Phases of a migration in progress, as `livemig_migration_phase` reports them. */
export const MIGRATION_PHASES = ['setup', 'precopy', 'switchover', 'postcopy', 'postcopy-paused', 'postcopy-recover', 'cancelling', 'colo'] as const;
export type MigrationPhase = (typeof MIGRATION_PHASES)[number];

/**
 * Where a figure came from, e.g. "qmp:source:query-migrate ram.transferred",
 * "qmp:source:event MIGRATION postcopy-active", "exporter:monotonic". Free text, stable per figure.
 */
export type Evidence = string;

export interface Figure<T = number> {
  value: T;
  evidence: Evidence;
}

export interface MigrationEndpoint {
  host: string;
  monitor: string;
}

export interface MigrationRecord {
  /** Unique, stable: `${vm}@${start wall ms}`. */
  id: string;
  vm: string;
  /** Labels of the VM from the config (flavor and free labels). */
  labels: Record<string, string>;
  source: MigrationEndpoint;
  destination: MigrationEndpoint | null;
  /** null while the migration runs. */
  result: MigrationResult | null;
  /** Which report decided the result, e.g. "qmp:destination query-migrate status completed". */
  resultEvidence?: Evidence;
  mode: MigrationMode;
  /** Wall-clock time stamps, ms since the epoch. */
  startedAt: Figure;
  postcopyAt: Figure | null;
  /** Source stopped the guest (STOP event): the switch-over begins. */
  stoppedAt: Figure | null;
  /** Destination resumed the guest (RESUME event). */
  resumedAt: Figure | null;
  endedAt: Figure | null;
  /** Seconds from start to end. */
  durationSeconds: Figure | null;
  bytes: {
    transferred: Figure | null;
    precopy: Figure | null;
    postcopy: Figure | null;
    downtime: Figure | null;
  };
  qemu: {
    downtimeMs: Figure | null;
    setupTimeMs: Figure | null;
    totalTimeMs: Figure | null;
    postcopyRequests: Figure | null;
    /** Dirty-bitmap syncs (ram.dirty-sync-count / MIGRATION_PASS): the pass count. */
    passes: Figure | null;
    /** Passes completed before the switch to post-copy. */
    passesBeforePostcopy: Figure | null;
    errorDesc: string | null;
  };
  /** Every QEMU status seen, in order, with its wall time. */
  statuses: { status: string; at: number; side: 'source' | 'destination' }[];
  /** True when the exporter restarted while this migration ran. */
  resumedAfterRestart: boolean;
}

/** A migration under way, as the metrics layer and the API read it. */
export interface ActiveMigration {
  /** The id its record will have. */
  id: string;
  vm: string;
  labels: Record<string, string>;
  phase: MigrationPhase;
  /** The source's latest QEMU status (verbatim, unknown statuses included); null before the first. */
  status: string | null;
  source: MigrationEndpoint;
  destination: MigrationEndpoint | null;
  /** Wall clock, ms since the epoch. */
  startedAtMs: number;
  postcopyAtMs: number | null;
  /** The source's latest `ram` figures of query-migrate, and the wall time of that reply. */
  ram: RamStats | null;
  ramAtMs: number | null;
  resumedAfterRestart: boolean;
}
