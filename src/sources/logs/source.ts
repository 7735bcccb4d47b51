/**
 * The log source: one follower per configured log file (local and network-namespace hosts share
 * this machine's files and use FileFollower; SSH hosts use tail through the Host), framing by the
 * LineScanner, nova lines parsed by nova-parse.ts and libvirt lines by libvirt-parse.ts. It hands
 * on typed events with the host that logged them, counts lines for the metrics, reports health
 * per host and the followers' positions for the state file. It knows nothing of Prometheus.
 */
import type { Clock } from '../../clock.js';
import type { Host } from '../../hosts/host.js';
import { errorMessage, LivemigError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { FileFollower, type Follower, type FollowPosition } from './follower.js';
import { HostFollower } from './host-follower.js';
import { parseLibvirtLine } from './libvirt-parse.js';
import { LineScanner, NOVA_MARKERS, type ScanCounts, type ScannedLine } from './line-scanner.js';
import { parseNovaLine, type NovaLogEvent } from './nova-parse.js';
import { parseOsloStamp } from './oslo-line.js';
import { parseTimeZone, type TimeZone } from '../../config/timezone.js';
import type { LogFileConfig, LogKind } from '../../config/log-files.js';

export { LOG_KINDS, type LogKind, type LogFileConfig } from '../../config/log-files.js';

/** Events of libvirt's per-domain log (the `event` label of livemig_log_lines_matched_total). */
export const LIBVIRT_EVENT_KINDS = ['qemu-start', 'qemu-incoming', 'qemu-shutdown'] as const;
export type LibvirtEventKind = (typeof LIBVIRT_EVENT_KINDS)[number];

export interface SavedLogPosition extends FollowPosition {
  host: string;
}

export type LogEvent =
  | { source: 'nova-compute'; host: string; path: string; line: NovaLogEvent }
  | {
      source: 'libvirt-qemu';
      host: string;
      path: string;
      event: LibvirtEventKind;
      timeMs: number;
      instanceUuid?: string;
      /** qemu-shutdown: libvirt's reason (migrated, destroyed, failed, …). */
      reason?: string;
      /** qemu-incoming: QEMU's -incoming argument (defer, tcp:…). */
      incoming?: string;
    };

/** Counters per (host, kind), read at scrape time. */
export interface LogStats {
  host: string;
  kind: LogKind;
  linesRead: number;
  matched: Map<string, number>;
  unparseable: number;
  truncated: number;
  rotations: number;
  /** Wall ms of the newest line's stamp; null before the first stamped line. */
  newestLineMs: number | null;
}

export interface LogSourceOptions {
  files: readonly LogFileConfig[];
  hostOf(name: string): Host;
  maxLineLength: number;
  pollMs: number;
  startAt: 'end' | 'start';
  positions?: readonly SavedLogPosition[];
  clock: Clock;
  logger: Logger;
  onEvent(event: LogEvent): void;
}

interface FileState {
  config: LogFileConfig;
  zone: TimeZone;
  follower: Follower;
  counts: ScanCounts;
  stats: LogStats;
  up: boolean;
  /** The scanner of the file read now (its newest line gives the lag). */
  scanner?: LineScanner;
  /** libvirt: the current QEMU process's uuid and start time, from the lines after `starting up`. */
  domain: { uuid?: string; startedMs?: number };
}

export class LogSource {
  private readonly files: FileState[] = [];

  constructor(private readonly options: LogSourceOptions) {
    const statsByKey = new Map<string, LogStats>();
    for (const config of options.files) {
      const key = `${config.host}\u0000${config.kind}`;
      let stats = statsByKey.get(key);
      if (!stats) {
        stats = { host: config.host, kind: config.kind, linesRead: 0, matched: new Map(), unparseable: 0, truncated: 0, rotations: 0, newestLineMs: null };
        statsByKey.set(key, stats);
      }
      const counts: ScanCounts = { lines: 0, truncated: 0, unstamped: 0 };
      const state: FileState = { config, zone: parseTimeZone(config.timezone), follower: undefined as unknown as Follower, counts, stats, up: true, domain: {} };
      state.follower = this.makeFollower(state);
      this.files.push(state);
    }
  }

  async start(): Promise<void> {
    await Promise.all(
      this.files.map(async (f) => {
        try {
          await f.follower.start();
        } catch (err) {
          f.up = false;
          this.options.logger.warn({ host: f.config.host, path: f.config.path, err: errorMessage(err) }, 'log follower did not start');
        }
      }),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.files.map((f) => f.follower.stop()));
  }

  /** Per host: up when every followed file of the host can be read (or does not exist yet). */
  health(): Map<string, boolean> {
    const out = new Map<string, boolean>();
    for (const f of this.files) out.set(f.config.host, (out.get(f.config.host) ?? true) && f.up);
    return out;
  }

  stats(): LogStats[] {
    const seen = new Set<LogStats>();
    for (const f of this.files) {
      this.syncCounts(f);
      seen.add(f.stats);
    }
    return [...seen];
  }

  positions(): SavedLogPosition[] {
    return this.files.flatMap((f) => {
      const p = f.follower.position();
      return p ? [{ ...p, host: f.config.host }] : [];
    });
  }

  private makeFollower(state: FileState): Follower {
    const { config } = state;
    const host = this.options.hostOf(config.host);
    const resume = this.options.positions?.find((p) => p.host === config.host && p.path === config.path);
    const common = {
      path: config.path,
      makeScanner: () =>
        (state.scanner = new LineScanner({
          maxLineLength: this.options.maxLineLength,
          counts: state.counts,
          ...(config.kind === 'nova-compute' ? { markers: NOVA_MARKERS } : {}),
          onLine: (line) => this.onLine(state, line),
        })),
      startAt: this.options.startAt,
      pollMs: this.options.pollMs,
      ...(resume ? { resume } : {}),
      onRotate: () => {
        state.stats.rotations++;
      },
      onError: (err: LivemigError) => {
        if (state.up) this.options.logger.warn({ host: config.host, path: config.path, err: err.message }, 'log file cannot be read');
        state.up = false;
      },
      onRead: () => {
        state.up = true;
      },
    };
    if (host.kind === 'ssh') return new HostFollower({ ...common, host });
    return new FileFollower(common);
  }

  /** Moves the scanner's counts into the stats (and the lag's newest stamp). */
  private syncCounts(f: FileState): void {
    const { counts, stats } = f;
    stats.linesRead += counts.lines;
    stats.truncated += counts.truncated;
    if (f.config.kind === 'nova-compute') stats.unparseable += counts.unstamped;
    counts.lines = 0;
    counts.truncated = 0;
    counts.unstamped = 0;
    const head = f.scanner?.newestHead;
    if (head !== undefined) {
      const t = f.config.kind === 'nova-compute' ? parseOsloStamp(head, f.zone) : stampOf(parseLibvirtLine(head));
      if (t !== null) this.noteTime(f, t);
    }
  }

  private onLine(f: FileState, line: ScannedLine): void {
    if (f.config.kind === 'nova-compute') this.onNovaLine(f, line);
    else this.onLibvirtLine(f, line);
  }

  private onNovaLine(f: FileState, line: ScannedLine): void {
    const parsed = parseNovaLine(line.text, f.zone);
    if (parsed.kind === 'unparseable') {
      // Unstamped lines are counted by the scanner already.
      if (line.stamped) {
        f.stats.unparseable++;
        const err = new LivemigError('LME_LOG_LINE', [f.config.path, f.config.host, parsed.reason, line.text.slice(0, 200)]);
        this.options.logger.debug({ host: f.config.host, err: err.message }, 'log line not understood');
      }
      return;
    }
    this.noteTime(f, parsed.timeMs);
    if (parsed.kind !== 'event') return;
    f.stats.matched.set(parsed.event.kind, (f.stats.matched.get(parsed.event.kind) ?? 0) + 1);
    this.emit({ source: 'nova-compute', host: f.config.host, path: f.config.path, line: parsed });
  }

  private onLibvirtLine(f: FileState, line: ScannedLine): void {
    const parsed = parseLibvirtLine(line.text);
    const { config, domain } = f;
    switch (parsed.kind) {
      case 'unparseable':
        f.stats.unparseable++;
        return;
      case 'starting':
        this.noteTime(f, parsed.timeMs);
        f.domain = { startedMs: parsed.timeMs };
        this.match(f, 'qemu-start');
        this.emit({ source: 'libvirt-qemu', host: config.host, path: config.path, event: 'qemu-start', timeMs: parsed.timeMs });
        return;
      case 'command-line':
        if (parsed.uuid) domain.uuid = parsed.uuid;
        if (parsed.incoming !== undefined && domain.startedMs !== undefined) {
          this.match(f, 'qemu-incoming');
          this.emit({
            source: 'libvirt-qemu',
            host: config.host,
            path: config.path,
            event: 'qemu-incoming',
            timeMs: domain.startedMs,
            incoming: parsed.incoming,
            ...(domain.uuid ? { instanceUuid: domain.uuid } : {}),
          });
        }
        return;
      case 'shutdown':
        this.noteTime(f, parsed.timeMs);
        this.match(f, 'qemu-shutdown');
        this.emit({
          source: 'libvirt-qemu',
          host: config.host,
          path: config.path,
          event: 'qemu-shutdown',
          timeMs: parsed.timeMs,
          reason: parsed.reason,
          ...(domain.uuid ? { instanceUuid: domain.uuid } : {}),
        });
        return;
      case 'message':
        this.noteTime(f, parsed.timeMs);
        return;
      case 'other':
        return;
    }
  }

  private match(f: FileState, event: string): void {
    f.stats.matched.set(event, (f.stats.matched.get(event) ?? 0) + 1);
  }

  private noteTime(f: FileState, timeMs: number): void {
    if (f.stats.newestLineMs === null || timeMs > f.stats.newestLineMs) f.stats.newestLineMs = timeMs;
  }

  private emit(event: LogEvent): void {
    try {
      this.options.onEvent(event);
    } catch (err) {
      this.options.logger.error({ host: event.host, path: event.path, err: errorMessage(err) }, 'log event handler failed');
    }
  }
}


function stampOf(line: ReturnType<typeof parseLibvirtLine>): number | null {
  return 'timeMs' in line ? line.timeMs : null;
}
