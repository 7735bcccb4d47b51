/**
 * What a QEMU migration status means to the tracker: the phase it shows, whether it ends the
 * migration, how far along a migration it is, and which side of a migration a reply came from.
 * Pure tables over the statuses of QEMU 7.x to 10.2 (qapi/migration.json MigrationStatus).
 */
import type { MigrationInfo } from '../qemu/types.js';
import { MIGRATION_STATUSES } from '../qemu/types.js';
import type { MigrationPhase, MigrationResult } from '../records/record.js';

export type Side = 'source' | 'destination';

const KNOWN: ReadonlySet<string> = new Set(MIGRATION_STATUSES);

export function isKnownStatus(status: string): boolean {
  return KNOWN.has(status);
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
const RAM_ON_SOURCE = new Set([
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

/**
 * Which side of a migration a query-migrate reply (and the run state from query-status) comes
 * from, or null when the reply cannot tell (a source in 'setup' without a run state, 'failed'
 * and 'cancelled' without an error text).
 */
export function sideOfReply(info: MigrationInfo, runState: string | undefined): Side | null {
  if (info.incoming || runState === 'inmigrate') return 'destination';
  if (info.ram !== undefined || info.errorDesc !== undefined) return 'source';
  if (RAM_ON_SOURCE.has(info.status)) return 'destination';
  if (runState === 'finish-migrate' || runState === 'postmigrate') return 'source';
  // A destination waits in 'inmigrate'; any other run state in setup is the outgoing side.
  if (runState !== undefined && (info.status === 'setup' || info.status === 'wait-unplug')) return 'source';
  return null;
}

/**
 * Identifies one terminal (or 'none') reply of a monitor, so that the same reply polled again is
 * recognised as stale and a different one as news.
 */
export function replyFingerprint(info: MigrationInfo): string {
  return JSON.stringify([info.status, info.totalTimeMs ?? null, info.setupTimeMs ?? null, info.ram?.transferred ?? null, info.errorDesc ?? null]);
}
