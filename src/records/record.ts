/** The per-migration record: what the tracker closes each migration into, and what the API serves. */
import type { RamStats } from '../qemu/types.js';
import type { MigrationPhase, MigrationResult } from '../qemu/status.js';
import type { FrameFigures, FrameKind } from '../sources/frames/types.js';

/**
 * pre-copy only; post-copy from the first pass; hybrid = at least one full pre-copy pass, then
 * post-copy; unknown = the exporter was down across the part that would tell, and no QEMU left can.
 */
export const MIGRATION_MODES = ['precopy', 'postcopy', 'hybrid', 'unknown'] as const;
export type MigrationMode = (typeof MIGRATION_MODES)[number];

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
    /** Block migration: disk bytes copied (libvirt's disk_processed); null without one, or with QMP alone. */
    disk: Figure | null;
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
    /** The destination's postcopy-blocktime: ms its vCPUs were blocked on post-copy page faults (needs the postcopy-blocktime capability there). */
    postcopyBlocktimeMs?: Figure | null;
    errorDesc: string | null;
  };
  /** Every QEMU status seen, in order, with its wall time. */
  statuses: { status: string; at: number; side: 'source' | 'destination' }[];
  /** True when the exporter restarted while this migration ran. */
  resumedAfterRestart: boolean;
  /**
   * What the VM's pings saw (absent: the VM has no ping_address, or the figures are not in yet:
   * they are added once `ping.after` has passed after the end).
   */
  ping?: PingFigures | null;
  /**
   * What nova-compute (and libvirt's per-domain log) said about this migration, from the followed
   * logs (absent: no logs followed for the VM, or no log line matched it). Each figure's evidence
   * names the host and time of the log line.
   */
  nova?: NovaFigures | null;
  /**
   * Bytes on the migration interfaces (hosts[].interfaces) between start and end, from the
   * hosts' interface counters (absent: no interfaces watched on either host).
   */
  interfaces?: InterfaceFigures | null;
  /**
   * Frames from the VM's MAC on the destination's VM-facing device while it migrated (absent:
   * no frame capture for the VM: no device or MAC known, or frames.enabled false).
   */
  frames?: FrameFigures | null;
}

/** What an enricher merges into a closed record: its own section, and the switch to post-copy where only it could tell. */
export type RecordSection = Partial<Pick<MigrationRecord, 'ping' | 'interfaces' | 'nova' | 'frames' | 'postcopyAt'>>;

/** Interface byte counters charged to one migration; each figure's evidence names host, interfaces and reads. */
export interface InterfaceFigures {
  /** Source to destination (the migration stream), as the source sent it and the destination received it. */
  sourceTransmitBytes: Figure | null;
  destinationReceiveBytes: Figure | null;
  /** Destination to source (acknowledgements, and post-copy page requests). */
  destinationTransmitBytes: Figure | null;
  sourceReceiveBytes: Figure | null;
  /** Source transmit bytes over the time between the two reads. */
  throughputBytesPerSecond: Figure | null;
  /** The switch to post-copy inferred from the reverse traffic, when it stands out (wall ms). */
  postcopyInferredAt: Figure | null;
}

export interface NovaFigures {
  instanceUuid: string;
  /** The request id of the live-migration request (`req-…`), when the lines carry one. */
  requestId: string | null;
  /** Host (as configured) whose log has the source's lines, and the destination's. */
  sourceHost: string | null;
  destinationHost: string | null;
  /** nova's name of the destination host, from its own lines ("Migrating instance to NAME …"). */
  destinationName: string | null;
  startedAt: Figure | null;
  /** Seconds the destination took to prepare (pre_live_migration, Rocky+). */
  preLiveMigrationSeconds: Figure | null;
  postcopyAt: Figure | null;
  /** libvirt reported the job completed: the end of the data copy. */
  completedAt: Figure | null;
  /** The destination's lifecycle event "Resumed" (the guest runs there). */
  resumedAt: Figure | null;
  /** The last line of the migration: success, failure, abort or cancel. */
  endedAt: Figure | null;
  result: MigrationResult | null;
  resultEvidence: Evidence | null;
  /** Failure text nova logged (`Live Migration failure: …`), if any. */
  failure: string | null;
  /** From the last progress line: memory and disk bytes processed, remaining and total. */
  progress: {
    at: Figure;
    memoryProcessed: number;
    memoryRemaining: number;
    memoryTotal: number;
    diskProcessed: number | null;
    diskRemaining: number | null;
    diskTotal: number | null;
  } | null;
  /** Memory bytes processed by the last progress line before the switch to post-copy (null: none, or no switch). */
  memoryProcessedBeforePostcopy: number | null;
  /** Downtime steps nova applied (ms, after seconds), in order. */
  downtimeSteps: { downtimeMs: number; afterSeconds: number; at: number }[];
  /** The completion timeout was hit (`Live migration not completed after N sec`). */
  completionTimeoutAt: Figure | null;
  /** libvirt per-domain log: the destination QEMU started for an incoming migration; the source QEMU stopped with reason=migrated. */
  destinationQemuStartedAt: Figure | null;
  sourceQemuStoppedAt: Figure | null;
}

/** nova's view of one migration, under way or just ended, as the state file keeps it between reads. */
export interface NovaMigration {
  vm: string;
  figures: NovaFigures;
  /** Log time of the last line taken. */
  lastLineMs: number;
  closed: boolean;
  /** How good the start time is: 0 monitor started, 1 first copy line, 2 preparation done. */
  startRank: number;
}

/** A run of lost probes; times are probe send times (wall ms), so lengths are known to one period. */
export interface OutageFigure {
  startAt: number;
  /** null: still dark when the figures were taken. */
  endAt: number | null;
  seconds: number;
  lostProbes: number;
  /** Why the guest was unreachable (absent in records made before causes were named). */
  cause?: OutageCauseFigures;
}

/**
 * Why a VM was unreachable (docs/outage-causes.md):
 * - not-announced: nothing from the VM's MAC on the destination's device (no announcement, no
 *   frame of the guest's) before the outage ended, or until the guest itself spoke;
 * - announced-network-slow: frames were seen at T, yet the outage ran on after T;
 * - guest-stalled: the guest was blocked on post-copy page faults (postcopy-blocktime), and
 *   its answers came late rather than not at all;
 * - switch-over: a switch-over blackout that ended as soon as the destination announced the VM
 *   (the pause itself; blackouts only);
 * - unknown: none of these fit; the reason says why each was ruled out.
 */
export const OUTAGE_CAUSES = ['not-announced', 'announced-network-slow', 'guest-stalled', 'switch-over', 'unknown'] as const;
export type OutageCause = (typeof OUTAGE_CAUSES)[number];

export interface OutageCauseFigures {
  cause: OutageCause;
  /** Why this cause, and why the others were ruled out, in words. */
  reason: string;
  /** ms from the destination's RESUME to the first announcement (RARP or gratuitous ARP) seen; null: none seen. */
  announcementAfterResumeMs: number | null;
  /** Announcement rounds seen on the destination's device from RESUME to the outage's end. */
  announcementRounds: number;
  /** The first frame from the VM's MAC on the destination's device after RESUME (wall ms), and its kind. */
  firstFrameAt: number | null;
  firstFrameKind: FrameKind | null;
  /** Seconds the outage ran on after the first frame (the whole outage when the frame came before it); null: no frame. */
  secondsAfterFirstFrame: number | null;
  /** Destination's postcopy-blocktime (ms) for the migration, when reported. */
  postcopyBlocktimeMs: number | null;
  /** Median RTT of the probes answered in the second after the outage (else before it) over the pre-copy mean; null: no such probes. */
  rttRise: number | null;
  evidence: Evidence;
}

export { FRAME_KINDS, type FrameFigures, type FrameKind } from '../sources/frames/types.js';

export interface PhaseProbeStats {
  sent: number;
  lost: number;
  rttMeanMs: number | null;
  rttP99Ms: number | null;
  rttMaxMs: number | null;
}

export interface PingFigures {
  target: string;
  periodMs: number;
  /** The outage spanning the switch-over (source STOP, or the switch to post-copy), clipped at the destination's RESUME plus ping.blackout_grace; null when no probe was lost there. */
  switchoverBlackout: OutageFigure | null;
  /** Outages during post-copy after the blackout (what stale forwarding tables cause). */
  postcopyOutages: OutageFigure[];
  postcopyOutageLongestSeconds: number;
  postcopyOutageTotalSeconds: number;
  /** Probes sent before (ping.before), during pre-copy, during post-copy, and after (ping.after). */
  phases: { before: PhaseProbeStats; precopy: PhaseProbeStats; postcopy: PhaseProbeStats | null; after: PhaseProbeStats };
  evidence: Evidence;
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
