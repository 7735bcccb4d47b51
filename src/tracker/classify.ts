/**
 * Which side of a migration a reply came from, and what makes one reply news after another. The
 * tables of what each status means are in qemu/status.ts.
 */
import type { MigrationInfo } from '../qemu/types.js';
import { sourceReportsRam } from '../qemu/status.js';

export type Side = 'source' | 'destination';

/**
 * Which side of a migration a query-migrate reply (and the run state from query-status) comes
 * from, or null when the reply cannot tell (a source in 'setup' without a run state, 'failed'
 * and 'cancelled' without an error text).
 */
export function sideOfReply(info: MigrationInfo, runState: string | undefined): Side | null {
  if (info.incoming || runState === 'inmigrate') return 'destination';
  if (info.ram !== undefined || info.errorDesc !== undefined) return 'source';
  if (sourceReportsRam(info.status)) return 'destination';
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
