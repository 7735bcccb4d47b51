/**
 * How often the exporter names the cause the lab injected (issue 15): `lab --scenario
 * outage-causes --engine qemu --count N` (N runs of each cause, one VM after the other), then per
 * run the cause the exporter named (namedCause: its longest post-copy outage, else its stalled
 * ones, else its blackout), the confusion table, a PASS/FAIL line per cause against 90 % right,
 * and one outage record of each named cause, as the exporter's /api/v1/migrations gave it.
 * Needs root, QEMU and tcpdump (the lab's own prerequisites). About 35 s a run: ~12 min at N=5.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { confusionTable, injectedCauseOf, namedCause, OUTAGE_CAUSE_KINDS, outageCauses, tallyCauses } from '../src/lab/scenarios/outage-causes.js';
import type { LabMeasurement } from '../src/lab/report/results.js';
import type { MigrationRecord } from '../src/records/record.js';
import { flag, printHeader, ROOT, verdict } from './common.js';

const COUNT = flag('count', 5);
const PORT = flag('port', 10_227);
const TARGET_RIGHT = 0.9;

await printHeader(`outage causes: ${COUNT} run(s) of each of ${OUTAGE_CAUSE_KINDS.join(', ')} (lab, engine qemu)`);
const out = await mkdtemp(join(tmpdir(), 'lme-bench-causes-'));
try {
  const url = `http://127.0.0.1:${PORT}`;
  const records = await runLab(url, out);
  const report = JSON.parse(await readFile(join(out, (await readdir(out)).find((f) => f.endsWith('.json')) as string), 'utf8')) as { measurements: LabMeasurement[] };
  const specs = outageCauses(COUNT).vms;
  const runs = report.measurements.map((m) => {
    const spec = specs.find((s) => s.name === m.vm);
    if (!spec) throw new Error(`the report names a VM the scenario does not have: ${m.vm}`);
    return { injected: injectedCauseOf(spec), named: namedCause(m), m };
  });
  for (const r of runs) {
    const outages = (r.m.postcopyOutageCauses ?? []).map((o) => `${o.seconds.toFixed(1)} s ${o.cause}`).join(', ') || 'none';
    console.log(`${r.m.vm.padEnd(9)} injected ${r.injected.padEnd(22)} named ${r.named.padEnd(22)} blackout ${(r.m.blackoutSeconds ?? 0).toFixed(1)} s ${r.m.blackoutCause ?? '-'}; post-copy outages ${outages}`);
  }
  const tallies = tallyCauses(runs);
  console.log('');
  console.log(confusionTable(tallies));
  console.log('');
  for (const t of tallies) console.log(`${verdict(t.runs > 0 && t.right / t.runs >= TARGET_RIGHT)} ${t.injected}: ${t.right}/${t.runs} named right (target at least ${TARGET_RIGHT * 100} %)`);
  console.log('');
  console.log('One outage of each named cause, as the exporter recorded it:');
  const quoted = new Set<string>();
  for (const record of records) {
    for (const o of [record.ping?.switchoverBlackout, ...(record.ping?.postcopyOutages ?? [])]) {
      const cause = o?.cause?.cause;
      if (!o || !cause || quoted.has(cause)) continue;
      quoted.add(cause);
      console.log(`- ${record.vm} (${record.labels.injected_cause} injected), ${o === record.ping?.switchoverBlackout ? 'switch-over blackout' : 'post-copy outage'}:`);
      console.log(JSON.stringify({ outage: o, frames: record.frames, postcopyBlocktimeMs: record.qemu.postcopyBlocktimeMs }, null, 1).replace(/^/gm, '    '));
    }
  }
} finally {
  await rm(out, { recursive: true, force: true });
}

/** Runs the lab until it lingers, reads every record from its exporter, then ends it with Ctrl-C. */
function runLab(url: string, outDir: string): Promise<MigrationRecord[]> {
  const args = ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'lab', '--scenario', 'outage-causes', '--engine', 'qemu', '--count', String(COUNT), '--linger', '300', '--out', outDir, '--web.listen-address', url.replace('http://', '')];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let records: MigrationRecord[] | null = null;
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (records === null && stderr.includes('keeps serving')) {
        records = [];
        void fetch(`${url}/api/v1/migrations?limit=1000`)
          .then((r) => r.json() as Promise<{ data: MigrationRecord[] }>)
          .then((body) => (records = body.data.reverse()))
          .catch((err: unknown) => reject(err instanceof Error ? err : new Error(String(err))))
          .finally(() => child.kill('SIGINT'));
      }
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`the lab exited with ${code}: ${stderr.slice(-2000)}`));
      else if (records === null) reject(new Error(`the lab ended without lingering: ${stderr.slice(-2000)}`));
      else resolve(records);
    });
  });
}
