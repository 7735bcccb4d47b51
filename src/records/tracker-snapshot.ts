/**
 * The tracker's state per VM, as plain data: what the state file keeps across restarts, so a
 * migration that was running when the exporter stopped is continued rather than counted twice.
 * Wall times are ms since the epoch; `mono` values are the exporter's monotonic clock and mean
 * nothing after a restart (they are dropped on load).
 */
import { z } from 'zod';
import { RAM_FIELDS } from '../qemu/types.js';
import { MIGRATION_PHASES, MIGRATION_RESULTS } from '../qemu/status.js';

const side = z.enum(['source', 'destination']);
const via = z.enum(['event', 'poll']);
/** Unset: QMP (states written before libvirt reports existed have none). */
const origin = z.enum(['qmp', 'libvirt']).optional();


/** One status as a side reported it: by a QMP event (QEMU's time stamp) or a poll (poll time). */
const mark = z.object({ status: z.string(), side, at: z.number(), via, origin, what: z.string().optional() });
export type Mark = z.infer<typeof mark>;

const migrationInfo = z.object({
  status: z.string(),
  totalTimeMs: z.number().optional(),
  expectedDowntimeMs: z.number().optional(),
  downtimeMs: z.number().optional(),
  setupTimeMs: z.number().optional(),
  errorDesc: z.string().optional(),
  postcopyBlocktimeMs: z.number().optional(),
  ram: z.partialRecord(z.enum(RAM_FIELDS), z.number()).optional(),
  incoming: z.boolean(),
  origin: z.literal('libvirt').optional(),
  disk: z.object({ total: z.number(), processed: z.number(), remaining: z.number(), bps: z.number() }).partial().optional(),
});

/** A monitor heard from since its last idle status: a migration may be starting there. */
const pending = z.object({
  /** Which side the monitor showed itself to be, once it did. */
  hint: side.nullable(),
  sawSetup: z.boolean(),
  start: z.object({ at: z.number(), mono: z.number().nullable(), via, what: z.string(), origin }),
  /** The first reply with QEMU's total-time: start = poll time - total-time. */
  timed: z.object({ at: z.number(), mono: z.number().nullable(), totalTimeMs: z.number() }).nullable(),
  marks: z.array(mark.omit({ side: true })),
});
export type Pending = z.infer<typeof pending>;

const monitorView = z.object({
  monitor: z.string(),
  host: z.string(),
  /** Last status reported, by poll or event. */
  status: z.string().nullable(),
  /** Fingerprint of the last idle reply ('none' or terminal); null before the first. */
  idleFingerprint: z.string().nullable(),
  /** The migration closed before its final reply: the next terminal reply is that one, not news. */
  absorbNextTerminal: z.boolean(),
  gone: z.boolean(),
  pending: pending.nullable(),
});
export type MonitorView = z.infer<typeof monitorView>;

const gone = z.object({ at: z.number(), mono: z.number().nullable(), reason: z.string() });

const sideTrack = z.object({
  monitor: z.string(),
  host: z.string(),
  status: z.string().nullable(),
  /** Time of the report that set `status`. */
  statusAt: z.number().nullable(),
  stage: z.number(),
  gone: gone.nullable(),
});
export type SideTrack = z.infer<typeof sideTrack>;

/** A time stamp and where it came from; several reports of one moment keep the best one. */
const timed = z.object({ at: z.number(), side, via, what: z.string(), origin });
export type Timed = z.infer<typeof timed>;

const outcome = z.object({
  result: z.enum(MIGRATION_RESULTS),
  at: z.number(),
  mono: z.number().nullable(),
  via,
  status: z.string(),
  origin,
  /** How the report reads in evidence, when it is not QMP's own. */
  what: z.string().optional(),
});
export type Outcome = z.infer<typeof outcome>;

export const DEADLINE_KINDS = ['final-reply', 'undecided', 'paused'] as const;
export type DeadlineKind = (typeof DEADLINE_KINDS)[number];

const openMigration = z.object({
  id: z.string(),
  startedAt: z.object({ value: z.number(), evidence: z.string() }),
  startMono: z.number().nullable(),
  resumedAfterRestart: z.boolean(),
  source: sideTrack,
  destination: sideTrack.nullable(),
  phase: z.enum(MIGRATION_PHASES),
  marks: z.array(mark),
  postcopyAt: timed.nullable(),
  stoppedAt: z.number().nullable(),
  /** Evidence of stoppedAt when it is not QMP's STOP event (libvirt's lifecycle event). */
  stoppedEvidence: z.string().optional(),
  resumedAt: z.number().nullable(),
  /** Evidence of resumedAt when it is not QMP's (libvirt's lifecycle event). */
  resumedEvidence: z.string().optional(),
  /** How resumedAt was seen: QEMU's RESUME event, or else the first destination poll that found the guest running. */
  resumedVia: z.enum(['event', 'poll']).nullable().default(null),
  /** Highest MIGRATION_PASS of the source. */
  maxPass: z.number().nullable(),
  /** Highest MIGRATION_PASS when the source's events first left 'active' (the switch-over). */
  passesAtSwitchover: z.number().nullable(),
  /** The source's event stream had a gap (its monitor went away and came back): maxPass may miss passes. */
  sourceEventsMissed: z.boolean().default(false),
  /** The source's newest reply that was not a late one (the final reply once finalReply is true). */
  latest: z.object({ info: migrationInfo, at: z.number() }).nullable(),
  /** The source's newest reply with `ram` ('failed' and 'cancelled' replies carry none). */
  latestFull: z.object({ info: migrationInfo, at: z.number() }).nullable(),
  /** ram figures of the source's last reply before leaving pre-copy. */
  lastPrecopyRam: z.object({ transferred: z.number().nullable(), dirtySyncCount: z.number().nullable() }).nullable(),
  /** ram.dirty-sync-count of the source's first reply after the switch to post-copy. */
  firstPostcopySyncCount: z.number().nullable(),
  /** Terminal status of the source, and whether its reply (with the final figures) was seen. */
  outcome: outcome.nullable(),
  finalReply: z.boolean(),
  destinationOutcome: outcome.nullable(),
  /** The destination's postcopy-blocktime (ms) from its newest reply that had one. */
  destinationBlocktimeMs: z.number().nullable().default(null),
  pausedSince: z.number().nullable(),
  deadline: z.object({ kind: z.enum(DEADLINE_KINDS), at: z.number() }).nullable(),
  /** Newest wall time of any report about this migration. */
  lastWall: z.number(),
});
export type OpenMigration = z.infer<typeof openMigration>;

const vmState = z.object({
  monitors: z.record(z.string(), monitorView),
  open: openMigration.nullable(),
  /**
   * Newest wall time of the last closed migration. A VM migrates once at a time, so any report
   * older than that is about a migration already closed, arriving late.
   */
  quietUntil: z.number().nullable(),
});
export type VmState = z.infer<typeof vmState>;

export const trackerSnapshotSchema = z.object({ vms: z.record(z.string(), vmState) });
export type TrackerSnapshot = z.infer<typeof trackerSnapshotSchema>;

export function emptyVmState(): VmState {
  return { monitors: {}, open: null, quietUntil: null };
}
