/**
 * Puts one target's fping lines, of one fping process, into sequence order with send times.
 * Pure: lines and the current time in, settled probes out.
 *
 * Send times, measured on fping 5.1 with -D:
 * - a reply's stamp is when the reply came in, so the probe left at stamp - rtt;
 * - a `timed out` stamp is the send time plus the -t timeout (within 3 ms, at -t 300 and 1000);
 * - fping sends a target's probe n at its first send + n * period, without drift (10 ms period,
 *   5 s: every send within 4.4 ms of that grid, back on it within 0.07 ms at the end).
 * A probe with no line of its own is placed on that grid from the latest line of the target.
 *
 * Why hold results back: lines do not come in sequence order (a reply to probe 18 comes before the
 * `timed out` of probe 15, a timeout after it was sent), and a probe fping could not send (a
 * blackhole or missing route makes sendto fail) gets no line at all. So a result is released only
 * once every earlier probe is settled, and a probe with no line by send + timeout + grace is
 * settled as lost by sweep(). Consumers then see each target's probes in order, and a run of
 * losses is one outage.
 */

export interface ProbeResult {
  /** fping's probe number for this target in this process, from 0. */
  seq: number;
  sentWallMs: number;
  /** null: lost (timed out, or no line by its deadline). */
  rttMs: number | null;
}

export interface SequencerOptions {
  periodMs: number;
  timeoutMs: number;
  /** Extra wait past the timeout before a probe without any line counts as lost. */
  graceMs: number;
  /** Estimated send time of probe 0 until a line tells better. */
  firstSendWallMs: number;
}

/** `new`: first line for that probe; `duplicate`: a second reply; `stale`: the probe was already settled. */
export type LineOutcome = 'new' | 'duplicate' | 'stale';

export interface LineResult {
  outcome: LineOutcome;
  /** Results now released, in sequence order (possibly none). */
  released: ProbeResult[];
}

/** How many settled probes are remembered to recognise duplicates (they come within a period). */
const RECENT = 1024;

export class ProbeSequencer {
  /** Lowest probe not yet released. */
  private next = 0;
  /** Reported but held back behind an unsettled earlier probe. */
  private readonly pending = new Map<number, ProbeResult>();
  /** Recently released probes, in a ring indexed by seq % RECENT: which seq a slot holds, and whether it was answered. */
  private readonly recentSeq = new Float64Array(RECENT).fill(-1);
  private readonly recentAnswered = new Uint8Array(RECENT);
  private anchorSeq = 0;
  private anchorMs: number;
  private anchoredByLine = false;

  constructor(private readonly options: SequencerOptions) {
    this.anchorMs = options.firstSendWallMs;
  }

  /** Probes released so far: the next result will be this seq or later. */
  get nextSeq(): number {
    return this.next;
  }

  /** Whether any line has placed this target's probes on the time grid yet. */
  get anchored(): boolean {
    return this.anchoredByLine;
  }

  /** Moves the estimated grid of a target that has no line yet (see PingSource: first line of a process). */
  reanchor(firstSendWallMs: number): void {
    if (this.anchoredByLine) return;
    this.anchorSeq = 0;
    this.anchorMs = firstSendWallMs;
  }

  sendTimeOf(seq: number): number {
    return this.anchorMs + (seq - this.anchorSeq) * this.options.periodMs;
  }

  reply(seq: number, stampMs: number, rttMs: number): LineResult {
    const known = this.known(seq);
    if (known !== undefined) return { outcome: known ? 'duplicate' : 'stale', released: [] };
    const sentWallMs = stampMs - rttMs;
    this.anchor(seq, sentWallMs);
    this.pending.set(seq, { seq, sentWallMs, rttMs });
    return { outcome: 'new', released: this.drain() };
  }

  timeout(seq: number, stampMs: number): LineResult {
    if (this.known(seq) !== undefined) return { outcome: 'stale', released: [] };
    const sentWallMs = stampMs - this.options.timeoutMs;
    this.anchor(seq, sentWallMs);
    this.pending.set(seq, { seq, sentWallMs, rttMs: null });
    return { outcome: 'new', released: this.drain() };
  }

  /** Settles as lost every probe that has no line past its deadline, then releases what it can. */
  sweep(nowWallMs: number): ProbeResult[] {
    const { timeoutMs, graceMs } = this.options;
    const released: ProbeResult[] = [];
    for (;;) {
      const held = this.pending.get(this.next);
      if (held) {
        released.push(this.release(held));
        continue;
      }
      const sentWallMs = this.sendTimeOf(this.next);
      if (sentWallMs + timeoutMs + graceMs > nowWallMs) break;
      released.push(this.release({ seq: this.next, sentWallMs, rttMs: null }));
    }
    return released;
  }

  /**
   * The process is gone: hands out what was reported, in order, leaving out probes whose fate
   * fping never told (they were in flight).
   */
  flush(): ProbeResult[] {
    const held = [...this.pending.values()].sort((a, b) => a.seq - b.seq);
    this.pending.clear();
    for (const result of held) this.remember(result);
    this.next = (held.at(-1)?.seq ?? this.next - 1) + 1;
    return held;
  }

  /** true/false: already answered/lost; undefined: not seen (or too long ago to tell). */
  private known(seq: number): boolean | undefined {
    const held = this.pending.get(seq);
    if (held) return held.rttMs !== null;
    if (seq >= this.next) return undefined;
    // Older than anything remembered: treat as settled, never as a new result.
    const slot = seq % RECENT;
    return this.recentSeq[slot] === seq && this.recentAnswered[slot] === 1;
  }

  private anchor(seq: number, sentWallMs: number): void {
    this.anchorSeq = seq;
    this.anchorMs = sentWallMs;
    this.anchoredByLine = true;
  }

  private drain(): ProbeResult[] {
    const released: ProbeResult[] = [];
    for (let held = this.pending.get(this.next); held; held = this.pending.get(this.next)) released.push(this.release(held));
    return released;
  }

  private release(result: ProbeResult): ProbeResult {
    this.pending.delete(result.seq);
    this.remember(result);
    this.next = result.seq + 1;
    return result;
  }

  private remember(result: ProbeResult): void {
    const slot = result.seq % RECENT;
    this.recentSeq[slot] = result.seq;
    this.recentAnswered[slot] = result.rttMs !== null ? 1 : 0;
  }
}
