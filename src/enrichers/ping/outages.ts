/**
 * Outage analysis of one target's probes. Pure: probes in (as PingSource hands them out, in
 * sequence order), outages and per-window figures out.
 *
 * An outage is a run of consecutive lost probes. It starts at the send time of its first lost
 * probe and ends at the send time of the first answered probe after it, so with probes one period
 * apart its measured length is within one period of the true one. The true start lies in
 * (previousAnsweredMs, startMs] and the true end in (lastLostMs, endMs].
 */

export interface Probe {
  /** Strictly increasing per target; holes are probes whose fate is unknown (an fping restart). */
  sequence: number;
  sentWallMs: number;
  /** null: lost. */
  rttMs: number | null;
}

export interface Outage {
  firstSequence: number;
  /** Probes lost in the run (so far). */
  lost: number;
  /** Send time of the first lost probe. */
  startMs: number;
  /** Send time of the first answered probe after the run; null while the outage lasts. */
  endMs: number | null;
  /** Send time of the last lost probe so far. */
  lastLostMs: number;
  /** Send time of the answered probe just before the run; null when the history starts lost. */
  previousAnsweredMs: number | null;
}

/** [startMs, endMs) in wall ms. */
export interface Window {
  startMs: number;
  endMs: number;
}

export interface RttStats {
  count: number;
  minMs: number;
  meanMs: number;
  /** Nearest-rank percentiles. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface WindowStats {
  /** Probes sent in the window whose fate is known. */
  sent: number;
  lost: number;
  rtt: RttStats | null;
}

/** Measured length; an ongoing outage counts up to `nowMs`, or is null without it. */
export function outageDurationMs(outage: Outage, nowMs?: number): number | null {
  if (outage.endMs !== null) return outage.endMs - outage.startMs;
  return nowMs === undefined ? null : Math.max(0, nowMs - outage.startMs);
}

/**
 * Follows one target's probes and keeps its outages: the latest `maxOutages` that ended, plus the
 * one under way. Probes must come in sequence order; an older or repeated sequence is ignored.
 */
export class OutageLog {
  private readonly ended: Outage[] = [];
  private ongoing: Outage | null = null;
  private lastSequence = -Infinity;
  private lastAnsweredMs: number | null = null;

  constructor(private readonly maxOutages = 256) {
    if (!(maxOutages >= 1)) throw new RangeError(`maxOutages must be at least 1, got ${maxOutages}`);
  }

  /** Adds the next probe; returns the outage it ended, if it ended one. */
  add(probe: Probe): Outage | null {
    if (!(probe.sequence > this.lastSequence)) return null;
    this.lastSequence = probe.sequence;
    if (probe.rttMs === null) {
      if (this.ongoing) {
        this.ongoing.lost++;
        this.ongoing.lastLostMs = probe.sentWallMs;
      } else {
        this.ongoing = {
          firstSequence: probe.sequence,
          lost: 1,
          startMs: probe.sentWallMs,
          endMs: null,
          lastLostMs: probe.sentWallMs,
          previousAnsweredMs: this.lastAnsweredMs,
        };
      }
      return null;
    }
    this.lastAnsweredMs = probe.sentWallMs;
    const closed = this.ongoing;
    if (!closed) return null;
    closed.endMs = probe.sentWallMs;
    this.ongoing = null;
    this.ended.push(closed);
    if (this.ended.length > this.maxOutages) this.ended.shift();
    return closed;
  }

  get current(): Outage | null {
    return this.ongoing;
  }

  /** Ended outages, oldest first, then the one under way. */
  outages(): Outage[] {
    return this.ongoing ? [...this.ended, this.ongoing] : [...this.ended];
  }
}

export function findOutages(probes: Iterable<Probe>): Outage[] {
  const log = new OutageLog(Number.MAX_SAFE_INTEGER);
  for (const probe of probes) log.add(probe);
  return log.outages();
}

/**
 * The outage under way at `instantMs` (the switch-over): the one whose possible span,
 * (previousAnsweredMs, endMs), contains it. Such spans never overlap, so there is at most one.
 */
export function outageAt(outages: readonly Outage[], instantMs: number): Outage | null {
  for (const o of outages) {
    const after = o.previousAnsweredMs === null ? instantMs >= o.startMs : instantMs > o.previousAnsweredMs;
    if (after && instantMs < (o.endMs ?? Infinity)) return o;
  }
  return null;
}

/** Outages that overlap the window (a blackout that began before it included). */
export function outagesWithin(outages: readonly Outage[], window: Window): Outage[] {
  return outages.filter((o) => o.startMs < window.endMs && (o.endMs ?? Infinity) > window.startMs);
}

/** Loss and RTT of the probes sent in each window (windows may overlap; each is counted alone). */
export function statsByWindow(probes: Iterable<Probe>, windows: readonly Window[]): WindowStats[] {
  const acc = windows.map(() => ({ sent: 0, lost: 0, rtts: [] as number[] }));
  for (const probe of probes) {
    windows.forEach((w, i) => {
      if (probe.sentWallMs < w.startMs || probe.sentWallMs >= w.endMs) return;
      const a = acc[i]!;
      a.sent++;
      if (probe.rttMs === null) a.lost++;
      else a.rtts.push(probe.rttMs);
    });
  }
  return acc.map((a) => ({ sent: a.sent, lost: a.lost, rtt: rttStats(a.rtts) }));
}

export function rttStats(values: readonly number[]): RttStats | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number): number => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
  const sum = sorted.reduce((s, v) => s + v, 0);
  return { count: sorted.length, minMs: sorted[0]!, meanMs: sum / sorted.length, p50Ms: rank(0.5), p99Ms: rank(0.99), maxMs: sorted.at(-1)! };
}

/** Count, total and longest measured length of the outages that ended. */
export function outageTotals(outages: readonly Outage[]): { count: number; lost: number; totalMs: number; longestMs: number } {
  let count = 0;
  let lost = 0;
  let totalMs = 0;
  let longestMs = 0;
  for (const o of outages) {
    const length = outageDurationMs(o);
    if (length === null) continue;
    count++;
    lost += o.lost;
    totalMs += length;
    longestMs = Math.max(longestMs, length);
  }
  return { count, lost, totalMs, longestMs };
}
