import type { LabMeasurement, ScenarioReport } from './results.js';

/** One row per migration; RFC 4180 quoting. Pure. */
export const CSV_COLUMNS = [
  'scenario', 'engine', 'step', 'vm', 'flavor', 'memory_mib', 'allocated_mib', 'stressed_mib', 'record_id', 'result', 'mode',
  'duration_seconds', 'transferred_bytes', 'precopy_bytes', 'postcopy_bytes', 'qemu_downtime_ms', 'blackout_seconds',
  'postcopy_outage_seconds', 'live_postcopy_outage_max_seconds', 'interface_bytes', 'nova_seconds', 'nova_result',
] as const;

export function reportCsv(report: ScenarioReport): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const m of report.measurements) lines.push(csvRow(report, m).map(csvField).join(','));
  return `${lines.join('\n')}\n`;
}

function csvRow(report: ScenarioReport, m: LabMeasurement): (string | number | null)[] {
  return [
    report.engine === 'sim' ? `${report.scenario} (SIMULATED)` : report.scenario,
    report.engine, m.step, m.vm, m.flavor, m.memoryMiB, m.allocatedMiB, m.stressedMiB, m.recordId, m.result, m.mode,
    m.durationSeconds, m.transferredBytes, m.precopyBytes, m.postcopyBytes, m.qemuDowntimeMs, m.blackoutSeconds,
    m.postcopyOutageSeconds, m.livePostcopyOutageMaxSeconds, m.interfaceBytes, m.novaSeconds, m.novaResult,
  ];
}

export function csvField(value: string | number | null): string {
  if (value === null) return '';
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The JSON file: the report as it is, with the SIMULATED marker spelled out for the sim engine. */
export function reportJson(report: ScenarioReport): string {
  return `${JSON.stringify(report.simulated ? { SIMULATED: true, ...report } : report, null, 2)}\n`;
}
