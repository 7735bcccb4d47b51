/**
 * The QMP source: one poll loop per QEMU monitor, slow while the VM is idle and fast while it
 * migrates, plus QEMU's own events. It turns replies into observations for the tracker and keeps
 * the latest reply per monitor for the metrics; it knows nothing of Prometheus.
 */
import type { Clock } from '../../clock.js';
import type { VmConfig } from '../../config/schema.js';
import { errorMessage, LivemigError, type SourceErrorReason } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { MonitorRef, Observation } from '../../observations.js';
import { parseQueryMigrate } from './parse.js';
import { isInProgress } from '../../qemu/status.js';
import { describeQmpEndpoint, type MigrationInfo, type QmpEndpoint, type QmpEvent } from '../../qemu/types.js';

/** What the source needs of a monitor connection (QmpMonitor implements it). */
export interface MonitorHandle {
  readonly isUp: boolean;
  readonly reconnectCount: number;
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  on(event: 'up', listener: () => void): unknown;
  on(event: 'down', listener: (reason: Error) => void): unknown;
  on(event: 'event', listener: (event: QmpEvent) => void): unknown;
  on(event: 'protocol-error', listener: (error: Error) => void): unknown;
  on(event: 'failed', listener: (reason: Error) => void): unknown;
  start(): void;
  stop(): Promise<void>;
}

/** `host`: the name of the host the monitor lives on (config `monitors[].host`). */
export type MonitorFactory = (endpoint: QmpEndpoint, target: string, host: string) => MonitorHandle;

export interface MonitorState {
  ref: MonitorRef;
  endpoint: string;
  up: boolean;
  reconnects: number;
  info: MigrationInfo | null;
  runState: string | null;
  /** 'absent': the QEMU is not running there (normal for a source after migrating). */
  lastProblem: 'none' | 'absent' | 'error';
}

export interface QmpSourceOptions {
  clock: Clock;
  logger: Logger;
  idleIntervalMs: number;
  migratingIntervalMs: number;
  commandTimeoutMs: number;
  createMonitor: MonitorFactory;
  onObservation(observation: Observation): void;
  onError(host: string, reason: SourceErrorReason): void;
  random?: () => number;
}

interface Poller {
  state: MonitorState;
  vm: string;
  monitor: MonitorHandle;
  timer: NodeJS.Timeout | null;
  polling: boolean;
  /** A poll was asked for while one ran (e.g. a MIGRATION event): run it right after. */
  pollAgain: boolean;
  stopped: boolean;
  /** Its QEMU was found not running since the monitor was last up (told once as monitor-gone). */
  absentTold: boolean;
}

export class QmpSource {
  private readonly pollers = new Map<string, Poller>();
  /** VMs with a migration under way, polled at the fast interval. */
  private readonly migrating = new Set<string>();
  private readonly random: () => number;

  constructor(private readonly options: QmpSourceOptions) {
    this.random = options.random ?? Math.random;
  }

  /** Adds monitors that are new, stops those no longer wanted; the others keep their state. */
  async setVms(vms: readonly VmConfig[]): Promise<void> {
    const wanted = new Map<string, { vm: string; host: string; id: string; endpoint: QmpEndpoint }>();
    for (const vm of vms) {
      for (const m of vm.monitors) wanted.set(key(vm.name, m.id), { vm: vm.name, host: m.host, id: m.id, endpoint: m.endpoint });
    }
    const removals: Promise<void>[] = [];
    for (const [k, poller] of this.pollers) {
      if (!wanted.has(k)) removals.push(this.remove(k, poller));
    }
    await Promise.all(removals);
    for (const [k, w] of wanted) {
      if (!this.pollers.has(k)) this.add(k, w);
    }
  }

  snapshot(): Iterable<MonitorState> {
    return [...this.pollers.values()].map((p) => p.state);
  }

  /** Per host: up unless a monitor there failed for another reason than its QEMU being absent. */
  hostHealth(): Map<string, boolean> {
    const health = new Map<string, boolean>();
    for (const { state } of this.pollers.values()) {
      const ok = state.lastProblem !== 'error';
      health.set(state.ref.host, (health.get(state.ref.host) ?? true) && ok);
    }
    return health;
  }

  isMigrating(vm: string): boolean {
    return this.migrating.has(vm);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.pollers].map(([k, p]) => this.remove(k, p, false)));
  }

  private add(k: string, w: { vm: string; host: string; id: string; endpoint: QmpEndpoint }): void {
    const target = `${w.vm}@${describeQmpEndpoint(w.endpoint)}`;
    const monitor = this.options.createMonitor(w.endpoint, target, w.host);
    const poller: Poller = {
      vm: w.vm,
      monitor,
      timer: null,
      polling: false,
      pollAgain: false,
      stopped: false,
      absentTold: false,
      state: {
        ref: { vm: w.vm, host: w.host, monitor: w.id },
        endpoint: describeQmpEndpoint(w.endpoint),
        up: false,
        reconnects: 0,
        info: null,
        runState: null,
        lastProblem: 'none',
      },
    };
    this.pollers.set(k, poller);
    monitor.on('up', () => {
      poller.state.up = true;
      // A monitor that failed stays in trouble until a poll answers: one that greets and drops
      // the connection again is not up in any sense that matters.
      if (poller.state.lastProblem === 'absent') poller.state.lastProblem = 'none';
      poller.absentTold = false;
      this.schedule(poller, 0);
    });
    monitor.on('failed', (reason) => {
      if (poller.stopped) return;
      poller.state.reconnects = monitor.reconnectCount;
      poller.state.lastProblem = isAbsent(reason) ? 'absent' : 'error';
      if (poller.state.lastProblem === 'error') this.options.onError(w.host, classify(reason));
      // A QEMU that is not there, never seen up since the start (an exporter restarted after the
      // QEMUs of a migration exited): the tracker must hear that it is gone, or a migration it
      // restored stays open for ever.
      if (poller.state.lastProblem === 'absent' && !poller.absentTold) {
        poller.absentTold = true;
        this.emitGone(poller, `QEMU not running: ${errorMessage(reason)}`);
      }
    });
    monitor.on('down', (reason) => {
      // Our own stop (shutdown, VM removed) is not the QEMU going away.
      if (poller.stopped) return;
      const wasUp = poller.state.up;
      poller.state.up = false;
      poller.state.reconnects = monitor.reconnectCount;
      poller.state.lastProblem = isAbsent(reason) ? 'absent' : 'error';
      if (poller.state.lastProblem === 'error') this.options.onError(w.host, classify(reason));
      if (wasUp) this.emitGone(poller, errorMessage(reason));
      if (wasUp && poller.state.lastProblem === 'absent') poller.absentTold = true;
    });
    monitor.on('event', (event) => this.onEvent(poller, event));
    monitor.on('protocol-error', () => this.options.onError(w.host, 'protocol'));
    monitor.start();
    // Splay: monitors start spread over one idle interval rather than all at once.
    this.schedule(poller, this.random() * this.options.idleIntervalMs);
  }

  private async remove(k: string, poller: Poller, announce = true): Promise<void> {
    poller.stopped = true;
    if (poller.timer) clearTimeout(poller.timer);
    this.pollers.delete(k);
    await poller.monitor.stop();
    if (announce && poller.state.up) this.emitGone(poller, 'monitor removed (VM no longer watched or domain gone)');
  }

  private emitGone(poller: Poller, reason: string): void {
    const { clock } = this.options;
    this.options.onObservation({ kind: 'monitor-gone', ref: poller.state.ref, wallMs: clock.wallMs(), monoMs: clock.monoMs(), reason });
  }

  private onEvent(poller: Poller, event: QmpEvent): void {
    const { clock } = this.options;
    const wallMs = event.timestamp.seconds * 1000 + event.timestamp.microseconds / 1000;
    this.options.onObservation({
      kind: 'qmp-event',
      ref: poller.state.ref,
      wallMs,
      monoMs: clock.monoMs(),
      event: event.event,
      data: event.data ?? {},
    });
    if (event.event === 'MIGRATION') {
      const status = String(event.data?.status ?? '');
      this.setMigrating(poller.vm, isInProgress(status));
      // A status change is worth a fresh reply (ram figures at the boundary) right now.
      this.schedule(poller, 0);
    }
  }

  private setMigrating(vm: string, migrating: boolean): void {
    if (migrating === this.migrating.has(vm)) return;
    if (migrating) this.migrating.add(vm);
    else this.migrating.delete(vm);
    this.options.logger.debug({ vm, migrating }, 'poll rate changed');
    // Every monitor of the VM follows: the destination matters as much as the source.
    for (const p of this.pollers.values()) if (p.vm === vm) this.schedule(p, migrating ? 0 : this.interval(vm));
  }

  private interval(vm: string): number {
    return this.migrating.has(vm) ? this.options.migratingIntervalMs : this.options.idleIntervalMs;
  }

  private schedule(poller: Poller, delayMs: number): void {
    if (poller.stopped) return;
    if (poller.timer) clearTimeout(poller.timer);
    poller.timer = setTimeout(() => void this.poll(poller), delayMs);
  }

  private async poll(poller: Poller): Promise<void> {
    poller.timer = null;
    if (poller.stopped) return;
    if (poller.polling) {
      poller.pollAgain = true;
      return;
    }
    poller.polling = true;
    poller.pollAgain = false;
    const started = this.options.clock.monoMs();
    try {
      if (poller.monitor.isUp) await this.pollOnce(poller);
    } finally {
      poller.polling = false;
      const elapsed = this.options.clock.monoMs() - started;
      if (poller.pollAgain) this.schedule(poller, 0);
      else if (!poller.timer) this.schedule(poller, Math.max(0, this.interval(poller.vm) - elapsed));
    }
  }

  private async pollOnce(poller: Poller): Promise<void> {
    const { clock, commandTimeoutMs, logger } = this.options;
    const { state, monitor } = poller;
    try {
      const reply = await monitor.execute('query-migrate', undefined, commandTimeoutMs);
      const wallMs = clock.wallMs();
      const monoMs = clock.monoMs();
      const info = parseQueryMigrate(reply, state.endpoint);
      const inProgress = isInProgress(info.status);
      // The run state tells a destination waiting for its migration (inmigrate) and the
      // switch-over on the source; worth the second round trip only around a migration.
      let runState: string | undefined;
      if (inProgress || info.status !== state.info?.status || state.runState === 'inmigrate') {
        const status = await monitor.execute<{ status?: unknown }>('query-status', undefined, commandTimeoutMs);
        if (typeof status?.status === 'string') runState = status.status;
      }
      if (info.status !== state.info?.status) logger.debug({ vm: state.ref.vm, host: state.ref.host, status: info.status }, 'QEMU migration status');
      state.info = info;
      if (runState !== undefined) state.runState = runState;
      state.lastProblem = 'none';
      this.options.onObservation({ kind: 'qmp-status', ref: state.ref, wallMs, monoMs, info, ...(runState !== undefined ? { runState } : {}) });
      this.updateMigrating(poller.vm);
    } catch (err) {
      const reason = classify(err);
      this.options.onError(state.ref.host, reason);
      // Losing the connection mid-command is the monitor's 'down', not a poll error to shout about.
      if (monitor.isUp) {
        state.lastProblem = 'error';
        logger.warn({ vm: state.ref.vm, host: state.ref.host, err: errorMessage(err) }, 'query-migrate failed');
      }
    }
  }

  private updateMigrating(vm: string): void {
    let any = false;
    for (const p of this.pollers.values()) {
      if (p.vm === vm && p.state.up && p.state.info && isInProgress(p.state.info.status)) any = true;
    }
    this.setMigrating(vm, any);
  }
}

function key(vm: string, monitorId: string): string {
  return `${vm}\u0000${monitorId}`;
}

/** A socket that is not there or refuses: the QEMU is not running on that host right now. */
function isAbsent(err: Error): boolean {
  const codes = new Set(['ENOENT', 'ECONNREFUSED']);
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (codes.has((e as NodeJS.ErrnoException).code ?? '')) return true;
  }
  return /domain not found|failed to get domain|not running|no domain with matching/i.test(err.message);
}

function classify(err: unknown): SourceErrorReason {
  if (!(err instanceof LivemigError)) return 'protocol';
  switch (err.code) {
    case 'LME_QMP_TIMEOUT':
      return 'timeout';
    case 'LME_QMP_COMMAND':
      return 'command';
    case 'LME_QMP_REPLY':
      return 'reply';
    case 'LME_VIRSH_FAILED':
      return 'virsh';
    case 'LME_QMP_CONNECT':
    case 'LME_QMP_CLOSED':
      return 'connect';
    default:
      return 'protocol';
  }
}
