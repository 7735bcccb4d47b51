/**
 * The ping source: probes every target with fping, sharded over as many long-lived fping
 * processes as the probe rate needs, and turns their lines into per-target counters, a current
 * outage and PingObservations (each target's probes in sequence order, with send times). It knows
 * nothing of Prometheus: RTTs, observations and errors go out through callbacks, counters through
 * snapshot() at scrape time.
 */
import type { Clock } from '../../clock.js';
import { LivemigError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { PingObservation } from '../../observations.js';
import { CurrentOutage } from './current-outage.js';
import { FpingProcess, type FpingRun, type FpingSettings } from './fping.js';
import type { FpingLine } from './parse.js';
import { ProbeSequencer, type ProbeResult } from './sequencer.js';
import { planShards, sendIntervalMs, targetsPerProcess } from './shards.js';
import type { PingCounters, PingHealth, PingProcessState, PingTarget, PingTargetState } from './types.js';
import { checkedCount, checkedMs, validateTargets } from './validate.js';

export interface PingSourceOptions {
  clock: Clock;
  logger: Logger;
  /** Time between two probes of one target, 10 ms to 10 s. */
  periodMs?: number;
  /** A probe without a reply after this long is lost (fping -t), 10 ms to 10 s. */
  timeoutMs?: number;
  sourceAddress?: string;
  fpingPath?: string;
  netns?: string;
  ipBinary?: string;
  user?: { uid: number; gid: number };
  maxTargetsPerProcess?: number;
  maxProbesPerSecondPerProcess?: number;
  restartBackoff?: { baseMs: number; capMs: number };
  random?: () => number;
  onObservation(observation: PingObservation): void;
  /** Every first reply to a probe, as it arrives (before ordering holds it back). */
  onRtt?(target: PingTarget, rttMs: number): void;
  onError(error: LivemigError): void;
}

export const PING_DEFAULTS = {
  periodMs: 100,
  timeoutMs: 1000,
  fpingPath: 'fping',
  maxTargetsPerProcess: 500,
  maxProbesPerSecondPerProcess: 5000,
  restartBackoff: { baseMs: 500, capMs: 30_000 },
} as const;

interface TargetEntry {
  target: PingTarget;
  counters: PingCounters;
  outage: CurrentOutage;
  shard: number;
  /** Target sequence of fping's probe 0 in the current process. */
  base: number;
  nextSequence: number;
  /** null while its fping process is not running. */
  sequencer: ProbeSequencer | null;
}

interface Shard {
  id: number;
  addresses: readonly string[];
  process: FpingProcess;
  intervalMs: number;
  run: number;
  sawLine: boolean;
}

export class PingSource {
  private readonly targets = new Map<string, TargetEntry>();
  private readonly shards = new Map<number, Shard>();
  private readonly periodMs: number;
  private readonly timeoutMs: number;
  private readonly capacity: number;
  private readonly graceMs: number;
  private sweepTimer: NodeJS.Timeout | null = null;
  private applying: Promise<void> = Promise.resolve();
  private retiredRestarts = 0;
  private stopped = false;

  constructor(private readonly options: PingSourceOptions) {
    this.periodMs = checkedMs('periodMs', options.periodMs ?? PING_DEFAULTS.periodMs);
    this.timeoutMs = checkedMs('timeoutMs', options.timeoutMs ?? PING_DEFAULTS.timeoutMs);
    const maxTargets = checkedCount('maxTargetsPerProcess', options.maxTargetsPerProcess ?? PING_DEFAULTS.maxTargetsPerProcess);
    const maxRate = checkedCount('maxProbesPerSecondPerProcess', options.maxProbesPerSecondPerProcess ?? PING_DEFAULTS.maxProbesPerSecondPerProcess);
    this.capacity = targetsPerProcess(this.periodMs, maxTargets, maxRate);
    // A probe fping never reports (it could not send it) is declared lost this long after its timeout.
    this.graceMs = Math.max(1000, 2 * this.periodMs);
  }

  /**
   * Replaces the target list. Targets that stay keep their counters and outage; only the fping
   * processes that gain or lose a target restart. Rejects (LME_PING_TARGET) a duplicate or
   * malformed address without changing anything.
   */
  setTargets(targets: readonly PingTarget[]): Promise<void> {
    if (this.stopped) return Promise.resolve();
    try {
      validateTargets(targets);
    } catch (err) {
      return Promise.reject(err);
    }
    const run = this.applying.then(() => this.apply(targets));
    this.applying = run.catch(() => undefined);
    return run;
  }

  snapshot(): PingTargetState[] {
    const now = this.options.clock.wallMs();
    return [...this.targets.values()].map((entry) => ({
      target: entry.target,
      counters: { ...entry.counters },
      currentOutageSeconds: entry.outage.seconds(now),
      processUp: this.shards.get(entry.shard)?.process.isUp ?? false,
    }));
  }

  /** One entry per fping process, by shard id. */
  processes(): PingProcessState[] {
    const shards = [...this.shards.values()].sort((a, b) => a.id - b.id);
    return shards.map((s) => ({
      shard: s.id,
      pid: s.process.pid,
      up: s.process.isUp,
      restarts: s.process.restarts,
      targets: s.addresses,
    }));
  }

  health(): PingHealth {
    const processes = this.processes();
    const processesUp = processes.filter((p) => p.up).length;
    const restarts = processes.reduce((sum, p) => sum + p.restarts, this.retiredRestarts);
    return { up: processesUp === processes.length, processes: processes.length, processesUp, restarts };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.applying;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    await Promise.all([...this.shards.values()].map((s) => s.process.stop()));
    this.shards.clear();
  }

  private async apply(targets: readonly PingTarget[]): Promise<void> {
    if (this.stopped) return;
    const current = new Map([...this.targets].map(([address, entry]) => [address, entry.shard]));
    const plan = planShards(current, targets.map((t) => t.address), this.capacity);
    for (const t of targets) {
      const entry = this.targets.get(t.address);
      if (entry) entry.target = t;
      else this.targets.set(t.address, newEntry(t, plan.assignment.get(t.address)!));
    }
    for (const address of current.keys()) if (!plan.assignment.has(address)) this.targets.delete(address);

    await Promise.all([...plan.changed].map((id) => this.retire(id)));
    for (const id of plan.changed) {
      const addresses = targets.map((t) => t.address).filter((a) => plan.assignment.get(a) === id);
      if (addresses.length > 0) this.launch(id, addresses);
    }
    this.sweepTimer ??= setInterval(() => this.sweep(), Math.min(500, Math.max(20, this.periodMs)));
  }

  private async retire(id: number): Promise<void> {
    const shard = this.shards.get(id);
    if (!shard) return;
    this.shards.delete(id);
    this.retiredRestarts += shard.process.restarts;
    await shard.process.stop();
    this.endRun(shard);
  }

  private launch(id: number, addresses: readonly string[]): void {
    const { options } = this;
    const intervalMs = sendIntervalMs(this.periodMs, addresses.length);
    const settings: FpingSettings = {
      binary: options.fpingPath ?? PING_DEFAULTS.fpingPath,
      periodMs: this.periodMs,
      timeoutMs: this.timeoutMs,
      intervalMs,
      ...(options.sourceAddress !== undefined ? { sourceAddress: options.sourceAddress } : {}),
      ...(options.netns !== undefined ? { netns: options.netns } : {}),
      ...(options.ipBinary !== undefined ? { ipBinary: options.ipBinary } : {}),
      ...(options.user !== undefined ? { user: options.user } : {}),
    };
    const shard: Shard = {
      id,
      addresses,
      intervalMs,
      run: 0,
      sawLine: false,
      process: new FpingProcess({
        settings,
        addresses,
        clock: options.clock,
        restartBackoff: { ...(options.restartBackoff ?? PING_DEFAULTS.restartBackoff), ...(options.random ? { random: options.random } : {}) },
        onStart: (run) => this.startRun(shard, run),
        onLine: (line, _stream, run) => this.onLine(shard, line, run),
        onExit: (error, restartInMs) => {
          this.endRun(shard);
          options.logger.warn({ shard: id, targets: addresses.length, restartInMs, err: error.message }, 'fping exited');
          options.onError(error);
        },
      }),
    };
    this.shards.set(id, shard);
    shard.process.start();
  }

  private startRun(shard: Shard, run: FpingRun): void {
    shard.run = run.run;
    shard.sawLine = false;
    shard.addresses.forEach((address, position) => {
      const entry = this.targets.get(address);
      if (!entry) return;
      entry.base = entry.nextSequence;
      entry.sequencer = new ProbeSequencer({
        periodMs: this.periodMs,
        timeoutMs: this.timeoutMs,
        graceMs: this.graceMs,
        // fping sends the first round in target order, one -i apart.
        firstSendWallMs: run.startedWallMs + position * shard.intervalMs,
      });
    });
    this.options.logger.info({ shard: shard.id, pid: run.pid, targets: shard.addresses.length, run: run.run }, 'fping started');
  }

  /** The process is gone: results it reported are handed out; probes still in flight are dropped. */
  private endRun(shard: Shard): void {
    for (const address of shard.addresses) {
      const entry = this.targets.get(address);
      if (!entry?.sequencer || entry.shard !== shard.id) continue;
      this.emit(entry, entry.sequencer.flush());
      entry.sequencer = null;
    }
  }

  private onLine(shard: Shard, line: FpingLine, run: number): void {
    if (run !== shard.run) return;
    switch (line.kind) {
      case 'reply':
      case 'timeout':
        this.onProbeLine(shard, line);
        return;
      case 'icmp-error': {
        const entry = this.entryOf(shard, line.address);
        if (entry) entry.counters.icmpErrors++;
        this.options.logger.debug({ target: line.address, from: line.from, icmp: line.message }, 'ICMP error');
        return;
      }
      case 'target-error':
        this.options.onError(new LivemigError('LME_PING_TARGET', [line.target, `fping: ${line.message}`]));
        return;
      case 'unknown':
        this.options.onError(line.error);
        return;
      case 'summary':
      case 'fatal':
      case 'blank':
        // The summary repeats our own counters; a fatal line is judged when the process ends.
        return;
    }
  }

  private onProbeLine(shard: Shard, line: Extract<FpingLine, { kind: 'reply' | 'timeout' }>): void {
    const entry = this.entryOf(shard, line.address);
    if (!entry) {
      this.options.onError(new LivemigError('LME_PING_LINE', [`${JSON.stringify(line.address)} is not a target of fping shard ${shard.id}`]));
      return;
    }
    const sequencer = entry.sequencer;
    if (!sequencer) return;
    const isReply = line.kind === 'reply';
    if (!shard.sawLine) this.anchorShard(shard, entry, isReply ? line.stampMs - line.rttMs : line.stampMs - this.timeoutMs, line.seq);
    const result = isReply ? sequencer.reply(line.seq, line.stampMs, line.rttMs) : sequencer.timeout(line.seq, line.stampMs);
    const sequence = entry.base + line.seq;
    if (result.outcome === 'duplicate') entry.counters.duplicates++;
    if (result.outcome === 'new') {
      if (isReply) {
        entry.outage.answered(sequence);
        this.options.onRtt?.(entry.target, line.rttMs);
      } else {
        entry.outage.lost(sequence, line.stampMs - this.timeoutMs);
      }
    }
    this.emit(entry, result.released);
  }

  /**
   * The first line of a process shows when it began sending; the other targets of the process,
   * which have no line yet, had their first probes one -i apart around it.
   */
  private anchorShard(shard: Shard, from: TargetEntry, sentWallMs: number, seq: number): void {
    shard.sawLine = true;
    const firstSend = sentWallMs - seq * this.periodMs;
    const position = shard.addresses.indexOf(from.target.address);
    shard.addresses.forEach((address, i) => {
      this.targets.get(address)?.sequencer?.reanchor(firstSend + (i - position) * shard.intervalMs);
    });
  }

  private sweep(): void {
    const now = this.options.clock.wallMs();
    for (const entry of this.targets.values()) {
      if (entry.sequencer) this.emit(entry, entry.sequencer.sweep(now));
    }
  }

  private emit(entry: TargetEntry, results: readonly ProbeResult[]): void {
    if (results.length === 0) return;
    const { clock, onObservation } = this.options;
    const wallMs = clock.wallMs();
    const monoMs = clock.monoMs();
    for (const r of results) {
      const sequence = entry.base + r.seq;
      entry.counters.sent++;
      if (r.rttMs !== null) entry.counters.received++;
      else entry.outage.lost(sequence, r.sentWallMs);
      entry.nextSequence = sequence + 1;
      const vm = entry.target.vm;
      onObservation({ kind: 'ping', target: entry.target.address, ...(vm !== undefined ? { vm } : {}), sequence, sentWallMs: r.sentWallMs, rttMs: r.rttMs, wallMs, monoMs });
    }
  }

  private entryOf(shard: Shard, address: string): TargetEntry | undefined {
    const entry = this.targets.get(address);
    return entry && entry.shard === shard.id ? entry : undefined;
  }
}

function newEntry(target: PingTarget, shard: number): TargetEntry {
  return {
    target,
    counters: { sent: 0, received: 0, duplicates: 0, icmpErrors: 0 },
    outage: new CurrentOutage(),
    shard,
    base: 0,
    nextSequence: 0,
    sequencer: null,
  };
}
