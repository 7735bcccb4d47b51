/**
 * The metric catalogue: every metric the exporter serves, in one place (names, help, labels,
 * buckets). Sources and the tracker never create metrics; the metrics layer reads them.
 * Names follow prometheus.io naming: `livemig_` prefix, base units, `_total` on counters.
 */
import type { RamField } from '../qemu/types.js';

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricDef {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly labels: readonly string[];
}

export interface HistogramDef extends MetricDef {
  readonly type: 'histogram';
  readonly buckets: readonly number[];
}

const NS = 'livemig';
const MONITOR_LABELS = ['vm', 'host'] as const;
/** The small, bounded label set of every migration histogram and counter. */
export const MIGRATION_LABELS = ['result', 'mode', 'flavor'] as const;

const def = <T extends MetricDef>(d: T): T => d;

/** Seconds: 0.5 s .. about 2 h; migrations of large VMs take hours with throttled disks. */
const DURATION_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];
/** Seconds: 1 ms .. 60 s, for QEMU's switch-over downtime and guest-visible outages. */
const DOWNTIME_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10, 30, 60];
/** Seconds: 50 µs (a probe on one host) .. 10 s (a probe about to time out). */
const RTT_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Bytes: 1 MiB .. 1 TiB in powers of 4. */
const BYTES_BUCKETS = Array.from({ length: 11 }, (_, i) => 2 ** (20 + 2 * i));

export const METRICS = {
  // --- QEMU, per monitor (vm, host): read from query-migrate at scrape time -------------------
  qemuStatus: def({
    name: `${NS}_qemu_migration_status`,
    help: 'QEMU migration status reported by query-migrate, as a state set: 1 for the current status.',
    type: 'gauge',
    labels: [...MONITOR_LABELS, 'status'],
  }),
  qemuTotalTime: def({
    name: `${NS}_qemu_migration_total_time_seconds`,
    help: 'Time since the migration started, or its final total, as QEMU reports it (total-time).',
    type: 'gauge',
    labels: MONITOR_LABELS,
  }),
  qemuSetupTime: def({
    name: `${NS}_qemu_migration_setup_time_seconds`,
    help: 'Time QEMU spent setting up the migration before the first pass (setup-time).',
    type: 'gauge',
    labels: MONITOR_LABELS,
  }),
  qemuExpectedDowntime: def({
    name: `${NS}_qemu_migration_expected_downtime_seconds`,
    help: 'Downtime QEMU expects at the switch-over if it stopped the guest now (expected-downtime).',
    type: 'gauge',
    labels: MONITOR_LABELS,
  }),
  qemuDowntime: def({
    name: `${NS}_qemu_migration_downtime_seconds`,
    help: 'Time the guest was stopped at the switch-over, as QEMU measured it (downtime).',
    type: 'gauge',
    labels: MONITOR_LABELS,
  }),
  qemuPostcopyBlocktime: def({
    name: `${NS}_qemu_migration_postcopy_blocktime_seconds`,
    help: 'Time vCPUs were blocked on post-copy page faults, on the destination (postcopy-blocktime).',
    type: 'gauge',
    labels: MONITOR_LABELS,
  }),
  qmpMonitorUp: def({
    name: `${NS}_qmp_monitor_up`,
    help: 'Whether the exporter is connected to this QEMU monitor (0 is normal for a source QEMU that exited after migrating).',
    type: 'gauge',
    labels: MONITOR_LABELS,
  }),
  qmpReconnects: def({
    name: `${NS}_qmp_reconnects_total`,
    help: 'Connections made to this QEMU monitor after the first one.',
    type: 'counter',
    labels: MONITOR_LABELS,
  }),

  // --- Migrations, from the tracker -----------------------------------------------------------
  migrationsTotal: def({
    name: `${NS}_migrations_total`,
    help: 'Migrations that ended, by result and mode.',
    type: 'counter',
    labels: ['result', 'mode'],
  }),
  migrationDuration: def({
    name: `${NS}_migration_duration_seconds`,
    help: 'Time from the start of a migration to its end.',
    type: 'histogram',
    labels: MIGRATION_LABELS,
    buckets: DURATION_BUCKETS,
  }),
  migrationTransferred: def({
    name: `${NS}_migration_transferred_bytes`,
    help: 'Bytes of guest memory a migration sent, pre-copy and post-copy together.',
    type: 'histogram',
    labels: MIGRATION_LABELS,
    buckets: BYTES_BUCKETS,
  }),
  migrationQemuDowntime: def({
    name: `${NS}_migration_qemu_downtime_seconds`,
    help: 'Switch-over downtime of a migration as QEMU measured it (guest stopped on the source until it runs on the destination).',
    type: 'histogram',
    labels: MIGRATION_LABELS,
    buckets: DOWNTIME_BUCKETS,
  }),
  migrationBlackout: def({
    name: `${NS}_migration_blackout_seconds`,
    help: 'Guest-visible switch-over blackout of a migration, from ping (0 when no probe was lost); observed once the ping.after window has passed.',
    type: 'histogram',
    labels: MIGRATION_LABELS,
    buckets: DOWNTIME_BUCKETS,
  }),
  migrationPostcopyOutage: def({
    name: `${NS}_migration_postcopy_outage_seconds`,
    help: 'Total guest-visible outage during the post-copy phase of a migration, from ping, after the switch-over blackout.',
    type: 'histogram',
    labels: MIGRATION_LABELS,
    buckets: DOWNTIME_BUCKETS,
  }),
  currentPostcopyOutage: def({
    name: `${NS}_migration_current_postcopy_outage_seconds`,
    help: 'Current ping outage of a VM in post-copy (0 while it answers); absent when the VM is not in post-copy. Alert on this.',
    type: 'gauge',
    labels: ['vm'],
  }),
  postcopyOutagesByCause: def({
    name: `${NS}_migration_postcopy_outages_total`,
    help: 'Post-copy outages by cause (not-announced, announced-network-slow, guest-stalled, unknown), from ping, the destination\'s frames and postcopy-blocktime; counted once a record\'s ping figures are in.',
    type: 'counter',
    labels: ['cause'],
  }),
  switchoverBlackoutsByCause: def({
    name: `${NS}_migration_switchover_blackouts_total`,
    help: 'Switch-over blackouts by cause (switch-over: it ended once the destination announced the VM; or a post-copy outage cause), counted once a record\'s ping figures are in.',
    type: 'counter',
    labels: ['cause'],
  }),
  currentOutageCause: def({
    name: `${NS}_migration_current_postcopy_outage_cause`,
    help: 'Provisional cause of the post-copy outage under way (1), from the destination\'s frames so far; absent when the VM is not in a post-copy outage. The record names the final cause.',
    type: 'gauge',
    labels: ['vm', 'cause'],
  }),
  migrationPhase: def({
    name: `${NS}_migration_phase`,
    help: 'Phase of the migration running now, as a state set per migrating VM; absent when the VM is not migrating.',
    type: 'gauge',
    labels: ['vm', 'phase'],
  }),
  migrationInProgress: def({
    name: `${NS}_migration_in_progress_info`,
    help: 'A migration running now, with its source and destination hosts.',
    type: 'gauge',
    labels: ['vm', 'source_host', 'destination_host'],
  }),
  migrationStarted: def({
    name: `${NS}_migration_started_timestamp_seconds`,
    help: 'Wall-clock time the running migration of this VM started.',
    type: 'gauge',
    labels: ['vm'],
  }),
  lastInfo: def({
    name: `${NS}_last_migration_info`,
    help: "The VM's last migration: result, mode and hosts (expires after records.last_migration_ttl).",
    type: 'gauge',
    labels: ['vm', 'result', 'mode', 'source_host', 'destination_host'],
  }),
  lastEnd: def({
    name: `${NS}_last_migration_end_timestamp_seconds`,
    help: "Wall-clock time the VM's last migration ended.",
    type: 'gauge',
    labels: ['vm'],
  }),
  lastDuration: def({
    name: `${NS}_last_migration_duration_seconds`,
    help: "Duration of the VM's last migration.",
    type: 'gauge',
    labels: ['vm'],
  }),
  lastTransferred: def({
    name: `${NS}_last_migration_transferred_bytes`,
    help: "Bytes the VM's last migration sent, by phase (precopy, postcopy, downtime) and in all (total).",
    type: 'gauge',
    labels: ['vm', 'phase'],
  }),
  lastQemuDowntime: def({
    name: `${NS}_last_migration_qemu_downtime_seconds`,
    help: "Switch-over downtime of the VM's last migration as QEMU measured it.",
    type: 'gauge',
    labels: ['vm'],
  }),
  lastBlackout: def({
    name: `${NS}_last_migration_blackout_seconds`,
    help: "Guest-visible switch-over blackout of the VM's last migration, from ping.",
    type: 'gauge',
    labels: ['vm'],
  }),
  lastPostcopyOutage: def({
    name: `${NS}_last_migration_postcopy_outage_seconds`,
    help: "Total guest-visible outage during the post-copy phase of the VM's last migration, from ping.",
    type: 'gauge',
    labels: ['vm'],
  }),
  lastOutageStart: def({
    name: `${NS}_last_migration_outage_start_timestamp_seconds`,
    help: "Start of each outage of the VM's last migration (outage: blackout, postcopy-1..10), with its cause: the detail dashboard's annotations.",
    type: 'gauge',
    labels: ['vm', 'outage', 'cause'],
  }),
  vmInfo: def({
    name: `${NS}_vm_info`,
    help: 'A watched VM with its flavor and free labels from the config; join on vm.',
    type: 'gauge',
    labels: ['vm', 'flavor'],
  }),

  // --- Ping, per VM with a ping_address: computed at scrape time from the ping source ---------
  pingRtt: def({
    name: `${NS}_ping_rtt_seconds`,
    help: 'Round-trip time of answered probes.',
    type: 'histogram',
    labels: ['vm'],
    buckets: RTT_BUCKETS,
  }),
  pingSent: def({
    name: `${NS}_ping_probes_sent_total`,
    help: 'Probes sent whose fate is known (answered or lost).',
    type: 'counter',
    labels: ['vm'],
  }),
  pingReceived: def({
    name: `${NS}_ping_replies_received_total`,
    help: 'Probes answered.',
    type: 'counter',
    labels: ['vm'],
  }),
  pingDuplicates: def({
    name: `${NS}_ping_duplicate_replies_total`,
    help: 'Extra replies to probes already answered.',
    type: 'counter',
    labels: ['vm'],
  }),
  pingOutage: def({
    name: `${NS}_ping_outage_seconds`,
    help: 'Length of the current run of lost probes, from the send time of the first lost one; 0 while answering.',
    type: 'gauge',
    labels: ['vm'],
  }),

  // --- Health ---------------------------------------------------------------------------------
  sourceUp: def({
    name: `${NS}_source_up`,
    help: 'Whether a source works on a host: 1 when it reached what it reads, or found nothing to read; 0 on errors.',
    type: 'gauge',
    labels: ['source', 'host'],
  }),
  seriesRefused: def({
    name: `${NS}_series_refused_total`,
    help: 'Things refused a series of their own because a cardinality cap was reached: kind vm (discovered domains past the cap), interface (interfaces of one host past the cap).',
    type: 'counter',
    labels: ['kind'],
  }),
  sourceErrors: def({
    name: `${NS}_source_errors_total`,
    help: 'Errors of a source on a host, by reason.',
    type: 'counter',
    labels: ['source', 'host', 'reason'],
  }),
  stateFileWrites: def({
    name: `${NS}_state_file_writes_total`,
    help: 'Writes of the state file, by result (ok, error).',
    type: 'counter',
    labels: ['result'],
  }),
  records: def({
    name: `${NS}_migration_records`,
    help: 'Migration records held (bounded by records.max_count and records.max_age).',
    type: 'gauge',
    labels: [],
  }),
  buildInfo: def({
    name: `${NS}_build_info`,
    help: 'Version and git revision of the exporter, and the version of Node.js it runs on; always 1.',
    type: 'gauge',
    labels: ['version', 'revision', 'nodejs'],
  }),
  labInfo: def({
    name: `${NS}_lab_info`,
    help: 'Present when the exporter runs inside `livemig-exporter lab`: its engine, and simulated="true" when no VM really migrates (engine sim); always 1.',
    type: 'gauge',
    labels: ['engine', 'simulated'],
  }),

  // --- Logs, per followed (host, kind): nova-compute and libvirt per-domain logs -------------
  logLinesRead: def({
    name: `${NS}_log_lines_read_total`,
    help: 'Complete lines read from followed log files.',
    type: 'counter',
    labels: ['host', 'kind'],
  }),
  logLinesMatched: def({
    name: `${NS}_log_lines_matched_total`,
    help: 'Log lines that are a live-migration event, by event.',
    type: 'counter',
    labels: ['host', 'kind', 'event'],
  }),
  logLinesUnparseable: def({
    name: `${NS}_log_lines_unparseable_total`,
    help: 'Log lines outside the expected layout (no time stamp, or a migration line whose layout does not parse); skipped.',
    type: 'counter',
    labels: ['host', 'kind'],
  }),
  logLinesTruncated: def({
    name: `${NS}_log_lines_truncated_total`,
    help: 'Log lines longer than logs_options.max_line_length; only their start was read.',
    type: 'counter',
    labels: ['host', 'kind'],
  }),
  logRotations: def({
    name: `${NS}_log_rotations_total`,
    help: 'Rotations of followed log files seen (rename and create, copytruncate, deletion and re-creation).',
    type: 'counter',
    labels: ['host', 'kind'],
  }),
  logLag: def({
    name: `${NS}_log_lag_seconds`,
    help: 'Follower lag: now minus the time stamp of the newest line read (also grows while the log is quiet).',
    type: 'gauge',
    labels: ['host', 'kind'],
  }),
  interfaceReceiveBytes: def({
    name: `${NS}_interface_receive_bytes_total`,
    help: 'Bytes received on a watched interface of a host (hosts[].interfaces), counted on across counter resets (device re-created) and wraps.',
    type: 'counter',
    labels: ['host', 'interface'],
  }),
  interfaceTransmitBytes: def({
    name: `${NS}_interface_transmit_bytes_total`,
    help: 'Bytes sent on a watched interface of a host (hosts[].interfaces), counted on across counter resets (device re-created) and wraps.',
    type: 'counter',
    labels: ['host', 'interface'],
  }),
} as const;

/**
 * Every numeric `ram` field of query-migrate as a gauge per monitor, in base units.
 * QEMU reports `mbps` in Mbit/s (10^6 bit): exported as bytes per second.
 */
export const RAM_METRICS: readonly { field: RamField; name: string; help: string; scale: number }[] = [
  ram('transferred', 'transferred_bytes', 'Bytes sent so far (all channels).'),
  ram('remaining', 'remaining_bytes', 'Bytes still to send (dirty pages times page size).'),
  ram('total', 'total_bytes', 'Guest RAM size.'),
  ram('duplicate', 'zero_pages', 'Zero pages found (sent as a marker, not as data).'),
  ram('normal', 'normal_pages', 'Full pages sent.'),
  ram('normal-bytes', 'normal_bytes', 'Bytes of full pages sent.'),
  ram('dirty-pages-rate', 'dirty_pages_per_second', 'Pages the guest dirties per second, as of the last bitmap sync.'),
  ram('mbps', 'throughput_bytes_per_second', 'Migration throughput (QEMU mbps, converted to bytes per second).', 125_000),
  ram('dirty-sync-count', 'dirty_syncs', 'Dirty-bitmap syncs: the pass (iteration) count.'),
  ram('postcopy-requests', 'postcopy_requests', 'Page requests received from the destination in post-copy.'),
  ram('page-size', 'page_size_bytes', 'Page size of the page counts.'),
  ram('multifd-bytes', 'multifd_bytes', 'Bytes sent over multifd channels.'),
  ram('pages-per-second', 'pages_per_second', 'Pages sent per second.'),
  ram('precopy-bytes', 'precopy_bytes', 'Bytes sent in the pre-copy phase.'),
  ram('downtime-bytes', 'downtime_bytes', 'Bytes sent while the guest was stopped.'),
  ram('postcopy-bytes', 'postcopy_bytes', 'Bytes sent in the post-copy phase.'),
  ram('dirty-sync-missed-zero-copy', 'dirty_sync_missed_zero_copy', 'Dirty syncs that missed zero-copy sends.'),
];

function ram(field: RamField, suffix: string, help: string, scale = 1) {
  return { field, name: `${NS}_qemu_migration_ram_${suffix}`, help: `QEMU query-migrate ram.${field}: ${help}`, scale };
}

export const MIGRATION_BUCKETS = { duration: DURATION_BUCKETS, downtime: DOWNTIME_BUCKETS, bytes: BYTES_BUCKETS };
