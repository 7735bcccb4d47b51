/**
 * /metrics scrape time and event-loop lag while scraping (targets: median render ≤ 20 ms for
 * 1,000 VMs' worth of series; event-loop lag p99 < 20 ms while scraping).
 *
 * Two fleets, built as synthetic MetricsInputs in the shapes the real sources produce
 * (bench/scrape-inputs.ts), served by the real ExporterMetrics (closed records also go through
 * recordClosed(), so the histograms are populated):
 *   (i)  100 tracked VMs, each migrating (post-copy) with one monitor, and 1,000 closed records;
 *   (ii) 1,000 VMs, one monitor each with the full QEMU 7.2 post-copy reply.
 * Baseline, in the same run: the SAME series held as plain prom-client 15 Gauges (Counter for
 * the one counter family) in a fresh Registry, scraped with registry.metrics() (bench/prom-baseline.ts);
 * for the full /metrics comparison that registry is merged with the exporter's own prom-client
 * registry (histograms, counters, process metrics), so both sides serve identical text.
 * Event-loop lag: the real server (src/server/app.ts createApp) on 127.0.0.1:0, scraped back to
 * back from a child process (bench/scrape-client.ts) while perf_hooks.monitorEventLoopDelay
 * ({resolution: 1}) samples this process.
 *
 *   node --import tsx bench/scrape.ts [--scrapes 100] [--warmup 10] [--lag-seconds 5] [--case 1|2]
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { systemClock } from '../src/clock.js';
import { ExporterMetrics } from '../src/metrics/exporter-metrics.js';
import { createApp } from '../src/server/app.js';
import { fixed, flag, LineReader, printHeader, ratio, spawnTsx, stopChild, summary, table, verdict } from './common.js';
import { lineDifference, parseExposition, plainRegistry } from './prom-baseline.js';
import { syntheticInputs, type Fleet } from './scrape-inputs.js';

const SCRAPES = Math.max(50, flag('scrapes', 100));
const WARMUP = flag('warmup', 10);
const LAG_SECONDS = flag('lag-seconds', 5);
/** 1 or 2 runs that case only; 0 runs both. */
const ONLY_CASE = flag('case', 0);
const IDLE_LAG_SECONDS = 2;
const TTL_MS = 3_600_000;
const TARGET_MEDIAN_MS = 20;
const TARGET_LAG_P99_MS = 20;

interface Case {
  key: string;
  title: string;
  fleet: Fleet;
  /** The render-time target applies to this case. */
  renderTarget: boolean;
}

const CASES: Case[] = [
  {
    key: '(i)',
    title: '100 tracked VMs (each migrating, post-copy, one monitor with the full 7.2 reply), 1,000 closed records',
    fleet: { vms: 100, hosts: 20, migrating: 100, records: 1000 },
    renderTarget: false,
  },
  {
    key: '(ii)',
    title: "1,000 VMs' worth of series: one monitor per VM with the full 7.2 postcopy-active reply",
    fleet: { vms: 1000, hosts: 50, migrating: 0, records: 0 },
    renderTarget: true,
  },
];

const logger = pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: true }));

interface Lag {
  scrapes: number;
  failures: number;
  clientMedianMs: number;
  clientP99Ms: number;
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
  cpuMsPerScrape: number;
}

async function timeIt(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

function listen(render: () => Promise<string>, contentType: string): Promise<Server> {
  const app = createApp({
    telemetryPath: '/metrics',
    version: 'bench',
    logger,
    renderMetrics: render,
    metricsContentType: contentType,
    listMigrations: () => [],
    activeMigrations: () => [],
    getMigration: () => undefined,
    isReady: () => true,
    describeSources: () => [],
  });
  const server = createServer(app);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function eventLoopDelay(): { stop(): { p50: number; p99: number; max: number } } {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  return {
    stop() {
      h.disable();
      return { p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6 };
    },
  };
}

async function idleLag(): Promise<{ p50: number; p99: number; max: number }> {
  const probe = eventLoopDelay();
  await sleep(IDLE_LAG_SECONDS * 1000);
  return probe.stop();
}

async function lagWhileScraping(render: () => Promise<string>, contentType: string): Promise<Lag> {
  const server = await listen(render, contentType);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  const child = spawnTsx('scrape-client.ts', [url, String(LAG_SECONDS * 1000)]);
  const reader = new LineReader(child, 'scrape client');
  try {
    const ready = await reader.next(20_000);
    if (ready !== 'ready') throw new Error(`scrape client said ${JSON.stringify(ready)}`);
    const probe = eventLoopDelay();
    const cpu0 = process.cpuUsage();
    child.stdin?.write('go\n');
    const report = JSON.parse(await reader.next(LAG_SECONDS * 1000 + 60_000)) as {
      scrapes: number;
      failures: number;
      medianMs: number;
      p99Ms: number;
    };
    const cpu = process.cpuUsage(cpu0);
    const lag = probe.stop();
    return {
      scrapes: report.scrapes,
      failures: report.failures,
      clientMedianMs: report.medianMs,
      clientP99Ms: report.p99Ms,
      lagP50Ms: lag.p50,
      lagP99Ms: lag.p99,
      lagMaxMs: lag.max,
      cpuMsPerScrape: (cpu.user + cpu.system) / 1000 / Math.max(1, report.scrapes),
    };
  } finally {
    await stopChild(child);
    await close(server);
  }
}

function countLines(text: string): { lines: number; samples: number; families: number; bytes: number } {
  let lines = 0;
  let samples = 0;
  let families = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    lines++;
    if (line.startsWith('# TYPE ')) families++;
    else if (!line.startsWith('#')) samples++;
  }
  return { lines, samples, families, bytes: Buffer.byteLength(text) };
}

async function runCase(c: Case, idle: { p50: number; p99: number; max: number }): Promise<string[]> {
  const now = Date.now();
  const inputs = syntheticInputs(c.fleet, now, TTL_MS);
  const metrics = new ExporterMetrics(inputs, systemClock, TTL_MS);
  for (const record of inputs.closed) metrics.recordClosed(record);

  const scrapeTimeText = metrics.renderScrapeTime();
  const plain = plainRegistry(parseExposition(scrapeTimeText));
  const plainText = await plain.metrics();
  const diff = lineDifference(scrapeTimeText, plainText);
  const merged = Registry.merge([metrics.registry, plain]);
  const full = await metrics.render();
  const fullStats = countLines(full);
  const partStats = countLines(scrapeTimeText);

  const sides = {
    render: () => metrics.render(),
    merged: () => merged.metrics(),
    // What the HTTP path adds: express's res.send turns the string into a Buffer (flattening it).
    renderHttp: async () => Buffer.from(await metrics.render(), 'utf8'),
    mergedHttp: async () => Buffer.from(await merged.metrics(), 'utf8'),
    scrapeTime: () => metrics.renderScrapeTime(),
    plain: () => plain.metrics(),
  };
  const times: Record<keyof typeof sides, number[]> = { render: [], merged: [], renderHttp: [], mergedHttp: [], scrapeTime: [], plain: [] };
  // One side at a time, so each pays for its own garbage collection and not the other's.
  for (const key of Object.keys(sides) as (keyof typeof sides)[]) {
    for (let i = 0; i < WARMUP + SCRAPES; i++) {
      const ms = await timeIt(sides[key]);
      if (i >= WARMUP) times[key].push(ms);
    }
  }
  const s = {
    render: summary(times.render),
    merged: summary(times.merged),
    renderHttp: summary(times.renderHttp),
    mergedHttp: summary(times.mergedHttp),
    scrapeTime: summary(times.scrapeTime),
    plain: summary(times.plain),
  };

  console.log(`## ${c.key} ${c.title}`);
  console.log(
    `/metrics: ${fullStats.lines.toLocaleString('en')} lines (${fullStats.samples.toLocaleString('en')} samples, ${fullStats.families} families), ` +
      `${(fullStats.bytes / 1e6).toFixed(2)} MB; scrape-time part: ${partStats.lines.toLocaleString('en')} lines, ${partStats.samples.toLocaleString('en')} samples`,
  );
  console.log(
    `baseline holds the same series: ${diff.onlyA.length + diff.onlyB.length === 0 ? 'yes, line for line' : `NO: ${diff.onlyA.length} lines only in render, ${diff.onlyB.length} only in baseline, e.g. ${JSON.stringify(diff.onlyA[0] ?? diff.onlyB[0])}`}`,
  );
  const row = (label: string, x: ReturnType<typeof summary>, base: ReturnType<typeof summary>) => [
    label,
    fixed(x.median),
    fixed(x.p90),
    fixed(x.p99),
    fixed(x.max),
    ratio(x.median, base.median),
  ];
  console.log(
    table(
      ['scrape (ms, ' + SCRAPES + ' scrapes)', 'median', 'p90', 'p99', 'max', 'vs baseline'],
      [
        row('full /metrics: ExporterMetrics.render()', s.render, s.merged),
        row('full /metrics: plain prom-client (baseline)', s.merged, s.merged),
        row('full /metrics + Buffer.from: ExporterMetrics', s.renderHttp, s.mergedHttp),
        row('full /metrics + Buffer.from: plain prom-client', s.mergedHttp, s.mergedHttp),
        row('per-VM part: renderScrapeTime()', s.scrapeTime, s.plain),
        row('per-VM part: plain Gauges registry.metrics() (baseline)', s.plain, s.plain),
      ],
    ),
  );
  console.log('');

  const lagExporter = await lagWhileScraping(() => metrics.render(), metrics.contentType);
  const lagBaseline = await lagWhileScraping(() => merged.metrics(), merged.contentType);
  const lagRow = (label: string, l: Lag) => [
    label,
    String(l.scrapes),
    fixed(l.clientMedianMs),
    fixed(l.clientP99Ms),
    fixed(l.cpuMsPerScrape),
    fixed(l.lagP50Ms),
    fixed(l.lagP99Ms),
    fixed(l.lagMaxMs),
  ];
  console.log(`event loop over HTTP: createApp on 127.0.0.1, back-to-back GET /metrics from a child process for ${LAG_SECONDS} s`);
  console.log('(monitorEventLoopDelay, resolution 1 ms: figures include the 1 ms timer period; see the idle row)');
  console.log(
    table(
      ['server renders with', 'scrapes', 'client median ms', 'client p99 ms', 'server CPU ms/scrape', 'lag p50 ms', 'lag p99 ms', 'lag max ms'],
      [
        ['(idle, no scrapes, ' + IDLE_LAG_SECONDS + ' s)', '0', '-', '-', '-', fixed(idle.p50), fixed(idle.p99), fixed(idle.max)],
        lagRow('ExporterMetrics.render()', lagExporter),
        lagRow('plain prom-client (baseline)', lagBaseline),
      ],
    ),
  );
  if (lagExporter.failures + lagBaseline.failures > 0) console.log(`HTTP failures: ${lagExporter.failures} exporter, ${lagBaseline.failures} baseline`);
  console.log('');

  const verdicts: string[] = [];
  if (c.renderTarget) {
    verdicts.push(
      `${verdict(s.render.median <= TARGET_MEDIAN_MS)}  ${c.key} render() median ${fixed(s.render.median)} ms for ${fullStats.lines.toLocaleString('en')} lines ` +
        `(target ≤ ${TARGET_MEDIAN_MS} ms; plain prom-client 15 here: ${fixed(s.merged.median)} ms)`,
    );
  }
  verdicts.push(`${verdict(lagExporter.lagP99Ms < TARGET_LAG_P99_MS)}  ${c.key} event-loop lag p99 ${fixed(lagExporter.lagP99Ms)} ms while scraping (target < ${TARGET_LAG_P99_MS} ms)`);
  return verdicts;
}

async function main(): Promise<void> {
  printHeader('/metrics scrape: render time and event-loop lag');
  const idle = await idleLag();
  const verdicts: string[] = [];
  for (const [i, c] of CASES.entries()) {
    if (ONLY_CASE === 0 || ONLY_CASE === i + 1) verdicts.push(...(await runCase(c, idle)));
  }
  console.log('targets:');
  for (const line of verdicts) console.log(`  ${line}`);
}

await main();
