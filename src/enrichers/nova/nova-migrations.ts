/**
 * nova's view of each VM's migrations, from log events (src/sources/logs): which host logged the
 * source's lines and which the destination's, the phase boundaries with the log line times, the
 * bytes of the last progress line, and the result. Pure: events in, closed migrations out; no
 * clock but the times passed in.
 *
 * A migration opens on its first migration line (lifecycle lines alone never open one: a reboot
 * logs Stopped/Started too) and closes on success, failure, abort or cancel: `onClosed` is told
 * then, and again whenever a later line changes its figures. It stays `lingerMs` (log time)
 * longer to take the lines that come after (Juno logs a failure twice; the destination's post
 * step may come last).
 * A new request id opens a new migration.
 */
import type { LogEvent } from '../../sources/logs/source.js';
import type { NovaEvent } from '../../sources/logs/nova-parse.js';
import type { Figure, NovaFigures, NovaMigration } from '../../records/record.js';
import type { MigrationResult } from '../../qemu/status.js';

/** Events that only the source's nova-compute logs. */
const SOURCE_EVENTS = new Set<NovaEvent['kind']>([
  'monitoring-started', 'pre-live-migration', 'progress', 'downtime-step', 'completion-timeout', 'progress-timeout',
  'postcopy-switch', 'postcopy-switch-failed', 'completed', 'aborted', 'cancelled', 'failure', 'manager-failure',
  'monitoring-done', 'post-migration-started', 'success', 'post-operation-failed',
]);

const DEFAULT_LINGER_MS = 30_000;

/** Lines that cannot open a migration, kept a while per VM: another host's log may be read later. */
const MAX_WAITING = 64;
/** A destination prepares before the source starts: how far before a migration's first line its lines may be. */
const BEFORE_START_MS = 120_000;

export class NovaMigrations {
  private readonly open = new Map<string, NovaMigration>();
  private readonly waiting = new Map<string, { host: string; line: Extract<LogEvent, { source: 'nova-compute' }>['line'] }[]>();

  constructor(
    private readonly vmOf: (instanceUuid: string) => string | undefined,
    private readonly onClosed: (migration: NovaMigration) => void,
    private readonly lingerMs = DEFAULT_LINGER_MS,
    private readonly onOpened?: (vm: string) => void,
  ) {}

  /** Migrations under way (for tests and the API). */
  current(): NovaMigration[] {
    return [...this.open.values()];
  }

  /** For the state file: the migrations under way or lingering after their end. */
  snapshot(): NovaMigration[] {
    return [...this.open.values()].map((m) => structuredClone(m));
  }

  /** From the state file. Those already ended are told again: their record may not have been made before the stop. */
  restore(saved: readonly NovaMigration[]): void {
    for (const m of saved) {
      const copy = structuredClone(m);
      this.open.set(m.vm, copy);
      if (copy.closed) this.onClosed(copy);
    }
  }

  observe(event: LogEvent): void {
    const uuid = event.source === 'nova-compute' ? event.line.instanceUuid : event.instanceUuid;
    if (!uuid) return;
    const vm = this.vmOf(uuid);
    if (!vm) return;
    if (event.source === 'libvirt-qemu') return this.observeLibvirt(vm, event);
    const { line } = event;
    const e = line.event;
    let m = this.open.get(vm);
    if (m && m.closed && (line.timeMs - m.lastLineMs > this.lingerMs || (opensMigration(e) && !lateLine(e)))) {
      this.finish(vm, m);
      m = undefined;
    }
    if (m && !m.closed && line.requestId && m.figures.requestId && line.requestId !== m.figures.requestId && opensMigration(e) && SOURCE_EVENTS.has(e.kind)) {
      // A new live-migration request while nova never logged the end of the previous one.
      this.close(m, null, null, line.timeMs);
      this.finish(vm, m);
      m = undefined;
    }
    if (!m) {
      if (!opensMigration(e)) {
        // Each host's log is read on its own: the source's lines of this migration may come later.
        const list = this.waiting.get(vm) ?? [];
        list.push({ host: event.host, line });
        if (list.length > MAX_WAITING) list.shift();
        this.waiting.set(vm, list);
        return;
      }
      m = { vm, figures: emptyFigures(uuid), lastLineMs: line.timeMs, closed: false, startRank: 3 };
      this.open.set(vm, m);
      this.onOpened?.(vm);
      this.apply(m, event.host, line.timeMs, line.requestId, e);
      const early = this.waiting.get(vm) ?? [];
      this.waiting.delete(vm);
      for (const w of early) {
        if (w.line.timeMs >= line.timeMs - BEFORE_START_MS) this.apply(m, w.host, w.line.timeMs, w.line.requestId, w.line.event);
      }
      return;
    }
    this.applyAndRetell(m, () => this.apply(m, event.host, line.timeMs, line.requestId, e));
  }

  /** Applies a line; a closed migration whose figures it changed is told again. */
  private applyAndRetell(m: NovaMigration, apply: () => void): void {
    const before = m.closed ? JSON.stringify(m.figures) : null;
    apply();
    if (before !== null && JSON.stringify(m.figures) !== before) this.onClosed(m);
  }

  /** Closes migrations whose last line is older than `staleMs` (log time vs `nowMs`): nova never logged their end. */
  expire(nowMs: number, staleMs: number): void {
    for (const [vm, list] of this.waiting) {
      const kept = list.filter((w) => nowMs - w.line.timeMs <= BEFORE_START_MS);
      if (kept.length) this.waiting.set(vm, kept);
      else this.waiting.delete(vm);
    }
    for (const [vm, m] of this.open) {
      if (m.closed && nowMs - m.lastLineMs > this.lingerMs) this.finish(vm, m);
      else if (!m.closed && nowMs - m.lastLineMs > staleMs) {
        this.close(m, 'failed', `nova: no line of the migration for ${Math.round(staleMs / 1000)} s after the last one (records.stale_migration_timeout)`, m.lastLineMs);
        this.finish(vm, m);
      }
    }
  }

  private finish(vm: string, _m: NovaMigration): void {
    this.open.delete(vm);
  }

  private apply(m: NovaMigration, host: string, timeMs: number, requestId: string | undefined, e: NovaEvent): void {
    const f = m.figures;
    const fig = (what: string): Figure => ({ value: timeMs, evidence: evidence(host, timeMs, what) });
    m.lastLineMs = Math.max(m.lastLineMs, timeMs);
    if (requestId && !f.requestId && SOURCE_EVENTS.has(e.kind)) f.requestId = requestId;
    if (SOURCE_EVENTS.has(e.kind)) f.sourceHost ??= host;
    if (SOURCE_EVENTS.has(e.kind)) {
      // The start of the data copy, as close as the lines tell: the monitor starts right before
      // the migrate API (DEBUG); else the first copy line (downtime step 0, progress 0 secs);
      // the destination's preparation ends before the copy starts, so it is the last resort.
      const rank = e.kind === 'monitoring-started' ? 0 : e.kind === 'pre-live-migration' ? 2 : 1;
      if (!f.startedAt || rank < m.startRank) {
        f.startedAt = fig(e.kind);
        m.startRank = rank;
      }
    }
    switch (e.kind) {
      case 'pre-live-migration':
        f.preLiveMigrationSeconds = { value: e.seconds, evidence: evidence(host, timeMs, 'pre-live-migration') };
        f.destinationName ??= e.destination;
        break;
      case 'progress':
        f.progress = {
          at: fig('progress'),
          memoryProcessed: e.memory.processed,
          memoryRemaining: e.memory.remaining,
          memoryTotal: e.memory.total,
          diskProcessed: e.disk?.processed ?? null,
          diskRemaining: e.disk?.remaining ?? null,
          diskTotal: e.disk?.total ?? null,
        };
        break;
      case 'downtime-step':
        if (f.downtimeSteps.length < 100) f.downtimeSteps.push({ downtimeMs: e.downtimeMs, afterSeconds: e.afterSeconds, at: timeMs });
        break;
      case 'completion-timeout':
        f.completionTimeoutAt ??= fig('completion-timeout');
        break;
      case 'postcopy-switch':
        if (!f.postcopyAt) {
          f.postcopyAt = fig('postcopy-switch');
          f.memoryProcessedBeforePostcopy = f.progress?.memoryProcessed ?? null;
        }
        break;
      case 'completed':
        f.completedAt ??= fig('completed');
        break;
      case 'success':
        f.destinationName ??= e.destination;
        this.close(m, 'completed', evidence(host, timeMs, 'success'), timeMs);
        break;
      case 'failure':
        f.failure ??= e.reason;
        f.destinationName ??= destinationOfUri(e.reason);
        this.close(m, 'failed', evidence(host, timeMs, 'failure'), timeMs);
        break;
      case 'aborted':
      case 'manager-failure':
        this.close(m, 'failed', evidence(host, timeMs, e.kind), timeMs);
        break;
      case 'cancelled':
        this.close(m, 'cancelled', evidence(host, timeMs, 'cancelled'), timeMs);
        break;
      case 'post-operation-started':
        f.destinationHost ??= host;
        break;
      case 'lifecycle':
        if (e.state === 'Postcopy started' && !f.postcopyAt) {
          f.postcopyAt = fig('lifecycle Postcopy started');
          f.memoryProcessedBeforePostcopy = f.progress?.memoryProcessed ?? null;
        }
        else if (e.state === 'Migration completed') f.completedAt ??= fig('lifecycle Migration completed');
        else if (e.state === 'Resumed' && f.sourceHost !== host) {
          f.destinationHost ??= host;
          f.resumedAt ??= fig('lifecycle Resumed');
        }
        break;
      default:
        break;
    }
  }

  private close(m: NovaMigration, result: MigrationResult | null, why: string | null, timeMs: number): void {
    if (m.closed) return;
    m.closed = true;
    m.figures.result = result;
    m.figures.resultEvidence = why;
    m.figures.endedAt = { value: timeMs, evidence: why ?? 'nova: the last line of the migration' };
    this.onClosed(m);
  }

  private observeLibvirt(vm: string, event: Extract<LogEvent, { source: 'libvirt-qemu' }>): void {
    const m = this.open.get(vm);
    if (m) this.applyAndRetell(m, () => this.applyLibvirt(m, event));
  }

  private applyLibvirt(m: NovaMigration, event: Extract<LogEvent, { source: 'libvirt-qemu' }>): void {
    const f = m.figures;
    if (event.event === 'qemu-incoming') {
      f.destinationHost ??= event.host;
      f.destinationQemuStartedAt ??= { value: event.timeMs, evidence: libvirtEvidence(event.host, event.timeMs, `QEMU started with -incoming ${event.incoming ?? ''}`.trim()) };
    } else if (event.event === 'qemu-shutdown' && event.reason === 'migrated') {
      f.sourceHost ??= event.host;
      f.sourceQemuStoppedAt ??= { value: event.timeMs, evidence: libvirtEvidence(event.host, event.timeMs, 'shutting down, reason=migrated') };
    }
  }
}

/** Lines that say a migration is under way (not lifecycle, not the destination's post step). */
function opensMigration(e: NovaEvent): boolean {
  return e.kind !== 'lifecycle' && e.kind !== 'post-operation-started' && e.kind !== 'monitoring-done' && e.kind !== 'post-operation-failed';
}

/** Lines that follow the end of a migration (a second failure line, the monitor's last word). */
function lateLine(e: NovaEvent): boolean {
  return e.kind === 'manager-failure' || e.kind === 'failure' || e.kind === 'aborted' || e.kind === 'success';
}

function emptyFigures(instanceUuid: string): NovaFigures {
  return {
    instanceUuid,
    requestId: null,
    sourceHost: null,
    destinationHost: null,
    destinationName: null,
    startedAt: null,
    preLiveMigrationSeconds: null,
    postcopyAt: null,
    completedAt: null,
    resumedAt: null,
    endedAt: null,
    result: null,
    resultEvidence: null,
    failure: null,
    progress: null,
    memoryProcessedBeforePostcopy: null,
    downtimeSteps: [],
    completionTimeoutAt: null,
    destinationQemuStartedAt: null,
    sourceQemuStoppedAt: null,
  };
}

export function evidence(host: string, timeMs: number, what: string): string {
  return `nova-compute log on ${host}, line at ${new Date(timeMs).toISOString()}: ${what}`;
}

function libvirtEvidence(host: string, timeMs: number, what: string): string {
  return `libvirt qemu log on ${host}, line at ${new Date(timeMs).toISOString()}: ${what}`;
}

/**
 * The host of the destination's libvirt URI when a failure names it (`Failed to connect to remote
 * libvirt URI qemu+tcp://compute-2/system: ...`), else null. `qemu:///system` names no host.
 */
export function destinationOfUri(reason: string): string | null {
  return /\b(?:qemu|kvm)(?:\+[a-z]+)?:\/\/(?:[^@/\s]*@)?(\[[^\]\s]+\]|[^/:?\s]+)/.exec(reason)?.[1] ?? null;
}
