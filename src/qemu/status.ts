/**
 * What each QEMU migration status means, in one place: which statuses exist, which are under way
 * (polled fast), which phase each shows, which end a migration and how, how far along a migration
 * each is, and which only a source reports with `ram`. Pure tables over the statuses of QEMU 7.x
 * to 10.2 (qapi/migration.json MigrationStatus).
 */

/** Every MigrationStatus of QEMU 7.x to 10.2. */
export const MIGRATION_STATUSES = [
  'none',
  'setup',
  'cancelling',
  'cancelled',
  'active',
  'postcopy-device',
  'postcopy-active',
  'postcopy-paused',
  'postcopy-recover-setup',
  'postcopy-recover',
  'completed',
  'failed',
  'colo',
  'pre-switchover',
  'device',
  'wait-unplug',
] as const;
export type KnownMigrationStatus = (typeof MIGRATION_STATUSES)[number];

/** How a migration ended: QEMU's terminal statuses, and a post-copy paused for good. */
export const MIGRATION_RESULTS = ['completed', 'failed', 'cancelled', 'postcopy-paused'] as const;
export type MigrationResult = (typeof MIGRATION_RESULTS)[number];

/** Phases of a migration in progress, as `livemig_migration_phase` reports them. */
export const MIGRATION_PHASES = ['setup', 'precopy', 'switchover', 'postcopy', 'postcopy-paused', 'postcopy-recover', 'cancelling', 'colo'] as const;
export type MigrationPhase = (typeof MIGRATION_PHASES)[number];

const KNOWN: ReadonlySet<string> = new Set(MIGRATION_STATUSES);

export function isKnownStatus(status: string): status is KnownMigrationStatus {
  return KNOWN.has(status);
}

/** Statuses during which a migration is under way and the VM is polled fast. */
const IN_PROGRESS: ReadonlySet<string> = new Set([
  'setup',
  'active',
  'cancelling',
  'pre-switchover',
  'device',
  'wait-unplug',
  'postcopy-device',
  'postcopy-active',
  'postcopy-paused',
  'postcopy-recover-setup',
  'postcopy-recover',
  'colo',
]);

export function isInProgress(status: string): boolean {
  return IN_PROGRESS.has(status);
}

const RESULTS: Readonly<Record<string, MigrationResult>> = {
  completed: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
};

/** The result a status ends a migration with, or null when the migration goes on. */
export function terminalResult(status: string): MigrationResult | null {
  return RESULTS[status] ?? null;
}

const PHASES: Readonly<Record<string, MigrationPhase>> = {
  setup: 'setup',
  // wait-unplug comes between setup and active: QEMU waits for failover devices to unplug.
  'wait-unplug': 'setup',
  active: 'precopy',
  'pre-switchover': 'switchover',
  device: 'switchover',
  // QEMU >= 10.2: the destination still loads device state, the guest runs nowhere yet.
  'postcopy-device': 'switchover',
  'postcopy-active': 'postcopy',
  'postcopy-paused': 'postcopy-paused',
  'postcopy-recover-setup': 'postcopy-recover',
  'postcopy-recover': 'postcopy-recover',
  cancelling: 'cancelling',
  colo: 'colo',
};

/** The phase a status shows; null for none, terminal and unknown statuses. */
export function phaseOf(status: string): MigrationPhase | null {
  return PHASES[status] ?? null;
}

export function isPostcopyStatus(status: string): boolean {
  return status.startsWith('postcopy-');
}

/** Phases in which a VM's ping outage is the post-copy outage operators are paged for. */
const POSTCOPY_OUTAGE_PHASES: ReadonlySet<string> = new Set<MigrationPhase>(['postcopy', 'postcopy-paused', 'postcopy-recover']);

export function isPostcopyOutagePhase(phase: string): boolean {
  return POSTCOPY_OUTAGE_PHASES.has(phase);
}

/**
 * How far along one migration a status is. QEMU only moves a migration forward through these
 * stages (the post-copy statuses cycle among themselves when the link breaks and recovers, so
 * they share one stage), so a report of an earlier stage is an older report arriving late.
 */
const STAGES: Readonly<Record<string, number>> = {
  setup: 1,
  'wait-unplug': 2,
  active: 3,
  'pre-switchover': 4,
  device: 5,
  'postcopy-device': 6,
  'postcopy-active': 6,
  'postcopy-paused': 6,
  'postcopy-recover-setup': 6,
  'postcopy-recover': 6,
  colo: 7,
  cancelling: 8,
  completed: 9,
  failed: 9,
  cancelled: 9,
};

/** The stage of a status; null for 'none' and unknown statuses (never judged stale). */
export function stageOf(status: string): number | null {
  return STAGES[status] ?? null;
}

/** The stage of 'active': anything later means the source has left the pre-copy passes. */
export const ACTIVE_STAGE = 3;

/**
 * Statuses in which the SOURCE's query-migrate always carries `ram` (qemu migration.c
 * fill_source_migration_info); the destination never reports `ram`.
 */
const RAM_ON_SOURCE: ReadonlySet<string> = new Set([
  'active',
  'cancelling',
  'pre-switchover',
  'device',
  'postcopy-device',
  'postcopy-active',
  'postcopy-paused',
  'postcopy-recover-setup',
  'postcopy-recover',
  'completed',
]);

/** Whether a source in this status always reports `ram` (so a reply without it is the destination's). */
export function sourceReportsRam(status: string): boolean {
  return RAM_ON_SOURCE.has(status);
}
