/**
 * /migrations/{id}: one migration's page, rendered on the server with the lab report's charts
 * (the same timeline, from the record alone). A migration still under way has no record yet: its
 * page says so and reloads until the record is there. No script; everything from the record or
 * the config is escaped.
 */
import { htmlPage, timelineFigureHtml } from '../lab/report/html.js';
import type { ActiveMigration, MigrationRecord } from '../records/record.js';
import { escapeHtml } from './landing.js';

/** Seconds between reloads of a page that shows a migration under way. */
export const REFRESH_SECONDS = 2;

const fmt = (n: number | undefined, digits: number): string => (n === undefined ? '-' : n.toFixed(digits));

function labelsText(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {});
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(', ') : '-';
}

function summary(rows: [string, string][]): string {
  return `<table>${rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>`;
}

/** Links from /migrations/{id}: the landing page and the record's JSON, relative (a reverse proxy's prefix stays). */
function links(id: string): string {
  return `<p><a href="../">livemig-exporter</a> · <a href="../api/v1/migrations/${encodeURIComponent(id)}">this record as JSON</a></p>`;
}

export async function migrationPage(record: MigrationRecord): Promise<string> {
  const title = `migration of ${record.vm}`;
  const body = [
    `<h1>Migration of ${escapeHtml(record.vm)}</h1>`,
    links(record.id),
    summary([
      ['id', record.id],
      ['hosts', `${record.source.host} → ${record.destination?.host ?? '?'}`],
      ['labels', labelsText(record.labels)],
      ['result', record.result ?? 'running'],
      ['mode', record.mode],
      ['started (UTC)', new Date(record.startedAt.value).toISOString()],
      ['duration (s)', fmt(record.durationSeconds?.value, 2)],
      ['transferred (MB)', fmt(record.bytes.transferred ? record.bytes.transferred.value / 1e6 : undefined, 1)],
      ['QEMU downtime (ms)', fmt(record.qemu.downtimeMs?.value, 1)],
      ['ping blackout (s)', record.ping ? fmt(record.ping.switchoverBlackout?.seconds ?? 0, 1) : '-'],
      ['post-copy outage (s)', record.ping ? fmt(record.ping.postcopyOutageTotalSeconds, 1) : '-'],
    ]),
    await timelineFigureHtml(record, { elementId: 'timeline', withGeneralGaps: true }),
  ];
  return htmlPage(title, body.join('\n'));
}

export function runningMigrationPage(m: ActiveMigration): string {
  const body = [
    `<h1>Migration of ${escapeHtml(m.vm)}: under way</h1>`,
    links(m.id),
    summary([
      ['id', m.id],
      ['hosts', `${m.source.host} → ${m.destination?.host ?? '?'}`],
      ['labels', labelsText(m.labels)],
      ['phase', m.phase],
      ['QEMU status (source)', m.status ?? '-'],
      ['started (UTC)', new Date(m.startedAtMs).toISOString()],
    ]),
    `<p>The timeline is drawn from the migration's record, which is written when the migration ends. This page reloads every ${REFRESH_SECONDS} s until then.</p>`,
  ];
  return htmlPage(`migration of ${m.vm} (under way)`, body.join('\n'), { refreshSeconds: REFRESH_SECONDS });
}

export function migrationNotFoundPage(id: string): string {
  return htmlPage('migration not found', `<h1>No migration ${escapeHtml(id)}</h1>\n<p>The exporter has no record of this id (records are kept for a bounded time and number), and no migration with it runs now. <a href="../">Back to livemig-exporter</a></p>`);
}
