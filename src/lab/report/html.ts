/**
 * The lab's HTML report, and the per-migration timeline the exporter's pages share: one
 * self-contained file, inline SVG figures and inline CSS, no script and nothing fetched. Records
 * and report in, an HTML string out (the charts are rendered by charts.ts; no I/O here).
 * Everything that comes from a config or a record (VM names, labels, ids, notes) is escaped.
 */
import type { MigrationRecord } from '../../records/record.js';
import { escapeHtml } from './escape.js';
import { renderSvg } from './charts.js';
import { studyFigures, type ReportFigure } from './figures.js';
import type { ScenarioReport } from './results.js';
import { STUDY_SOURCE } from './study.js';
import { formatReport, SIMULATED_BANNER } from './table.js';
import { RECORD_HAS_NO_SERIES, timelineOf, timelineSpec } from './timeline.js';

const STYLE = `body{font-family:sans-serif;margin:2em;max-width:72em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}
figure{margin:1.5em 0;padding:1em;border:1px solid #ddd;overflow-x:auto}figcaption{font-weight:bold;margin-bottom:.5em}
figure svg{display:block;max-width:none}.caption,.missing{color:#555;font-size:.9em}
.simulated{background:#fff3cd;border:2px solid #d39e00;padding:.6em;font-weight:bold}pre{background:#f6f6f6;padding:1em;overflow-x:auto}`;

export interface PageOptions {
  /** Seconds: the page reloads itself (meta refresh) while something it shows is under way. */
  refreshSeconds?: number;
}

/** A whole page: doctype, charset, the shared style, an empty icon (so a browser fetches nothing else). */
export function htmlPage(title: string, body: string, options: PageOptions = {}): string {
  const refresh = options.refreshSeconds ? `<meta http-equiv="refresh" content="${Math.max(1, Math.round(options.refreshSeconds))}">\n` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
${refresh}<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head><body>
${body}
</body></html>
`;
}

export async function figureHtml(figure: ReportFigure): Promise<string> {
  const svg = await renderSvg(figure.spec, figure.id);
  return `<figure id="${escapeHtml(figure.id)}" class="chart" data-figure="${figure.number}">
<figcaption>Figure ${figure.number}. ${escapeHtml(figure.title)}</figcaption>
${svg}
<p class="caption">${escapeHtml(figure.caption)}</p>
</figure>`;
}

export interface TimelineOptions {
  /** Element id of the figure, also the prefix of its SVG's ids. */
  elementId: string;
  /** Also list what no record carries (the report says that once, above its timelines). */
  withGeneralGaps?: boolean;
}

/** One migration's timeline as a figure, with what its record does not carry beneath it. */
export async function timelineFigureHtml(record: MigrationRecord, options: TimelineOptions): Promise<string> {
  const timeline = timelineOf(record);
  const svg = await renderSvg(timelineSpec(timeline), options.elementId);
  const gaps = options.withGeneralGaps ? timeline.missing : timeline.missing.filter((m) => !RECORD_HAS_NO_SERIES.includes(m));
  const hosts = `${record.source.host} → ${record.destination?.host ?? '?'}`;
  return `<figure id="${escapeHtml(options.elementId)}" class="chart timeline" data-record="${escapeHtml(record.id)}">
<figcaption>Timeline of ${escapeHtml(record.vm)}: ${escapeHtml(hosts)}, ${escapeHtml(record.result ?? 'running')}, ${escapeHtml(record.mode)}, started ${new Date(record.startedAt.value).toISOString()}</figcaption>
${svg}
${gaps.length ? `<ul class="missing">${gaps.map((g) => `<li>${escapeHtml(g)}</li>`).join('')}</ul>` : ''}
</figure>`;
}

/** HTML (no record text in it). */
const FIGURES_OF = 'Figures 1 and 2 come from <code>lab --scenario flavors</code>, Figures 3 to 6 from <code>lab --scenario stress-sweep</code>.';

/**
 * The lab's report: the study's figures the scenario can draw, a timeline per migration (from
 * `records`, the exporter's records by id), the printed tables and the notes.
 */
export async function labReportHtml(report: ScenarioReport, records: ReadonlyMap<string, MigrationRecord>): Promise<string> {
  const sim = report.simulated ? ' (SIMULATED)' : '';
  const title = `livemig-exporter lab: ${report.scenario}${sim}`;
  const figures = studyFigures(report);
  const parts: string[] = [`<h1>${escapeHtml(title)}</h1>`];
  if (report.simulated) parts.push(`<p class="simulated">${escapeHtml(SIMULATED_BANNER)}</p>`);
  parts.push(
    `<p>Engine ${escapeHtml(report.engine)}${report.accel ? ` (${escapeHtml(report.accel)})` : ''}, migration link ${escapeHtml(report.bandwidth)} ` +
      `(${(report.bandwidthBytesPerSecond / 1e6).toFixed(1)} MB/s), started ${escapeHtml(report.startedAt)}, ${report.measurements.length} migrations. ` +
      `Every lab figure is drawn from the exporter's migration records; the study's points are its published tables (${escapeHtml(STUDY_SOURCE)}).</p>`,
  );
  parts.push('<h2>The study\'s figures</h2>');
  if (figures.length === 0) parts.push(`<p>Scenario ${escapeHtml(report.scenario)} has none of the study's figures. ${FIGURES_OF}</p>`);
  else parts.push(`<p class="caption">${FIGURES_OF}</p>`, ...(await Promise.all(figures.map(figureHtml))));

  parts.push('<h2>Per-migration timelines</h2>', `<ul class="missing">${RECORD_HAS_NO_SERIES.map((g) => `<li>${escapeHtml(g)}</li>`).join('')}</ul>`);
  let n = 0;
  for (const m of report.measurements) {
    const record = records.get(m.recordId);
    n++;
    if (record) parts.push(await timelineFigureHtml(record, { elementId: `timeline-${n}` }));
    else parts.push(`<p class="missing">No record ${escapeHtml(m.recordId)} of ${escapeHtml(m.vm)} could be read from the exporter: no timeline.</p>`);
  }
  parts.push('<h2>Tables</h2>', `<pre>${escapeHtml(formatReport(report))}</pre>`);
  return htmlPage(title, parts.join('\n'));
}
