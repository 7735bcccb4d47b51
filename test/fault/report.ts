/**
 * The fault suite's report: runs the kill -9 campaign on real QEMU migrations and the daemon
 * faults (QEMU, sshd, libvirtd killed mid-migration), then prints their figures. Root, QEMU and
 * nasm needed (scripts/setup installs them).
 *
 *     node --import tsx test/fault/report.ts [--kills 30] [--seed 13] [--skip-daemons]
 */
import { runDaemonFaults } from './daemon-faults.js';
import { runKill9Campaign, stopAllExporters, summarize } from './kill9-campaign.js';
import { QemuLab } from '../helpers/qemu-lab.js';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i === -1) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name}: "${process.argv[i + 1]}" is not a whole number`);
  return value;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const kills = option('kills', 30);
const seed = option('seed', 13);
const log = (line: string): void => void process.stderr.write(`${line}\n`);

const lab = new QemuLab({ memoryMiB: 128, fillMiB: 64, dirtyMiB: 32 });
await lab.init();
// Ctrl-C: the QEMUs and exporters of the trial under way go too (they would outlive this process).
process.once('SIGINT', () => {
  process.stderr.write('report: interrupted; stopping what it started\n');
  void Promise.all([stopAllExporters(), lab.cleanup()]).finally(() => process.exit(130));
});
const started = Date.now();
try {
  const trials = await runKill9Campaign(lab, { kills, seed, log });
  process.stdout.write(`# kill -9 of the exporter during real QEMU migrations (seed ${seed}, ${lab.accel})\n\n`);
  process.stdout.write(
    `${table(
      ['#', 'comes back', 'killed at', 'source then', 'down', 'records', 'result', 'mode', 'bytes', 'QEMU says', 'wrong / left out'],
      trials.map((t) => [
        String(t.index + 1),
        t.timing,
        `${(t.killAtMs / 1000).toFixed(1)} s`,
        t.statusAtKill,
        `${(t.downMs / 1000).toFixed(1)} s`,
        `${t.records}${t.open ? ` (+${t.open} open)` : ''}`,
        t.record?.result ?? '-',
        t.record?.mode ?? '-',
        String(t.record?.transferred ?? '-'),
        `${t.truth.result} ${t.truth.mode} ${t.truth.transferred}`,
        [...t.wrong.map((w) => `WRONG ${w}`), ...t.missing.map((m) => `no ${m}`), ...t.partial.map((p) => `${p} lower bound`)].join(', ') || '-',
      ]),
    )}\n\n`,
  );
  const s = summarize(trials);
  process.stdout.write(
    `kills: ${s.kills} (${Object.entries(s.byTiming).map(([k, n]) => `${k} ${n}`).join(', ')}); records: ${s.records}; ` +
      `trials without exactly one record: ${s.notOneRecord}; wrong result: ${s.wrongResult}; wrong mode: ${s.wrongMode}; wrong bytes: ${s.wrongBytes}; ` +
      `without bytes: ${s.missingBytes}; without result: ${s.missingResult}; mode unknown: ${s.missingMode}; bytes a lower bound (said so): ${s.lowerBoundBytes}\n\n`,
  );
  if (!process.argv.includes('--skip-daemons')) {
    const faults = await runDaemonFaults({ log });
    process.stdout.write('# daemons and QEMU killed mid-migration\n\n');
    process.stdout.write(
      `${table(
        ['fault', 'what', 'records', 'result', 'mode', 'record says', 'truth', 'ok'],
        faults.map((f) => [f.fault, f.what, String(f.records), f.result ?? '-', f.mode ?? '-', f.says, f.truth, f.ok ? 'yes' : 'NO']),
      )}\n\n`,
    );
  }
  process.stdout.write(`took ${((Date.now() - started) / 60_000).toFixed(1)} min\n`);
} finally {
  await lab.cleanup();
}
