/**
 * The study's figures as Vega-Lite specs, drawn from the lab's measurements (the exporter's
 * records) with the study's published points beside them. Pure: report in, specs out.
 *
 * - Figures 1 and 2 (flavors): migration time and downtime by flavor.
 * - Figures 3 to 6 (stress-sweep): migration time and data transferred against stressed memory,
 *   beside Table 3 (256 MB steps: Figures 3 and 4) and Table 4 (1024 MB steps: Figures 5 and 6),
 *   each with its least-squares line.
 * The lab's VMs are the study's scaled down (and its link is what --bandwidth says), so the lab
 * and the study are drawn side by side, each on its own axes: the shape is what compares.
 */
import type { ChartSpec } from './charts.js';
import type { LinearFit } from './linear-fit.js';
import { linearFit } from './linear-fit.js';
import { MiB, type LabMeasurement, type ScenarioReport } from './results.js';
import { STUDY_FLAVORS, STUDY_TABLE3, STUDY_TABLE4, type StudyStressPoint } from './study.js';

export interface ReportFigure {
  /** Stable, used for element ids: `figure-1` ... */
  id: string;
  /** The study's figure number. */
  number: number;
  title: string;
  /** What is drawn and from which figures of the records. */
  caption: string;
  spec: ChartSpec;
}

const FLAVOR_ORDER = ['s', 'm', 'l', 'xl'];
const LAB_COLOR = '#1f77b4';
const STUDY_COLOR = '#ff7f0e';
const PANEL = { width: 300, height: 220 };

export interface BarRow {
  flavor: string;
  series: string;
  value: number;
}

export interface ScatterRow {
  x: number;
  y: number;
  /** The point's VM (lab) or table column (study): in the data, not drawn. */
  label: string;
}

/** The figures this report's scenario can draw: 1-2 for flavors, 3-6 for stress-sweep, none otherwise. */
export function studyFigures(report: ScenarioReport): ReportFigure[] {
  if (report.scenario === 'flavors') return flavorFigures(report.measurements);
  if (report.scenario === 'stress-sweep') return stressFigures(report);
  return [];
}

export function flavorFigures(ms: readonly LabMeasurement[]): ReportFigure[] {
  const lab = ms.filter((m) => m.result === 'completed');
  const time: BarRow[] = [
    ...lab.flatMap((m) => (m.durationSeconds === null ? [] : [{ flavor: m.flavor, series: 'QMP total-time', value: m.durationSeconds }])),
    ...lab.flatMap((m) => (m.novaSeconds === null ? [] : [{ flavor: m.flavor, series: 'nova-compute log', value: m.novaSeconds }])),
  ];
  const downtime: BarRow[] = [
    ...lab.flatMap((m) => (m.qemuDowntimeMs === null ? [] : [{ flavor: m.flavor, series: 'QEMU downtime', value: m.qemuDowntimeMs / 1000 }])),
    ...lab.flatMap((m) => (m.blackoutSeconds === null ? [] : [{ flavor: m.flavor, series: 'ping blackout', value: m.blackoutSeconds }])),
  ];
  return [
    {
      id: 'figure-1',
      number: 1,
      title: 'Migration time by flavor',
      caption: 'Lab: each flavor\'s record, QEMU\'s total-time (and nova-compute\'s log lines, the study\'s method, when the record has them). Study: Table 2, from nova-compute\'s logs.',
      spec: barsBesideStudy(time, STUDY_FLAVORS.map((f) => ({ flavor: f.flavor, series: 'study (nova logs)', value: f.timeS })), 'migration time (s)'),
    },
    {
      id: 'figure-2',
      number: 2,
      title: 'Downtime by flavor',
      caption: 'Lab: QEMU\'s downtime figure of each record (and the ping blackout, for VMs that answer ping). Study: Table 2, lost pings x 0.1 s.',
      spec: barsBesideStudy(downtime, STUDY_FLAVORS.map((f) => ({ flavor: f.flavor, series: 'study (ping)', value: f.downtimeS })), 'downtime (s)'),
    },
  ];
}

export function stressFigures(report: ScenarioReport): ReportFigure[] {
  const lab = report.measurements.filter((m) => m.result === 'completed');
  const time = lab.flatMap((m) => (m.durationSeconds === null ? [] : [{ x: m.stressedMiB, y: m.durationSeconds, label: m.vm }]));
  const data = lab.flatMap((m) => (m.transferredBytes === null ? [] : [{ x: m.stressedMiB, y: m.transferredBytes / MiB, label: m.vm }]));
  // The report's fits are in bytes against bytes: drawn per stressed MiB, data in MiB (so the slope stays the law's 2).
  const fits = report.fits;
  const timeLine = fits ? { slope: fits.time.slope * MiB, intercept: fits.time.intercept, rSquared: fits.time.rSquared } : null;
  const dataLine = fits ? { slope: fits.transferred.slope, intercept: fits.transferred.intercept / MiB, rSquared: fits.transferred.rSquared } : null;
  const tables: [StudyTable, number, number][] = [[{ name: 'Table 3', points: STUDY_TABLE3 }, 3, 4], [{ name: 'Table 4', points: STUDY_TABLE4 }, 5, 6]];
  return tables.flatMap(([table, timeNumber, dataNumber]) => {
    const studyTime = table.points.map((p) => ({ x: p.stressedMB, y: p.timeS, label: `${p.stressedMB} MB` }));
    const studyData = table.points.map((p) => ({ x: p.stressedMB, y: p.transferredMB, label: `${p.stressedMB} MB` }));
    const steps = table.name === 'Table 3' ? '256 MB' : '1024 MB';
    return [
      {
        id: `figure-${timeNumber}`,
        number: timeNumber,
        title: `Migration time against stressed memory (study: ${table.name}, ${steps} steps)`,
        caption: `Lab: each step's record (QEMU total-time) and the least-squares line over the completed steps. Study: ${table.name}, x-large VM, and its least-squares line (computed here from the table).`,
        spec: scatterBesideStudy(
          { rows: time, fit: timeLine, x: 'stressed memory (MiB)', y: 'migration time (s)', unit: 's' },
          { rows: studyTime, fit: pointsFit(studyTime), x: 'stressed memory (MB)', y: 'migration time (s)', unit: 's', table: table.name },
        ),
      },
      {
        id: `figure-${dataNumber}`,
        number: dataNumber,
        title: `Data transferred against stressed memory (study: ${table.name}, ${steps} steps)`,
        caption: `Lab: each step's record (QEMU ram.transferred, in MiB) and the least-squares line. Study: ${table.name} (iftop on the hosts), and its line. The study's law: transferred = base + 2 x stressed.`,
        spec: scatterBesideStudy(
          { rows: data, fit: dataLine, x: 'stressed memory (MiB)', y: 'data transferred (MiB)', unit: 'MiB' },
          { rows: studyData, fit: pointsFit(studyData), x: 'stressed memory (MB)', y: 'data transferred (MB)', unit: 'MB', table: table.name },
        ),
      },
    ];
  }).sort((a, b) => a.number - b.number);
}

interface StudyTable {
  name: string;
  points: readonly StudyStressPoint[];
}

type Line = Pick<LinearFit, 'slope' | 'intercept' | 'rSquared'>;

function pointsFit(rows: readonly ScatterRow[]): Line | null {
  return new Set(rows.map((r) => r.x)).size < 2 ? null : linearFit(rows.map((r) => [r.x, r.y]));
}

/** The two ends of a fitted line over the points' x range. Pure. */
export function fitSegment(rows: readonly ScatterRow[], fit: Line | null): { x: number; y: number }[] {
  if (!fit || rows.length === 0) return [];
  const xs = rows.map((r) => r.x);
  return [Math.min(...xs), Math.max(...xs)].map((x) => ({ x, y: fit.intercept + fit.slope * x }));
}

/** "fit: 1.99 x stressed + 36.89 MiB (R² 1.0000)", "fit: 0.0174 s/MiB x stressed + 0.33 s (R² …)", or why there is no line. */
export function fitText(fit: Line | null, unit: string, xUnit: string): string {
  if (!fit) return 'no line: fewer than two different stressed sizes completed';
  const sign = fit.intercept < 0 ? '-' : '+';
  const per = unit === xUnit ? '' : ` ${unit}/${xUnit}`;
  return `fit: ${round(fit.slope)}${per} x stressed ${sign} ${round(Math.abs(fit.intercept))} ${unit} (R² ${fit.rSquared.toFixed(4)})`;
}

const round = (n: number): string => (Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toPrecision(3));

interface Panel {
  rows: ScatterRow[];
  fit: Line | null;
  x: string;
  y: string;
  unit: string;
  table?: string;
}

function scatterPanel(panel: Panel, title: string, color: string): unknown {
  const xUnit = panel.x.includes('MiB') ? 'MiB' : 'MB';
  return {
    ...PANEL,
    title: { text: title, subtitle: fitText(panel.fit, panel.unit, xUnit) },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: panel.x, scale: { zero: true } },
      y: { field: 'y', type: 'quantitative', title: panel.y, scale: { zero: true } },
    },
    layer: [
      { data: { values: fitSegment(panel.rows, panel.fit) }, mark: { type: 'line', color, strokeDash: [6, 3], strokeWidth: 1.5 } },
      { data: { values: panel.rows }, mark: { type: 'point', filled: true, size: 60, color, opacity: 1 } },
    ],
  };
}

function scatterBesideStudy(lab: Panel, study: Panel): ChartSpec {
  return {
    hconcat: [
      scatterPanel(lab, lab.rows.length ? 'lab (this run)' : 'lab (this run): no completed step', LAB_COLOR),
      scatterPanel(study, `study (${study.table ?? ''})`, STUDY_COLOR),
    ],
    resolve: { scale: { x: 'independent', y: 'independent' } },
  } as ChartSpec;
}

function barPanel(rows: BarRow[], title: string, yTitle: string, range: string[]): unknown {
  return {
    ...PANEL,
    title,
    data: { values: rows },
    mark: { type: 'bar' },
    encoding: {
      x: { field: 'flavor', type: 'nominal', sort: FLAVOR_ORDER, title: 'flavor', axis: { labelAngle: 0 } },
      xOffset: { field: 'series', type: 'nominal' },
      y: { field: 'value', type: 'quantitative', title: yTitle },
      color: { field: 'series', type: 'nominal', title: null, scale: { range }, legend: { orient: 'bottom' } },
    },
  };
}

function barsBesideStudy(lab: BarRow[], study: BarRow[], yTitle: string): ChartSpec {
  return {
    hconcat: [
      barPanel(lab, lab.length ? 'lab (this run)' : 'lab (this run): no completed migration', yTitle, [LAB_COLOR, '#2ca02c']),
      barPanel(study, 'study (Table 2)', yTitle, [STUDY_COLOR]),
    ],
    resolve: { scale: { y: 'independent', color: 'independent' } },
  } as ChartSpec;
}
