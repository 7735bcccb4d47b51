import { describe, expect, it } from 'vitest';
import { prefixIds, renderSvg, type ChartSpec } from '../../src/lab/report/charts.js';
import { fitSegment, fitText, flavorFigures, stressFigures, studyFigures } from '../../src/lab/report/figures.js';
import { labReportHtml } from '../../src/lab/report/html.js';
import { MiB, stressFits, type LabMeasurement, type ScenarioReport } from '../../src/lab/report/results.js';
import { STUDY_FLAVORS, STUDY_TABLE3, STUDY_TABLE4 } from '../../src/lab/report/study.js';
import { LANES, RECORD_HAS_NO_SERIES, timelineOf, timelineSpec } from '../../src/lab/report/timeline.js';
import type { MigrationRecord, PhaseProbeStats } from '../../src/records/record.js';
import { fig, recordEnded } from '../helpers/records.js';

const T0 = 1_700_000_000_000;
const EVIL = '<img src=x onerror=alert(1)>&"\'';

function measurement(vm: string, over: Partial<LabMeasurement> = {}): LabMeasurement {
  return {
    step: '64', vm, flavor: 'xl', memoryMiB: 512, allocatedMiB: 96, stressedMiB: 64, recordId: `${vm}@${T0}`, result: 'completed', mode: 'hybrid',
    durationSeconds: 1.5, transferredBytes: 170 * MiB, precopyBytes: 100 * MiB, postcopyBytes: 70 * MiB, qemuDowntimeMs: 5.5,
    blackoutSeconds: null, postcopyOutageSeconds: null, livePostcopyOutageMaxSeconds: null, interfaceBytes: 171 * MiB,
    novaSeconds: 2, novaResult: 'completed', durationEvidence: 'qmp', transferredEvidence: 'qmp',
    ...over,
  };
}

function report(scenario: string, measurements: LabMeasurement[], simulated = true): ScenarioReport {
  return {
    scenario, engine: simulated ? 'sim' : 'qemu', simulated, bandwidth: '1gbit', bandwidthBytesPerSecond: 125e6, accel: simulated ? 'SIMULATED' : 'kvm',
    startedAt: new Date(T0).toISOString(), measurements, fits: scenario === 'stress-sweep' ? stressFits(measurements) : null, notes: ['a note <b>'],
  };
}

const stats = (sent: number, lost: number, rtt: number | null): PhaseProbeStats => ({ sent, lost, rttMeanMs: rtt, rttP99Ms: rtt === null ? null : rtt * 2, rttMaxMs: rtt === null ? null : rtt * 3 });

/** A hybrid migration of 3 s: post-copy from 1 s, the guest paused from 1.0 to 1.1 s, a post-copy outage from 1.5 to 2.5 s. */
function hybridRecord(vm = 'vm-a'): MigrationRecord {
  return recordEnded(vm, T0, T0 + 3000, {
    labels: { flavor: 'xl', team: EVIL },
    mode: 'hybrid',
    postcopyAt: fig(T0 + 1000),
    stoppedAt: fig(T0 + 1000),
    resumedAt: fig(T0 + 1100),
    bytes: { transferred: fig(150e6), precopy: fig(100e6), postcopy: fig(50e6), downtime: null, disk: null },
    statuses: [
      { status: 'setup', at: T0, side: 'source' },
      { status: 'active', at: T0 + 5, side: 'source' },
      { status: 'postcopy-active', at: T0 + 1000, side: 'destination' },
      { status: 'completed', at: T0 + 3000, side: 'source' },
    ],
    ping: {
      target: '198.19.0.10',
      periodMs: 100,
      switchoverBlackout: { startAt: T0 + 1000, endAt: T0 + 1200, seconds: 0.2, lostProbes: 2 },
      postcopyOutages: [{ startAt: T0 + 1500, endAt: T0 + 2500, seconds: 1, lostProbes: 10 }],
      postcopyOutageLongestSeconds: 1,
      postcopyOutageTotalSeconds: 1,
      phases: { before: stats(10, 0, 0.3), precopy: stats(10, 0, 0.4), postcopy: stats(20, 12, 0.5), after: stats(20, 0, 0.3) },
      evidence: 'ping',
    },
    interfaces: {
      sourceTransmitBytes: fig(151e6), destinationReceiveBytes: fig(151e6), destinationTransmitBytes: fig(0.6e6), sourceReceiveBytes: fig(0.6e6),
      throughputBytesPerSecond: fig(50e6), postcopyInferredAt: fig(T0 + 1050),
    },
  });
}

describe('the study\'s figures as Vega-Lite specs', () => {
  type Panel = { data?: { values: Record<string, unknown>[] }; layer?: { data: { values: Record<string, unknown>[] } }[]; title: unknown };
  const panels = (spec: unknown) => (spec as { hconcat: Panel[] }).hconcat;
  const values = (panel: Panel) => panel.data?.values ?? panel.layer?.flatMap((l) => l.data.values) ?? [];

  it('Figures 1 and 2: the lab\'s flavors (QMP and nova times, QEMU downtime) beside Table 2', () => {
    const ms = ['s', 'm', 'l', 'xl'].map((flavor, i) => measurement(`flavor-${flavor}`, { flavor, durationSeconds: 0.4 + i / 10, novaSeconds: 1 + i / 10, qemuDowntimeMs: 5 }));
    const [time, downtime] = flavorFigures(ms);
    expect([time?.number, downtime?.number]).toEqual([1, 2]);
    const [labTime, studyTime] = panels(time?.spec);
    expect(values(studyTime as Panel).map((r) => r.value)).toEqual(STUDY_FLAVORS.map((f) => f.timeS));
    expect(values(labTime as Panel)).toContainEqual({ flavor: 'xl', series: 'QMP total-time', value: 0.7 });
    expect(values(labTime as Panel)).toContainEqual({ flavor: 's', series: 'nova-compute log', value: 1 });
    const [labDown, studyDown] = panels(downtime?.spec);
    expect(values(labDown as Panel).map((r) => r.value)).toEqual([0.005, 0.005, 0.005, 0.005]);
    expect(values(studyDown as Panel).map((r) => r.value)).toEqual([0.2, 0.2, 0.2, 0.3]);
  });

  it('Figures 3 to 6: time and data against stressed memory, the lab\'s line, Tables 3 and 4 with theirs', () => {
    const ms = [64, 128, 192].map((s) => measurement(`sweep-${s}`, { stressedMiB: s, transferredBytes: (32 + 2 * s) * MiB, durationSeconds: 0.3 + s / 100 }));
    const figures = stressFigures(report('stress-sweep', ms));
    expect(figures.map((f) => f.number)).toEqual([3, 4, 5, 6]);
    const [fig3, fig4, fig5, fig6] = figures.map((f) => panels(f.spec));
    expect(values(fig3?.[1] as Panel).filter((r) => r.label)).toEqual(STUDY_TABLE3.map((p) => ({ x: p.stressedMB, y: p.timeS, label: `${p.stressedMB} MB` })));
    expect(values(fig6?.[1] as Panel).filter((r) => r.label).map((r) => r.y)).toEqual(STUDY_TABLE4.map((p) => p.transferredMB));
    expect(values(fig5?.[1] as Panel).filter((r) => r.label).map((r) => r.y)).toEqual(STUDY_TABLE4.map((p) => p.timeS));
    // The lab's data in MiB: the fitted line is the law's 32 + 2 x stressed, drawn over the steps.
    const lab = values(fig4?.[0] as Panel);
    expect(lab.filter((r) => r.label).map((r) => r.y)).toEqual([160, 288, 416]);
    const line = lab.filter((r) => !r.label);
    expect(line.map((r) => r.x)).toEqual([64, 192]);
    expect(line[0]?.y).toBeCloseTo(160, 9);
    expect(line[1]?.y).toBeCloseTo(416, 9);
    expect((fig4?.[0] as Panel).title).toEqual({ text: 'lab (this run)', subtitle: 'fit: 2.00 x stressed + 32.00 MiB (R² 1.0000)' });
    expect(((fig3?.[0] as Panel).title as { subtitle: string }).subtitle).toBe('fit: 0.0100 s/MiB x stressed + 0.300 s (R² 1.0000)');
  });

  it('draws points without a line when fewer than two sizes completed, and no study figure for other scenarios', () => {
    const figures = stressFigures(report('stress-sweep', [measurement('sweep-64'), measurement('sweep-128', { stressedMiB: 128, result: 'failed' })]));
    const lab = panels(figures[0]?.spec)[0] as Panel;
    expect(values(lab)).toHaveLength(1);
    expect((lab.title as { subtitle: string }).subtitle).toMatch(/^no line: fewer than two different stressed sizes completed/);
    expect(studyFigures(report('outage', [measurement('outage-1')]))).toEqual([]);
    expect(studyFigures(report('demo', []))).toEqual([]);
  });

  it('fitSegment spans the points, fitText signs the intercept', () => {
    expect(fitSegment([{ x: 2, y: 0, label: '' }, { x: 1, y: 0, label: '' }], { slope: 2, intercept: -1, rSquared: 1 })).toEqual([{ x: 1, y: 1 }, { x: 2, y: 3 }]);
    expect(fitSegment([], { slope: 2, intercept: -1, rSquared: 1 })).toEqual([]);
    expect(fitText({ slope: 1.95, intercept: -690.4, rSquared: 0.999 }, 'MB', 'MB')).toBe('fit: 1.95 x stressed - 690 MB (R² 0.9990)');
  });
});

describe('a migration\'s timeline from its record', () => {
  it('has the phases, the statuses of each side, the outages, RTT and loss per phase, throughput both ways', () => {
    const t = timelineOf(hybridRecord());
    expect(t.endSeconds).toBe(3);
    expect(t.spans).toEqual([
      { lane: LANES.phase, label: 'pre-copy', from: 0, to: 1 },
      { lane: LANES.phase, label: 'post-copy', from: 1, to: 3 },
      { lane: LANES.guest, label: 'paused (switch-over)', from: 1, to: 1.1 },
      { lane: LANES.ping, label: 'switch-over blackout', from: 1, to: 1.2 },
      { lane: LANES.ping, label: 'post-copy outage', from: 1.5, to: 2.5 },
    ]);
    expect(t.events).toContainEqual({ lane: LANES.source, label: 'setup', at: 0 });
    expect(t.events).toContainEqual({ lane: LANES.destination, label: 'postcopy-active', at: 1 });
    expect(t.events).toContainEqual({ lane: LANES.guest, label: 'RESUME (destination)', at: 1.1 });
    expect(t.events).toContainEqual({ lane: LANES.phase, label: 'post-copy (inferred)', at: 1.05 });
    // Before: 10 probes every 100 ms, drawn over the second before the start; after: 2 s.
    expect(t.rtt.filter((r) => r.series === 'RTT mean')).toEqual([
      { series: 'RTT mean', from: -1, to: 0, value: 0.3 },
      { series: 'RTT mean', from: 0, to: 1, value: 0.4 },
      { series: 'RTT mean', from: 1, to: 3, value: 0.5 },
      { series: 'RTT mean', from: 3, to: 5, value: 0.3 },
    ]);
    const max = t.rtt.filter((r) => r.series === 'RTT max').map((r) => r.value);
    [0.9, 1.2, 1.5, 0.9].forEach((v, i) => expect(max[i]).toBeCloseTo(v, 9));
    expect(t.loss.map((l) => l.value)).toEqual([0, 0, 60, 0]);
    expect(t.forward).toEqual([
      { series: 'QEMU, per phase', from: 0, to: 1, value: 100 },
      { series: 'QEMU, per phase', from: 1, to: 3, value: 25 },
      { series: 'interfaces, mean', from: 0, to: 3, value: 151 / 3 },
    ]);
    expect(t.reverse).toEqual([{ series: 'interfaces, mean', from: 0, to: 3, value: 0.6 / 3 }]);
    expect(t.domain).toEqual([-1, 5]);
    expect(t.missing).toEqual([...RECORD_HAS_NO_SERIES, expect.stringMatching(/^The ping windows before the start and after the end/)]);
  });

  it('says what a record without ping or interface figures cannot show, instead of drawing it', () => {
    const t = timelineOf(recordEnded('vm-p', T0, T0 + 2000, { bytes: { transferred: fig(100e6), precopy: null, postcopy: null, downtime: null, disk: null }, stoppedAt: fig(T0 + 1900) }));
    expect(t.spans).toEqual([{ lane: LANES.phase, label: 'pre-copy', from: 0, to: 1.9 }, { lane: LANES.guest, label: 'paused (switch-over)', from: 1.9, to: 2 }]);
    expect(t.forward).toEqual([{ series: 'QEMU, per phase', from: 0, to: 2, value: 50 }]);
    expect(t.rtt).toEqual([]);
    expect(t.reverse).toEqual([]);
    expect(t.missing).toContainEqual(expect.stringMatching(/^No ping figures in this record/));
    expect(t.missing).toContainEqual(expect.stringMatching(/^No interface figures in this record .*no destination → source throughput/));
  });

  it('stacks one panel per series it has on one time scale', () => {
    const titles = (spec: unknown) => (spec as { vconcat: { title: string }[] }).vconcat.map((p) => p.title);
    expect(titles(timelineSpec(timelineOf(hybridRecord())))).toEqual([
      'phases, QEMU statuses, nova-compute, ping outages', 'ping RTT per phase', 'ping loss per phase',
      'throughput, source → destination', 'throughput, destination → source (acknowledgements; post-copy page requests)',
    ]);
    const bare = timelineSpec(timelineOf(recordEnded('vm-p', T0, T0 + 2000)));
    expect(titles(bare)).toEqual(['phases, QEMU statuses, nova-compute, ping outages', 'throughput, source → destination']);
    const last = (bare as unknown as { vconcat: { encoding: { x: { title: string; scale: { domain: number[] } } } }[] }).vconcat[1];
    expect(last?.encoding.x).toMatchObject({ title: 'seconds from the start (QMP setup)', scale: { domain: [0, 2] } });
  });
});

describe('charts: Vega-Lite to SVG without a browser', () => {
  it('renders every figure\'s spec without a warning, each an SVG with its marks', async () => {
    const ms = [64, 128].map((s) => measurement(`sweep-${s}`, { stressedMiB: s, transferredBytes: (32 + 2 * s) * MiB, durationSeconds: 0.3 + s / 100 }));
    const flavors = ['s', 'm', 'l', 'xl'].map((f) => measurement(`flavor-${f}`, { flavor: f, blackoutSeconds: 0.1 }));
    const specs = [
      ...studyFigures(report('stress-sweep', ms)).map((f) => f.spec),
      ...studyFigures(report('flavors', flavors)).map((f) => f.spec),
      timelineSpec(timelineOf(hybridRecord())),
      timelineSpec(timelineOf(recordEnded('vm-p', T0, T0 + 2000))),
    ];
    const warnings: string[] = [];
    const svgs = await Promise.all(specs.map((spec, i) => renderSvg(spec, `f${i}`, { onWarning: (w) => warnings.push(w) })));
    expect(warnings).toEqual([]);
    for (const svg of svgs) {
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg).toMatch(/class="mark-(symbol|rect|rule|line|tick) role-mark/);
    }
    expect(svgs.at(-2)).toContain('ping RTT per phase');
  });

  it('prefixes the ids of each chart, so that two in one page never share one', async () => {
    const spec: ChartSpec = { data: { values: [{ a: 1 }, { a: 3 }] }, mark: { type: 'bar', clip: true }, encoding: { x: { field: 'a', type: 'quantitative', scale: { domain: [0, 2] } } } };
    const [a, b] = await Promise.all([renderSvg(spec, 'one'), renderSvg(spec, 'two')]);
    const ids = (svg: string) => [...svg.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
    expect(ids(a).length).toBeGreaterThan(0);
    expect(ids(a).every((id) => id?.startsWith('one-'))).toBe(true);
    expect(ids(a).filter((id) => ids(b).includes(id))).toEqual([]);
    const refs = [...a.matchAll(/url\(#([^)]+)\)/g)].map((m) => m[1]);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(ids(a)).toContain(ref);
  });

  it('prefixIds rewrites ids and their references only', () => {
    expect(prefixIds('<g id="clip1"/><path clip-path="url(#clip1)"/><use href="#clip1"/><a href="#other"/>', 'f 1')).toBe(
      '<g id="f_1-clip1"/><path clip-path="url(#f_1-clip1)"/><use href="#f_1-clip1"/><a href="#other"/>',
    );
    expect(prefixIds('<svg></svg>', 'x')).toBe('<svg></svg>');
  });

  it('loads nothing: a spec that names a data URL fails instead of fetching', async () => {
    await expect(renderSvg({ data: { url: 'http://127.0.0.1:9/x.json' }, mark: 'point' }, 'u')).rejects.toThrow(/chart u: .*charts load no data/);
  });
});

describe('the lab\'s HTML report', () => {
  const ms = [64, 128].map((s) => measurement(`sweep-${s}`, { stressedMiB: s, transferredBytes: (32 + 2 * s) * MiB, durationSeconds: 0.3 + s / 100 }));

  it('has Figures 3-6 and a timeline per migration as inline SVG, the study\'s points among the marks, no script', async () => {
    const records = new Map(ms.map((m) => [m.recordId, hybridRecord(m.vm)]));
    const html = await labReportHtml(report('stress-sweep', ms), records);
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect([...html.matchAll(/<figure id="([^"]+)"/g)].map((m) => m[1])).toEqual(['figure-3', 'figure-4', 'figure-5', 'figure-6', 'timeline-1', 'timeline-2']);
    expect(html.match(/<svg /g)).toHaveLength(6);
    for (const p of STUDY_TABLE3) expect(html).toContain(`aria-label="stressed memory (MB): ${p.stressedMB}; migration time (s): ${p.timeS}"`);
    for (const p of STUDY_TABLE4) expect(html).toContain(`aria-label="stressed memory (MB): ${p.stressedMB}; data transferred (MB): ${p.transferredMB}"`);
    expect(html).toContain('aria-label="stressed memory (MiB): 128; data transferred (MiB): 288"');
    expect(html).toContain('*** SIMULATED');
    expect(html).not.toMatch(/<script|<link rel="stylesheet"|src="http/);
  });

  it('has Figures 1-2 for flavors, and says which scenario draws which figure for the others', async () => {
    const flavors = await labReportHtml(report('flavors', ['s', 'm', 'l', 'xl'].map((f) => measurement(`flavor-${f}`, { flavor: f }))), new Map());
    expect([...flavors.matchAll(/<figure id="(figure-\d)"/g)].map((m) => m[1])).toEqual(['figure-1', 'figure-2']);
    const outage = await labReportHtml(report('outage', [measurement('outage-1')], false), new Map());
    expect(outage).toContain('Scenario outage has none of the study\'s figures. Figures 1 and 2 come from <code>lab --scenario flavors</code>');
    expect(outage).toContain('No record outage-1@1700000000000 of outage-1 could be read from the exporter: no timeline.');
    expect(outage).not.toContain('SIMULATED');
  });

  it('escapes VM names, ids, labels and notes', async () => {
    const m = measurement(EVIL, { recordId: `${EVIL}@${T0}` });
    const html = await labReportHtml(report('outage', [m]), new Map([[m.recordId, hybridRecord(EVIL)]]));
    expect(html).not.toContain('<img');
    expect(html).toContain('Timeline of &lt;img src=x onerror=alert(1)&gt;&amp;&quot;&#39;:');
    expect(html).toContain('data-record="&lt;img src=x onerror=alert(1)&gt;&amp;&quot;&#39;@1700000000000"');
    expect(html).toContain('note: a note &lt;b&gt;');
  });
});
