/**
 * One migration's timeline, from its record alone: the phases, every QEMU status on each side
 * and nova's log lines, the ping outages, ping RTT and loss per phase, and throughput both ways.
 * Pure: record in, series and a Vega-Lite spec out.
 *
 * The record keeps figures, not time series: per-phase probe statistics and the outages (not
 * every probe), and byte totals (not a rate per interval). The timeline draws what the record
 * holds at the resolution it holds it, and lists what it cannot draw (`missing`) instead of
 * inventing it.
 */
import type { MigrationRecord, PhaseProbeStats } from '../../records/record.js';
import type { ChartSpec } from './charts.js';

/** A span of the migration, seconds from its start. */
export interface TimelineSpan {
  lane: string;
  label: string;
  from: number;
  to: number;
}

export interface TimelineEvent {
  lane: string;
  label: string;
  at: number;
}

/** A value that holds over a span (a phase's mean, say). */
export interface LevelSegment {
  series: string;
  from: number;
  to: number;
  value: number;
}

export interface Timeline {
  id: string;
  vm: string;
  startedAtMs: number;
  /** Seconds from the start to the end (0 when the record has no end). */
  endSeconds: number;
  /** The x range every panel shares, seconds. */
  domain: [number, number];
  spans: TimelineSpan[];
  events: TimelineEvent[];
  rtt: LevelSegment[];
  loss: LevelSegment[];
  forward: LevelSegment[];
  reverse: LevelSegment[];
  /** What the timeline cannot draw from this record, as sentences. */
  missing: string[];
}

export const LANES = { phase: 'migration phase', guest: 'guest', source: 'QEMU source', destination: 'QEMU destination', nova: 'nova-compute log', ping: 'ping' } as const;

export const RECORD_HAS_NO_SERIES = [
  'Ping RTT and loss per probe are not in the record (it keeps statistics per phase and the outages): they are drawn per phase.',
  'Throughput over time is not in the record (it keeps byte totals): it is drawn as the mean per phase (QEMU\'s pre-copy and post-copy bytes) and over the migration (the interface counters).',
];

export function timelineOf(record: MigrationRecord): Timeline {
  const t0 = record.startedAt.value;
  const s = (ms: number): number => (ms - t0) / 1000;
  const lastStatus = record.statuses.reduce((max, st) => Math.max(max, st.at), t0);
  const endMs = record.endedAt?.value ?? lastStatus;
  const end = s(endMs);
  const postcopy = record.postcopyAt ? s(record.postcopyAt.value) : null;
  const stopped = record.stoppedAt ? s(record.stoppedAt.value) : null;
  const resumed = record.resumedAt ? s(record.resumedAt.value) : null;
  const missing: string[] = [...RECORD_HAS_NO_SERIES];
  if (!record.endedAt) missing.push('The record has no end time: the phases end at its last QEMU status.');

  const spans: TimelineSpan[] = [{ lane: LANES.phase, label: 'pre-copy', from: 0, to: postcopy ?? stopped ?? end }];
  if (postcopy !== null) spans.push({ lane: LANES.phase, label: 'post-copy', from: postcopy, to: end });
  if (stopped !== null) {
    const to = resumed ?? (postcopy === null ? end : null);
    if (to !== null) spans.push({ lane: LANES.guest, label: 'paused (switch-over)', from: stopped, to: Math.max(to, stopped) });
  }
  const events: TimelineEvent[] = [];
  if (stopped !== null) events.push({ lane: LANES.guest, label: 'STOP (source)', at: stopped });
  if (resumed !== null) events.push({ lane: LANES.guest, label: 'RESUME (destination)', at: resumed });
  for (const st of record.statuses) events.push({ lane: st.side === 'source' ? LANES.source : LANES.destination, label: st.status, at: s(st.at) });
  const nova = record.nova;
  if (nova) {
    const lines: [string, { value: number } | null][] = [
      ['nova: start', nova.startedAt], ['nova: post-copy', nova.postcopyAt], ['nova: resumed', nova.resumedAt],
      ['nova: completed', nova.completedAt], ['nova: end', nova.endedAt],
    ];
    for (const [label, f] of lines) if (f) events.push({ lane: LANES.nova, label, at: s(f.value) });
  }

  const rtt: LevelSegment[] = [];
  const loss: LevelSegment[] = [];
  const ping = record.ping;
  if (ping) {
    const blackout = ping.switchoverBlackout;
    const outageEnd = (o: { startAt: number; endAt: number | null; seconds: number }) => s(o.endAt ?? o.startAt + o.seconds * 1000);
    if (blackout) spans.push({ lane: LANES.ping, label: 'switch-over blackout', from: s(blackout.startAt), to: outageEnd(blackout) });
    for (const o of ping.postcopyOutages) spans.push({ lane: LANES.ping, label: 'post-copy outage', from: s(o.startAt), to: outageEnd(o) });
    const window = (stats: PhaseProbeStats): number => (stats.sent * ping.periodMs) / 1000;
    const phases: [string, PhaseProbeStats | null, number, number][] = [
      ['before', ping.phases.before, -window(ping.phases.before), 0],
      ['pre-copy', ping.phases.precopy, 0, postcopy ?? end],
      ['post-copy', ping.phases.postcopy, postcopy ?? end, end],
      ['after', ping.phases.after, end, end + window(ping.phases.after)],
    ];
    for (const [, stats, from, to] of phases) {
      if (!stats || stats.sent === 0 || to <= from) continue;
      for (const [series, value] of [['mean', stats.rttMeanMs], ['p99', stats.rttP99Ms], ['max', stats.rttMaxMs]] as const) {
        if (value !== null) rtt.push({ series: `RTT ${series}`, from, to, value });
      }
      loss.push({ series: 'lost probes', from, to, value: (100 * stats.lost) / stats.sent });
    }
    missing.push('The ping windows before the start and after the end (ping.before, ping.after) are not in the record: they are drawn as probes sent x the probe period.');
  } else {
    missing.push('No ping figures in this record (the VM has no ping_address, or its figures were not in yet): no outages, RTT or loss.');
  }

  const forward: LevelSegment[] = [];
  const reverse: LevelSegment[] = [];
  const mbps = (bytes: number, seconds: number) => bytes / 1e6 / seconds;
  const { precopy: pre, postcopy: post, transferred } = record.bytes;
  if (postcopy !== null && pre && post && postcopy > 0 && end > postcopy) {
    forward.push({ series: 'QEMU, per phase', from: 0, to: postcopy, value: mbps(pre.value, postcopy) });
    forward.push({ series: 'QEMU, per phase', from: postcopy, to: end, value: mbps(post.value, end - postcopy) });
  } else if (transferred && end > 0) {
    forward.push({ series: 'QEMU, per phase', from: 0, to: end, value: mbps(transferred.value, end) });
  }
  const ifs = record.interfaces;
  if (ifs && end > 0) {
    if (ifs.sourceTransmitBytes) forward.push({ series: 'interfaces, mean', from: 0, to: end, value: mbps(ifs.sourceTransmitBytes.value, end) });
    if (ifs.destinationTransmitBytes) reverse.push({ series: 'interfaces, mean', from: 0, to: end, value: mbps(ifs.destinationTransmitBytes.value, end) });
    else missing.push('The destination\'s transmit bytes are not in the record: no destination → source throughput.');
    if (ifs.postcopyInferredAt) events.push({ lane: LANES.phase, label: 'post-copy (inferred)', at: s(ifs.postcopyInferredAt.value) });
  } else {
    missing.push('No interface figures in this record (no hosts[].interfaces watched): no destination → source throughput.');
  }

  const xs = [0, end, ...spans.flatMap((sp) => [sp.from, sp.to]), ...events.map((e) => e.at), ...rtt.flatMap((r) => [r.from, r.to]), ...loss.flatMap((r) => [r.from, r.to])];
  const domain: [number, number] = [Math.min(...xs), Math.max(...xs, 0.001)];
  return { id: record.id, vm: record.vm, startedAtMs: t0, endSeconds: end, domain, spans, events, rtt, loss, forward, reverse, missing };
}

const WIDTH = 640;
/** Every panel's y axis takes the same room, so that the panels' time axes line up. */
const Y_AXIS = { minExtent: 120, maxExtent: 120 };
const LEGEND = { orient: 'bottom', direction: 'horizontal', labelLimit: 200, symbolType: 'square' };
const SPAN_COLORS: Record<string, string> = {
  'pre-copy': '#9ecae1',
  'post-copy': '#fdae6b',
  'paused (switch-over)': '#6a51a3',
  'switch-over blackout': '#e6550d',
  'post-copy outage': '#d62728',
};

/** The spans' colour scale, over the kinds of span this timeline has (the legend shows no absent kind). */
function spanColors(spans: readonly TimelineSpan[]): { domain: string[]; range: string[] } {
  const present = Object.keys(SPAN_COLORS).filter((label) => spans.some((sp) => sp.label === label));
  return { domain: present, range: present.map((label) => SPAN_COLORS[label] as string) };
}

/** The timeline as one vertically stacked chart on a shared x scale: lanes, RTT, loss, throughput both ways. Empty panels are left out. */
export function timelineSpec(t: Timeline): ChartSpec {
  const x = (title: string | null) => ({ field: 'from', type: 'quantitative', title, scale: { domain: t.domain, nice: false } });
  const panels: unknown[] = [
    {
      width: WIDTH,
      height: 24 * new Set([...t.spans.map((sp) => sp.lane), ...t.events.map((e) => e.lane)]).size + 10,
      title: 'phases, QEMU statuses, nova-compute, ping outages',
      layer: [
        {
          data: { values: t.spans },
          mark: { type: 'bar', height: 14 },
          encoding: {
            x: x(null),
            x2: { field: 'to' },
            y: { field: 'lane', type: 'nominal', title: null, sort: Object.values(LANES), axis: Y_AXIS },
            color: { field: 'label', type: 'nominal', title: 'span', scale: spanColors(t.spans), legend: { ...LEGEND, columns: 2 } },
          },
        },
        {
          data: { values: t.events },
          mark: { type: 'tick', thickness: 3, size: 18 },
          encoding: {
            x: { field: 'at', type: 'quantitative', title: null, scale: { domain: t.domain, nice: false } },
            y: { field: 'lane', type: 'nominal', sort: Object.values(LANES) },
            color: { field: 'label', type: 'nominal', title: 'event', scale: { scheme: 'tableau20' }, legend: { ...LEGEND, columns: 2 } },
          },
        },
      ],
      resolve: { scale: { color: 'independent' }, legend: { color: 'independent' } },
    },
  ];
  const level = (rows: LevelSegment[], title: string, yTitle: string, scheme: string) => ({
    width: WIDTH,
    height: 80,
    title,
    data: { values: rows },
    mark: { type: 'rule', strokeWidth: 3 },
    encoding: {
      x: x(null),
      x2: { field: 'to' },
      y: { field: 'value', type: 'quantitative', title: yTitle, axis: Y_AXIS },
      color: { field: 'series', type: 'nominal', title: null, scale: { scheme }, legend: { ...LEGEND, orient: 'right', direction: 'vertical' } },
    },
  });
  if (t.rtt.length) panels.push(level(t.rtt, 'ping RTT per phase', 'ms', 'blues'));
  if (t.loss.length) {
    panels.push({
      width: WIDTH,
      height: 60,
      title: 'ping loss per phase',
      data: { values: t.loss },
      mark: { type: 'rect', color: '#d62728', opacity: 0.7 },
      encoding: { x: x(null), x2: { field: 'to' }, y: { field: 'value', type: 'quantitative', title: '% lost', scale: { domain: [0, 100] }, axis: Y_AXIS }, y2: { datum: 0 } },
    });
  }
  if (t.forward.length) panels.push(level(t.forward, 'throughput, source → destination', 'MB/s', 'category10'));
  if (t.reverse.length) panels.push(level(t.reverse, 'throughput, destination → source (acknowledgements; post-copy page requests)', 'MB/s', 'set2'));
  // The x axis title once, under the last panel.
  const last = panels[panels.length - 1] as { encoding?: { x: unknown }; layer?: { encoding: { x: unknown } }[] };
  if (last.encoding) last.encoding.x = x('seconds from the start (QMP setup)');
  else if (last.layer?.[0]) last.layer[0].encoding.x = x('seconds from the start (QMP setup)');
  return { vconcat: panels, resolve: { scale: { color: 'independent' }, legend: { color: 'independent' } } } as ChartSpec;
}
