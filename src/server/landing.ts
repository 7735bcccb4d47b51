import type { ActiveMigration, MigrationRecord } from '../records/record.js';
import type { LabInfo } from './app.js';
import { escapeHtml } from '../lab/report/escape.js';

interface LandingInput {
  version: string;
  telemetryPath: string;
  recent: MigrationRecord[];
  running: ActiveMigration[];
  sources: string[];
  /** A lab run: its engine; a SIMULATED one gets a banner that cannot be missed. */
  lab?: LabInfo | null;
}

export { escapeHtml };

const fmtTime = (ms: number | undefined) => (ms === undefined ? '' : new Date(ms).toISOString());
const fmtNumber = (n: number | undefined, digits: number) => (n === undefined ? '' : n.toFixed(digits));

function row(r: MigrationRecord): string {
  const cells = [
    `<a href="migrations/${encodeURIComponent(r.id)}">${escapeHtml(r.vm)}</a> (<a href="api/v1/migrations/${encodeURIComponent(r.id)}">JSON</a>)`,
    escapeHtml(`${r.source.host} → ${r.destination?.host ?? '?'}`),
    escapeHtml(r.result ?? 'running'),
    escapeHtml(r.mode),
    fmtTime(r.startedAt.value),
    fmtNumber(r.durationSeconds?.value, 2),
    fmtNumber(r.bytes.transferred ? r.bytes.transferred.value / 1e6 : undefined, 1),
    fmtNumber(r.qemu.downtimeMs?.value, 0),
  ];
  return `<tr>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;
}

function runningRow(m: ActiveMigration): string {
  const cells = [`<a href="migrations/${encodeURIComponent(m.id)}">${escapeHtml(m.vm)}</a>`, escapeHtml(`${m.source.host} → ${m.destination?.host ?? '?'}`), escapeHtml(m.phase), fmtTime(m.startedAtMs)];
  return `<tr>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;
}

/** While migrations run, the page reloads itself this often (a meta refresh: no script). */
export const LANDING_REFRESH_SECONDS = 2;

function labBanner(lab: LabInfo | null | undefined): string {
  if (!lab) return '';
  if (lab.simulated) {
    return `<p class="simulated" role="alert"><strong>SIMULATED</strong> lab run (engine ${escapeHtml(lab.engine)}): no VM migrated; every figure comes from the lab's model, not from QEMU.</p>\n`;
  }
  return `<p class="lab">Lab run (engine ${escapeHtml(lab.engine)}): real migrations between the lab's hosts on this machine.</p>\n`;
}

export function landingPage({ version, telemetryPath, recent, running, sources, lab }: LandingInput): string {
  const rows = recent.length ? recent.map(row).join('\n') : '<tr><td colspan="8">No migrations recorded yet.</td></tr>';
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>livemig-exporter${lab?.simulated ? ' (SIMULATED)' : ''}</title>
${running.length ? `<meta http-equiv="refresh" content="${LANDING_REFRESH_SECONDS}">\n` : ''}<link rel="icon" href="data:,">
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}.simulated{background:#b00020;color:#fff;padding:.6em 1em;font-size:1.2em}.lab{background:#eef;padding:.4em 1em}</style>
</head><body>
<h1>livemig-exporter</h1>
${labBanner(lab)}<p>Live-migration exporter ${escapeHtml(version)}: migration time, transferred bytes and downtime of QEMU/KVM virtual machines.</p>
<ul>
<li><a href="${escapeHtml(telemetryPath.replace(/^\//, ''))}">Metrics</a></li>
<li><a href="api/v1/migrations">Migrations (JSON)</a></li>
<li><a href="-/healthy">Health</a> · <a href="-/ready">Readiness</a></li>
</ul>
<h2>Sources</h2>
<ul>${sources.map((s) => `<li>${escapeHtml(s)}</li>`).join('') || '<li>none configured</li>'}</ul>
<h2>Migrating now</h2>
<table><tr><th>VM</th><th>hosts</th><th>phase</th><th>started (UTC)</th></tr>
${running.length ? running.map(runningRow).join('\n') : '<tr><td colspan="4">None.</td></tr>'}
</table>
<h2>Recent migrations</h2>
<p>Each VM links to its migration's timeline.</p>
<table><tr><th>VM</th><th>hosts</th><th>result</th><th>mode</th><th>started (UTC)</th><th>duration (s)</th><th>transferred (MB)</th><th>QEMU downtime (ms)</th></tr>
${rows}
</table>
</body></html>
`;
}
