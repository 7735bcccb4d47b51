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
 * the one counter family) in a fresh Registry, scraped with registry.metrics()
 * (bench/prom-baseline.ts). For the whole /metrics that registry is merged with the exporter's
 * own prom-client registry (histograms, counters, process metrics): both sides serve the same text.
 *
 * Render times are measured here, one side at a time (each pays for its own garbage). Event-loop
 * lag is measured in a server child process (bench/scrape-server.ts: the real createApp, one
 * fleet, one renderer), which this process scrapes back to back for --lag-seconds.
 *
 *   node --import tsx bench/scrape.ts [--scrapes 100] [--warmup 10] [--lag-seconds 5] [--case 1|2]
 */
import { Agent, get } from 'node:http';
import { performance } from 'node:perf_hooks';
import { fixed, flag, LineReader, loadText, machineCpu, otherShare, printHeader, ratio, spawnTsx, stopChild, summary, table, verdict } from './common.js';
import { baselineFor } from './prom-baseline.js';
import { exporterFor, SCRAPE_CASES, type ScrapeCase } from './scrape-inputs.js';

const SCRAPES = Math.max(50, flag('scrapes', 100));
const WARMUP = flag('warmup', 10);
const LAG_SECONDS = flag('lag-seconds', 5);
/** 1 or 2 runs that case only; 0 runs both. */
const ONLY_CASE = flag('case', 0);
const IDLE_LAG_SECONDS = 2;
const TARGET_MEDIAN_MS = 20;
const TARGET_LAG_P99_MS = 20;

type Summary = ReturnType<typeof summary>;

interface Delays {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

interface LagRun {
  idle: Delays;
  busy: Delays;
  scrapes: number;
  failures: number;
  cpuMsPerScrape: number;
  client: Summary;
  /** Share of all cores other processes used meanwhile (not the server, not this scraper). */
  otherPercent: number | null;
}

async function timeIt(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/**
 * One GET; the body is counted and dropped, not decoded, so this process (the scraper, standing
 * in for a Prometheus on another machine) takes as little CPU as it can from the 2 cores.
 */
function scrapeOnce(url: string, agent: Agent): Promise<boolean> {
  return new Promise((resolve, reject) => {
    get(url, { agent }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => resolve(res.statusCode === 200 && bytes > 0));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** Starts a server child for the case and renderer, scrapes it back to back, returns its figures. */
async function lagWhileScraping(caseNumber: number, variant: 'exporter' | 'prom-client'): Promise<LagRun> {
  const child = spawnTsx('scrape-server.ts', [String(caseNumber), variant, String(IDLE_LAG_SECONDS)]);
  const reader = new LineReader(child, `scrape server (${variant})`);
  const latencies: number[] = [];
  let failures = 0;
  let machine0: ReturnType<typeof machineCpu> = null;
  let own0 = process.cpuUsage();
  try {
    const listening = await reader.next(120_000);
    const url = /^listening (\S+)$/.exec(listening)?.[1];
    if (!url) throw new Error(`scrape server said ${JSON.stringify(listening)}`);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      await scrapeOnce(url, agent); // one scrape before measuring: connection and code warm
      child.stdin?.write('go\n');
      machine0 = machineCpu();
      own0 = process.cpuUsage();
      const end = performance.now() + LAG_SECONDS * 1000;
      while (performance.now() < end) {
        const t0 = performance.now();
        if (!(await scrapeOnce(url, agent))) failures++;
        latencies.push(performance.now() - t0);
      }
    } finally {
      agent.destroy();
    }
    child.stdin?.write('stop\n');
    const report = JSON.parse(await reader.next(30_000)) as { idle: Delays; busy: Delays; scrapes: number; cpuMs: number; cpuMsPerScrape: number };
    const own = process.cpuUsage(own0);
    const other = otherShare(machine0, machineCpu(), report.cpuMs + (own.user + own.system) / 1000);
    return { ...report, failures, client: summary(latencies), otherPercent: other };
  } finally {
    await stopChild(child);
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

async function runCase(c: ScrapeCase, caseNumber: number): Promise<string[]> {
  const { metrics } = exporterFor(c.fleet);
  const { plain, merged, diff } = await baselineFor(metrics);
  const fullStats = countLines(await metrics.render());
  const partStats = countLines(metrics.renderScrapeTime());

  const sides = {
    render: () => metrics.render(),
    merged: () => merged.metrics(),
    // What the HTTP path adds: express's res.send encodes the string into a Buffer.
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
  const s = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, summary(v)])) as Record<keyof typeof sides, Summary>;

  console.log(`## ${c.key} ${c.title}`);
  console.log(
    `/metrics: ${fullStats.lines.toLocaleString('en')} lines (${fullStats.samples.toLocaleString('en')} samples, ${fullStats.families} families), ` +
      `${(fullStats.bytes / 1e6).toFixed(2)} MB; scrape-time part: ${partStats.lines.toLocaleString('en')} lines, ${partStats.samples.toLocaleString('en')} samples`,
  );
  const same = diff.onlyA.length + diff.onlyB.length === 0;
  console.log(
    `baseline holds the same series: ${same ? 'yes, line for line' : `NO: ${diff.onlyA.length} lines only in render, ${diff.onlyB.length} only in baseline, e.g. ${JSON.stringify(diff.onlyA[0] ?? diff.onlyB[0])}`}`,
  );
  const row = (label: string, x: Summary, base: Summary) => [label, fixed(x.median), fixed(x.p90), fixed(x.p99), fixed(x.max), ratio(x.median, base.median)];
  console.log(
    table(
      [`scrape, ms (${SCRAPES} scrapes)`, 'median', 'p90', 'p99', 'max', 'vs baseline'],
      [
        row('/metrics: ExporterMetrics.render()', s.render, s.merged),
        row('/metrics: plain prom-client 15 (baseline)', s.merged, s.merged),
        row('/metrics + Buffer.from: ExporterMetrics', s.renderHttp, s.mergedHttp),
        row('/metrics + Buffer.from: plain prom-client', s.mergedHttp, s.mergedHttp),
        row('per-VM part: renderScrapeTime()', s.scrapeTime, s.plain),
        row('per-VM part: plain Gauges (baseline)', s.plain, s.plain),
      ],
    ),
  );
  console.log('');

  const lagExporter = await lagWhileScraping(caseNumber, 'exporter');
  const lagBaseline = await lagWhileScraping(caseNumber, 'prom-client');
  const lagRow = (label: string, l: LagRun) => [
    label,
    String(l.scrapes),
    fixed(l.client.median),
    fixed(l.client.p99),
    fixed(l.cpuMsPerScrape),
    fixed(l.busy.p50Ms),
    fixed(l.busy.p99Ms),
    fixed(l.busy.maxMs),
    l.otherPercent === null ? '-' : `${fixed(l.otherPercent, 0)}%`,
  ];
  console.log(`event loop of a server process (createApp on 127.0.0.1) while this process GETs /metrics back to back for ${LAG_SECONDS} s`);
  console.log('(monitorEventLoopDelay, resolution 1 ms: delays include the 1 ms timer period, see the idle row;');
  console.log(" 'other procs': share of all cores used meanwhile by processes other than the server and this scraper)");
  console.log(
    table(
      ['server renders with', 'scrapes', 'client median ms', 'client p99 ms', 'server CPU ms/scrape', 'lag p50 ms', 'lag p99 ms', 'lag max ms', 'other procs'],
      [
        [`(idle, no scrapes, ${IDLE_LAG_SECONDS} s)`, '0', '-', '-', '-', fixed(lagExporter.idle.p50Ms), fixed(lagExporter.idle.p99Ms), fixed(lagExporter.idle.maxMs), '-'],
        lagRow('ExporterMetrics.render()', lagExporter),
        lagRow('plain prom-client 15 (baseline)', lagBaseline),
      ],
    ),
  );
  if (lagExporter.failures + lagBaseline.failures > 0) console.log(`HTTP failures: ${lagExporter.failures} exporter, ${lagBaseline.failures} baseline`);
  console.log('');

  const verdicts: string[] = [];
  if (c.renderTarget) {
    verdicts.push(
      `${verdict(s.render.median <= TARGET_MEDIAN_MS)}  ${c.key} render() median ${fixed(s.render.median)} ms for ${fullStats.lines.toLocaleString('en')} lines ` +
        `(target ≤ ${TARGET_MEDIAN_MS} ms; plain prom-client 15 on the same series here: ${fixed(s.merged.median)} ms)`,
    );
  }
  verdicts.push(
    `${verdict(lagExporter.busy.p99Ms < TARGET_LAG_P99_MS)}  ${c.key} event-loop lag p99 ${fixed(lagExporter.busy.p99Ms)} ms while scraping ` +
      `(target < ${TARGET_LAG_P99_MS} ms; plain prom-client 15: ${fixed(lagBaseline.busy.p99Ms)} ms)` +
      ((lagExporter.otherPercent ?? 0) > 10 ? `; other processes used ${fixed(lagExporter.otherPercent ?? 0, 0)}% of the cores meanwhile` : ''),
  );
  return verdicts;
}

async function main(): Promise<void> {
  await printHeader('/metrics scrape: render time and event-loop lag');
  const verdicts: string[] = [];
  for (const [i, c] of SCRAPE_CASES.entries()) {
    if (ONLY_CASE === 0 || ONLY_CASE === i + 1) verdicts.push(...(await runCase(c, i + 1)));
  }
  console.log(`load average at end: ${loadText()}`);
  console.log('targets:');
  for (const line of verdicts) console.log(`  ${line}`);
}

await main();
