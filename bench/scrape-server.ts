/**
 * The server side of bench/scrape.ts's event-loop measurement, in a CHILD process of its own so
 * that its heap holds one fleet and one way of rendering, as an exporter's would: the real
 * createApp (src/server/app.ts) on 127.0.0.1:0, rendering with the real ExporterMetrics or with
 * the plain prom-client baseline, and perf_hooks.monitorEventLoopDelay({resolution: 1}).
 *
 *   node --import tsx bench/scrape-server.ts CASE(1|2) exporter|prom-client IDLE_SECONDS
 *
 * Measures the idle event loop for IDLE_SECONDS, prints `listening URL`, and on "go" (stdin)
 * starts the measurement; on "stop" it prints the delays and its CPU time as one JSON line and
 * exits.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { createApp } from '../src/server/app.js';
import { baselineFor } from './prom-baseline.js';
import { exporterFor, SCRAPE_CASES, type Fleet } from './scrape-inputs.js';

const [caseText, variant, idleText] = process.argv.slice(2);
const scrapeCase = SCRAPE_CASES[Number(caseText) - 1];
if (!scrapeCase || (variant !== 'exporter' && variant !== 'prom-client') || !(Number(idleText) >= 0)) {
  console.error('usage: scrape-server.ts CASE(1|2) exporter|prom-client IDLE_SECONDS');
  process.exit(2);
}

interface Delays {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

function probe(): { stop(): Delays } {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  return {
    stop() {
      h.disable();
      return { p50Ms: h.percentile(50) / 1e6, p99Ms: h.percentile(99) / 1e6, maxMs: h.max / 1e6 };
    },
  };
}

async function main(fleet: Fleet, kind: 'exporter' | 'prom-client'): Promise<void> {
  const { metrics } = exporterFor(fleet);
  let render: () => Promise<string>;
  let contentType: string;
  if (kind === 'exporter') {
    render = () => metrics.render();
    contentType = metrics.contentType;
  } else {
    const { merged } = await baselineFor(metrics);
    render = () => merged.metrics();
    contentType = merged.contentType;
  }
  let served = 0;
  const app = createApp({
    telemetryPath: '/metrics',
    version: 'bench',
    logger: pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: true })),
    renderMetrics: () => {
      served++;
      return render();
    },
    metricsContentType: contentType,
    listMigrations: () => [],
    activeMigrations: () => [],
    getMigration: () => undefined,
    isReady: () => true,
    describeSources: () => [],
  });
  const server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });

  const idleProbe = probe();
  await sleep(Number(idleText) * 1000);
  const idle = idleProbe.stop();
  process.stdout.write(`listening http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics\n`);

  let running: { probe: { stop(): Delays }; cpu: NodeJS.CpuUsage; served: number } | null = null;
  const lines = createInterface({ input: process.stdin });
  const finish = (code: number) => {
    server.closeAllConnections();
    server.close(() => process.exit(code));
  };
  lines.on('line', (line) => {
    if (line === 'go' && !running) {
      running = { probe: probe(), cpu: process.cpuUsage(), served };
    } else if (line === 'stop' && running) {
      const busy = running.probe.stop();
      const cpu = process.cpuUsage(running.cpu);
      const scrapes = served - running.served;
      const cpuMs = (cpu.user + cpu.system) / 1000;
      process.stdout.write(`${JSON.stringify({ idle, busy, scrapes, cpuMs, cpuMsPerScrape: cpuMs / Math.max(1, scrapes) })}\n`);
      finish(0);
    }
  });
  // The parent went away: nothing more to measure.
  lines.on('close', () => finish(0));
}

await main(scrapeCase.fleet, variant);
