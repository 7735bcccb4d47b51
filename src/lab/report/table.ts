import type { LinearFit } from './linear-fit.js';
import { MiB, type LabMeasurement, type ScenarioReport } from './results.js';
import { STUDY_FLAVORS, STUDY_SOURCE, STUDY_TABLE3, STUDY_TABLE4, type StudyStressPoint } from './study.js';
import { linearFit } from './linear-fit.js';

/**
 * The scenario's table in the study's layout (quantities in rows, flavors or stressed memory in
 * columns), the study's own table beneath it, and the fits. Pure.
 */

export const SIMULATED_BANNER = '*** SIMULATED: figures come from the lab\'s model of hybrid migration (--engine sim), not from QEMU ***';

type Cell = string | number | null;

/** A markdown-style grid: first column left-aligned, the rest right-aligned. */
export function grid(rows: readonly (readonly Cell[])[]): string {
  const text = rows.map((row) => row.map((cell) => (cell === null ? '-' : String(cell))));
  const widths: number[] = [];
  for (const row of text) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return text
    .map((row) => `| ${row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join(' | ')} |`)
    .join('\n');
}

const mb = (bytes: number | null): Cell => (bytes === null ? null : (bytes / 1e6).toFixed(1));
const seconds = (value: number | null, digits = 2): Cell => (value === null ? null : value.toFixed(digits));

const STUDY_DOWNTIME = [
  'Downtime (ping every 100 ms; downtime = lost pings x 0.1 s):',
  '  pre-copy: no loss; switch-over: a short loss (< 0.3 s);',
  '  post-copy: unpredictable, from none to hundreds of lost pings (tens of seconds), suspected stale ARP/forwarding tables.',
];

export function formatReport(report: ScenarioReport): string {
  const out: string[] = [];
  if (report.simulated) out.push(SIMULATED_BANNER);
  out.push(
    `livemig-exporter lab: ${report.scenario}${report.simulated ? ' (SIMULATED)' : ''}, engine ${report.engine}${report.accel ? ` (${report.accel})` : ''}, ` +
      `migration link ${report.bandwidth} (${(report.bandwidthBytesPerSecond / 1e6).toFixed(1)} MB/s)`,
  );
  out.push(`Lab figures: from the exporter's migration records (${report.measurements.length} migrations)`);
  out.push(report.scenario === 'flavors' ? flavorGrid(report.measurements) : stressGrid(report.measurements));
  if (report.fits) {
    out.push(formatFits('Lab fit against stressed memory', report.fits.transferred, report.fits.time));
    const rate = report.fits.timeVsBytes;
    out.push(
      `  time        = transferred / ${(1 / rate.slope / 1e6).toFixed(1)} MB/s + ${rate.intercept.toFixed(2)} s   (R² ${rate.rSquared.toFixed(4)}; link ${(report.bandwidthBytesPerSecond / 1e6).toFixed(1)} MB/s)`,
    );
  }
  out.push('', `Study (${STUDY_SOURCE}):`);
  if (report.scenario === 'flavors') out.push(studyFlavorGrid());
  else if (report.scenario === 'outage') out.push(...STUDY_DOWNTIME);
  else {
    out.push('Table 3: x-large VM, stressed memory in 256 MB steps', studyStressGrid(STUDY_TABLE3), formatStudyFit(STUDY_TABLE3));
    out.push('Table 4: x-large VM, stressed memory in 1024 MB steps', studyStressGrid(STUDY_TABLE4), formatStudyFit(STUDY_TABLE4));
  }
  for (const note of report.notes) out.push(`note: ${note}`);
  if (report.simulated) out.push(SIMULATED_BANNER);
  return `${out.join('\n')}\n`;
}

function stressGrid(ms: readonly LabMeasurement[]): string {
  const hasPing = ms.some((m) => m.blackoutSeconds !== null || m.postcopyOutageSeconds !== null);
  const rows: Cell[][] = [
    ['stressed memory (MiB)', ...ms.map((m) => m.stressedMiB)],
    ['migration time (s)', ...ms.map((m) => seconds(m.durationSeconds))],
    ...(ms.some((m) => m.novaSeconds !== null) ? [['  from nova logs (s)', ...ms.map((m) => seconds(m.novaSeconds))]] : []),
    ['data transferred (MB)', ...ms.map((m) => mb(m.transferredBytes))],
    ...(ms.some((m) => m.interfaceBytes !== null) ? [['  on the interfaces (MB)', ...ms.map((m) => mb(m.interfaceBytes))]] : []),
    ['  pre-copy (MB)', ...ms.map((m) => mb(m.precopyBytes))],
    ['  post-copy (MB)', ...ms.map((m) => mb(m.postcopyBytes))],
    ['QEMU downtime (s)', ...ms.map((m) => seconds(m.qemuDowntimeMs === null ? null : m.qemuDowntimeMs / 1000, 3))],
  ];
  if (hasPing) {
    rows.push(['ping blackout (s)', ...ms.map((m) => seconds(m.blackoutSeconds, 1))]);
    rows.push(['post-copy outage (s)', ...ms.map((m) => seconds(m.postcopyOutageSeconds, 1))]);
    rows.push(['live outage gauge, max (s)', ...ms.map((m) => seconds(m.livePostcopyOutageMaxSeconds, 1))]);
  }
  rows.push(['mode / result', ...ms.map((m) => `${m.mode}/${m.result ?? 'running'}`)]);
  return grid(rows);
}

function flavorGrid(ms: readonly LabMeasurement[]): string {
  return grid([
    ['flavor', ...ms.map((m) => m.flavor)],
    ['RAM (MiB)', ...ms.map((m) => m.memoryMiB)],
    ['allocated memory (MiB)', ...ms.map((m) => m.allocatedMiB)],
    ['migration time (s)', ...ms.map((m) => seconds(m.durationSeconds))],
    ...(ms.some((m) => m.novaSeconds !== null) ? [['  from nova logs (s)', ...ms.map((m) => seconds(m.novaSeconds))]] : []),
    ['downtime (s, QEMU)', ...ms.map((m) => seconds(m.qemuDowntimeMs === null ? null : m.qemuDowntimeMs / 1000, 3))],
    ['data transferred (MB)', ...ms.map((m) => mb(m.transferredBytes))],
    ...(ms.some((m) => m.interfaceBytes !== null) ? [['  on the interfaces (MB)', ...ms.map((m) => mb(m.interfaceBytes))]] : []),
    ['mode / result', ...ms.map((m) => `${m.mode}/${m.result ?? 'running'}`)],
  ]);
}

function studyFlavorGrid(): string {
  return grid([
    ['flavor', ...STUDY_FLAVORS.map((f) => f.flavor)],
    ['vCPU', ...STUDY_FLAVORS.map((f) => f.vcpu)],
    ['RAM (GB)', ...STUDY_FLAVORS.map((f) => f.ramGB)],
    ['migration time (s)', ...STUDY_FLAVORS.map((f) => f.timeS)],
    ['downtime (s)', ...STUDY_FLAVORS.map((f) => f.downtimeS)],
    ['data transferred (MB)', ...STUDY_FLAVORS.map((f) => f.transferredMB)],
  ]);
}

function studyStressGrid(points: readonly StudyStressPoint[]): string {
  return grid([
    ['stressed memory (MB)', ...points.map((p) => p.stressedMB)],
    ['migration time (s)', ...points.map((p) => p.timeS)],
    ['data transferred (MB)', ...points.map((p) => p.transferredMB)],
  ]);
}

export function formatFits(title: string, transferred: LinearFit, time: LinearFit): string {
  return [
    `${title} (n=${transferred.n}):`,
    `  transferred = ${transferred.slope.toFixed(3)} x stressed + ${(transferred.intercept / 1e6).toFixed(1)} MB   (R² ${transferred.rSquared.toFixed(4)})`,
    `  time        = ${(time.slope * MiB * 1000).toFixed(2)} ms per stressed MiB + ${time.intercept.toFixed(2)} s   (R² ${time.rSquared.toFixed(4)})`,
  ].join('\n');
}

function formatStudyFit(points: readonly StudyStressPoint[]): string {
  const transferred = linearFit(points.map((p) => [p.stressedMB, p.transferredMB]));
  const time = linearFit(points.map((p) => [p.stressedMB, p.timeS]));
  return [
    `Study fit (computed here from the table, n=${transferred.n}):`,
    `  transferred = ${transferred.slope.toFixed(3)} x stressed + ${transferred.intercept.toFixed(0)} MB   (R² ${transferred.rSquared.toFixed(4)})`,
    `  time        = ${(time.slope * 1000).toFixed(2)} ms per stressed MB + ${time.intercept.toFixed(2)} s   (R² ${time.rSquared.toFixed(4)})`,
  ].join('\n');
}
