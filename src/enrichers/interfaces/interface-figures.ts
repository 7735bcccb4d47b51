/**
 * Pure arithmetic of interface byte counters over a migration: the bytes each side's migration
 * interfaces sent and received between a read before the start and a read after the end, and
 * the switch to post-copy inferred from the reverse traffic (destination to source: in
 * pre-copy only TCP acknowledgements, in post-copy the destination's page requests as well).
 */
import type { Figure, InterfaceFigures } from '../../records/record.js';

export interface CounterRead {
  wallMs: number;
  /** Totals per interface (monotonic across resets). */
  interfaces: ReadonlyMap<string, { receiveBytes: bigint; transmitBytes: bigint }>;
}

export interface HostReads {
  host: string;
  /** The last read at or before the start; null when there is none. */
  before: CounterRead | null;
  /** The first read at or after the end; null when there is none. */
  after: CounterRead | null;
}

/** Receive and transmit bytes between two reads, summed over the interfaces of the later one. */
export function bytesBetween(before: CounterRead, after: CounterRead): { receive: bigint; transmit: bigint; interfaces: string[] } {
  let receive = 0n;
  let transmit = 0n;
  const names: string[] = [];
  for (const [name, now] of after.interfaces) {
    // An interface that appeared meanwhile started counting from 0 when it was created.
    const then = before.interfaces.get(name) ?? { receiveBytes: 0n, transmitBytes: 0n };
    receive += now.receiveBytes - then.receiveBytes;
    transmit += now.transmitBytes - then.transmitBytes;
    names.push(name);
  }
  return { receive, transmit, interfaces: names.sort() };
}

export function interfaceFigures(source: HostReads | null, destination: HostReads | null, inferred: Figure | null = null): InterfaceFigures {
  const side = (reads: HostReads | null) => {
    if (!reads?.before || !reads.after) return null;
    return { ...bytesBetween(reads.before, reads.after), reads };
  };
  const src = side(source);
  const dst = side(destination);
  const evidence = (s: NonNullable<ReturnType<typeof side>>, direction: 'rx' | 'tx') =>
    `netdev:${s.reads.host} ${s.interfaces.join(',') || '(no interface)'} ${direction} between reads at ${iso(s.reads.before?.wallMs)} and ${iso(s.reads.after?.wallMs)}`;
  const figure = (s: ReturnType<typeof side>, direction: 'rx' | 'tx'): Figure | null =>
    s ? { value: Number(direction === 'rx' ? s.receive : s.transmit), evidence: evidence(s, direction) } : null;
  let throughput: Figure | null = null;
  if (src?.reads.before && src.reads.after) {
    const seconds = (src.reads.after.wallMs - src.reads.before.wallMs) / 1000;
    if (seconds > 0) throughput = { value: Number(src.transmit) / seconds, evidence: `${evidence(src, 'tx')}, over ${seconds.toFixed(3)} s` };
  }
  return {
    sourceTransmitBytes: figure(src, 'tx'),
    destinationReceiveBytes: figure(dst, 'rx'),
    destinationTransmitBytes: figure(dst, 'tx'),
    sourceReceiveBytes: figure(src, 'rx'),
    throughputBytesPerSecond: throughput,
    postcopyInferredAt: inferred,
  };
}

/** One read of the source's migration interfaces: cumulative bytes out (forward), bytes and packets in (reverse). */
export interface DirectionPoint {
  wallMs: number;
  forwardBytes: number;
  reverseBytes: number;
  reversePackets: number;
}

export interface PostcopyInferenceOptions {
  /** Share of the reverse bytes that must be payload (beyond bare acknowledgements) to count. */
  minPayloadShare?: number;
  /** Payload bytes per interval below this never count. */
  minPayloadBytes?: number;
  /** Intervals in a row the payload must last. */
  sustain?: number;
}

/**
 * The start of the first read interval from which the destination sends payload back to the
 * source, not only acknowledgements: in pre-copy the return path is silent and every reverse
 * packet is a bare ACK (66 bytes for IPv4 with TCP time stamps), in post-copy the destination's
 * page requests ride on them and the mean reverse packet grows (82 bytes in the lab's hybrid
 * migrations). The bare-ACK size is the smallest mean packet size of the migration's intervals
 * (in the lab's post-copy-from-the-start migration the first interval, with few requests yet,
 * was closest to it). A pre-copy migration yields null. Precise to one read period; a guest
 * that faults on few pages in post-copy may not stand out at all.
 */
export function inferPostcopyFromReverseTraffic(points: readonly DirectionPoint[], options: PostcopyInferenceOptions = {}): number | null {
  const minShare = options.minPayloadShare ?? 0.03;
  const minBytes = options.minPayloadBytes ?? 256;
  const sustain = options.sustain ?? 2;
  const intervals: { startMs: number; reverse: number; packets: number }[] = [];
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1] as DirectionPoint;
    const b = points[i] as DirectionPoint;
    const forward = b.forwardBytes - a.forwardBytes;
    const reverse = b.reverseBytes - a.reverseBytes;
    const packets = b.reversePackets - a.reversePackets;
    // Only intervals where the migration stream flowed and was acknowledged say anything.
    if (b.wallMs <= a.wallMs || forward <= 0 || reverse <= 0 || packets <= 0) continue;
    intervals.push({ startMs: a.wallMs, reverse, packets });
  }
  if (intervals.length < sustain + 1) return null;
  const ackBytes = Math.min(...intervals.map((x) => x.reverse / x.packets));
  let run = 0;
  for (let i = 0; i < intervals.length; i++) {
    const x = intervals[i] as (typeof intervals)[number];
    const payload = x.reverse - x.packets * ackBytes;
    run = payload >= minBytes && payload / x.reverse >= minShare ? run + 1 : 0;
    if (run === sustain) return (intervals[i - sustain + 1] as (typeof intervals)[number]).startMs;
  }
  return null;
}


function iso(ms: number | undefined): string {
  return ms === undefined ? '?' : new Date(ms).toISOString();
}
