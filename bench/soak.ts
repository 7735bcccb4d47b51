/**
 * The soak (issue 13): the SIMULATED lab's demo migrates its three VMs in turn, one every few
 * seconds, for two hours, watched by the exporter in a process of its own (its CLI and a config
 * file, with a state file, as it runs on a host). Every minute the exporter's resident memory
 * (/proc) and V8 heap (its own nodejs_heap_size_used_bytes) are sampled. At the end: the slope
 * of each by least squares, over the whole run and over the part after the record store reached
 * its cap (records are the one thing the exporter keeps by design), and the check that every
 * migration got exactly one record: distinct record ids per lab migration, and the exporter's
 * livemig_migrations_total against the lab's count.
 *
 *     node --import tsx bench/soak.ts [--minutes 120] [--sample-seconds 60] [--max-records 300] [--built 1]
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exporterPlan, waitForExporter } from '../src/lab/command.js';
import { labExporterConfig } from '../src/lab/exporter-config.js';
import { Orchestrator } from '../src/lab/orchestrator.js';
import { parseRate } from '../src/lab/rate.js';
import { demo } from '../src/lab/scenarios/demo.js';
import { httpRecords } from '../src/lab/scenarios/records.js';
import { SimEngine } from '../src/lab/sim/engine.js';
import { buildExporterIfAsked, fixed, flag, printHeader, spawnExporter, stopChild, table, verdict } from './common.js';

const MINUTES = flag('minutes', 120);
const SAMPLE_MS = flag('sample-seconds', 60) * 1000;
const MAX_RECORDS = flag('max-records', 300);
const MiB = 1024 * 1024;

interface Sample {
  minute: number;
  rssBytes: number;
  heapBytes: number;
  migrations: number;
  recordsTotal: number;
  stored: number;
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** Sum of a metric's samples in a /metrics text (every label set). */
function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Least-squares slope of y over x. */
function slope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return num / den;
}

async function main(): Promise<void> {
  await printHeader(`soak: SIMULATED lab demo for ${MINUTES} min, exporter RSS and heap every ${SAMPLE_MS / 1000} s, record cap ${MAX_RECORDS}`);
  buildExporterIfAsked();
  const dir = await mkdtemp(join(tmpdir(), 'livemig-soak-'));
  const bandwidth = parseRate('1gbit');
  const engine = await SimEngine.create(dir, bandwidth);
  const scenario = demo();
  const generated = labExporterConfig(exporterPlan(engine, scenario));
  const config = { ...generated.raw, state_file: join(dir, 'state.json'), records: { ...(generated.raw.records as object), max_count: MAX_RECORDS } };
  const { child, url } = await spawnExporter(dir, 'exporter', config, 'inherit');
  const pid = child.pid as number;
  const stop = new AbortController();
  let migrations = 0;
  const samples: Sample[] = [];
  const started = Date.now();
  const sample = async (): Promise<void> => {
    const text = await fetch(`${url}/metrics`).then((r) => r.text());
    const stored = ((await fetch(`${url}/api/v1/migrations?limit=1000`).then((r) => r.json())) as { data: unknown[] }).data.length;
    const s: Sample = {
      minute: (Date.now() - started) / 60_000,
      rssBytes: rssBytes(pid),
      heapBytes: metricSum(text, 'nodejs_heap_size_used_bytes'),
      migrations,
      recordsTotal: metricSum(text, 'livemig_migrations_total'),
      stored,
    };
    samples.push(s);
    process.stderr.write(`soak: ${fixed(s.minute, 1)} min: RSS ${fixed(s.rssBytes / MiB, 1)} MiB, heap ${fixed(s.heapBytes / MiB, 1)} MiB, ${s.migrations} migrations, ${s.recordsTotal} records made, ${s.stored} stored\n`);
  };
  try {
    for (let i = 0; ; i++) {
      if (await fetch(`${url}/metrics`).then((r) => r.ok, () => false)) break;
      if (i > 100) throw new Error('the exporter did not answer within 10 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const orchestrator = new Orchestrator({ engine, maxBandwidth: bandwidth, timeoutMs: 120_000 });
    const run = scenario.run({
      engine,
      orchestrator,
      records: httpRecords(url),
      novaLogs: true,
      signal: stop.signal,
      step: () => migrations++,
      waitForExporter: (vm, host) => waitForExporter(url, 'sim', vm, host, stop.signal),
    });
    await sample();
    const sampler = setInterval(() => void sample().catch((err: unknown) => process.stderr.write(`soak: sample failed: ${String(err)}\n`)), SAMPLE_MS);
    const ended = new Promise<void>((resolve) => setTimeout(resolve, MINUTES * 60_000));
    await Promise.race([ended, run.then(() => undefined)]);
    clearInterval(sampler);
    stop.abort();
    const measurements = await run;
    await new Promise((r) => setTimeout(r, 3_000)); // the last record's nova lines and the counter
    await sample();
    await orchestrator.close();

    const last = samples.at(-1) as Sample;
    const ids = new Set(measurements.map((m) => m.recordId));
    const results = new Map<string, number>();
    for (const m of measurements) results.set(`${m.result}/${m.mode}`, (results.get(`${m.result}/${m.mode}`) ?? 0) + 1);
    const capped = samples.filter((s) => s.stored >= MAX_RECORDS);
    const perHour = (pick: (s: Sample) => number, of: readonly Sample[]): number => slope(of.map((s) => [s.minute / 60, pick(s) / MiB] as const));
    const rows = samples.filter((_, i) => i % 10 === 0 || i === samples.length - 1).map((s) => [fixed(s.minute, 1), fixed(s.rssBytes / MiB, 1), fixed(s.heapBytes / MiB, 1), String(s.migrations), String(s.recordsTotal), String(s.stored)]);
    process.stdout.write(`${table(['minute', 'RSS MiB', 'heap MiB', 'migrations', 'records made', 'records stored'], rows)}\n`);
    const mean = (pick: (s: Sample) => number, of: readonly Sample[]): number => of.reduce((a, s) => a + pick(s), 0) / of.length / MiB;
    const slopes = [
      ['RSS, whole run', perHour((s) => s.rssBytes, samples), mean((s) => s.rssBytes, samples)],
      ['heap, whole run', perHour((s) => s.heapBytes, samples), mean((s) => s.heapBytes, samples)],
      ['RSS, store at its cap', perHour((s) => s.rssBytes, capped), mean((s) => s.rssBytes, capped)],
      ['heap, store at its cap', perHour((s) => s.heapBytes, capped), mean((s) => s.heapBytes, capped)],
    ] as const;
    process.stdout.write(`${table(['series', 'slope MiB/hour', 'mean MiB', 'samples'], slopes.map(([name, s, m], i) => [name, fixed(s, 3), fixed(m, 1), String(i < 2 ? samples.length : capped.length)]))}\n`);
    process.stdout.write(`migrations: ${measurements.length} in ${fixed(last.minute, 1)} min (one every ${fixed((last.minute * 60) / Math.max(1, measurements.length), 1)} s); results ${[...results].map(([k, n]) => `${k} ${n}`).join(', ')}\n`);
    process.stdout.write(`records: ${ids.size} distinct ids for ${measurements.length} migrations; livemig_migrations_total ${last.recordsTotal}\n`);
    const hours = Math.max(last.minute / 60, 1e-9);
    // No growth: over the part at the cap, the fitted growth across the run is under 5 % of the
    // mean. A falling fit passes (a leak only grows; the heap's GC sawtooth moves the fit either way).
    const flat = (s: number, m: number): boolean => capped.length >= 3 && s * hours < 0.05 * m;
    process.stdout.write(`${verdict(last.minute >= 120)} ran at least 2 hours (${fixed(last.minute, 1)} min)\n`);
    process.stdout.write(`${verdict(flat(slopes[2][1], slopes[2][2]))} RSS does not grow once the store is at its cap (${fixed(slopes[2][1], 3)} MiB/hour)\n`);
    process.stdout.write(`${verdict(flat(slopes[3][1], slopes[3][2]))} heap does not grow once the store is at its cap (${fixed(slopes[3][1], 3)} MiB/hour)\n`);
    process.stdout.write(`${verdict(ids.size === measurements.length && last.recordsTotal === measurements.length && measurements.length > 0)} every migration got exactly one record\n`);
    process.stdout.write(`${verdict(measurements.every((m) => m.result === 'completed'))} every record says completed\n`);
  } finally {
    stop.abort();
    await stopChild(child);
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
