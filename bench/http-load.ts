/**
 * The exporter's HTTP server under load (issue 13, "HTTP"): 50 concurrent scrapers of /metrics
 * for 60 s (latency p50/p99, errors, the exporter's RSS before and after), then slowloris
 * clients up to the connection cap and beyond while one normal scraper goes on, which must keep
 * being answered. The exporter runs as a user runs it (its CLI, a config file), with no VMs, so
 * the figures are the server's own; the baseline is one scraper alone, in the same run.
 *
 *     node --import tsx bench/http-load.ts [--scrapers 50] [--seconds 60] [--cap 512] [--slow 1024] [--built 1]
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
import { buildExporterIfAsked, fixed, flag, printHeader, ratio, spawnExporter, stopChild, summary, table, verdict } from './common.js';

const SCRAPERS = flag('scrapers', 50);
const SECONDS = flag('seconds', 60);
const CAP = flag('cap', 512);
const SLOW = flag('slow', 1024);

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN) / 1024;
}

/** One GET of /metrics on a keep-alive agent; its latency in ms, or null for an error. */
function scrape(url: string, agent: Agent): Promise<number | null> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request(`${url}/metrics`, { agent, timeout: 10_000 }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode === 200 ? performance.now() - started : null));
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(null));
    req.end();
  });
}

/** `n` scrapers, each scraping again as soon as its previous scrape is answered, for `seconds`. */
async function load(url: string, n: number, seconds: number): Promise<{ latencies: number[]; errors: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: n });
  const latencies: number[] = [];
  let errors = 0;
  const until = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (Date.now() < until) {
        const ms = await scrape(url, agent);
        if (ms === null) errors++;
        else latencies.push(ms);
      }
    }),
  );
  agent.destroy();
  return { latencies, errors };
}

function halfOpen(url: string): Promise<Socket | null> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
      resolve(socket);
    });
    socket.on('error', () => resolve(null));
  });
}

console.log(`bench process ${process.pid}`);
await printHeader(`http-load: ${SCRAPERS} concurrent scrapers for ${SECONDS} s, then ${SLOW} slowloris clients against a cap of ${CAP}`);
buildExporterIfAsked();
const dir = await mkdtemp(join(tmpdir(), 'lme-bench-http-'));
const { child: exporter, url } = await spawnExporter(dir, 'http', { state_file: null, libvirt: { discover: 'off' } }, 'inherit', ['--web.max-connections', String(CAP)]);
try {
  for (const deadline = Date.now() + 30_000; ; ) {
    if ((await fetch(`${url}/-/ready`).then((r) => r.ok, () => false)) === true) break;
    if (Date.now() > deadline) throw new Error('exporter not ready within 30 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  const pid = exporter.pid as number;
  const rssBefore = rssMb(pid);
  const alone = await load(url, 1, Math.min(10, SECONDS));
  const many = await load(url, SCRAPERS, SECONDS);
  const rssAfter = rssMb(pid);
  const a = summary(alone.latencies);
  const m = summary(many.latencies);
  console.log(
    table(
      ['case', 'scrapes', 'errors', 'p50 ms', 'p99 ms', 'max ms', 'scrapes/s'],
      [
        ['baseline: 1 scraper', String(a.n), String(alone.errors), fixed(a.median), fixed(a.p99), fixed(a.max), fixed(a.n / Math.min(10, SECONDS), 1)],
        [`${SCRAPERS} scrapers`, String(m.n), String(many.errors), fixed(m.median), fixed(m.p99), fixed(m.max), fixed(m.n / SECONDS, 1)],
      ],
    ),
  );
  console.log(`p50 ${SCRAPERS} scrapers vs one: ${ratio(m.median, a.median)}; RSS ${fixed(rssBefore, 1)} MiB before, ${fixed(rssAfter, 1)} MiB after`);

  // Slowloris: more half-open clients than the cap, one normal scraper beside them.
  const slow: Socket[] = [];
  let closedByServer = 0;
  for (let i = 0; i < SLOW; i++) {
    const s = await halfOpen(url);
    if (!s) continue;
    s.on('close', () => closedByServer++);
    slow.push(s);
  }
  const during = await load(url, 1, 10);
  const d = summary(during.latencies);
  for (const s of slow) s.destroy();
  console.log(`slowloris: ${slow.length} half-open connections opened against a cap of ${CAP}; the server closed ${closedByServer} of them while a scraper ran 10 s: ${d.n} scrapes, ${during.errors} errors, p50 ${fixed(d.median)} ms, p99 ${fixed(d.p99)} ms`);
  console.log(`${verdict(many.errors === 0)}  no scrape failed under ${SCRAPERS} concurrent scrapers (${many.errors} errors)`);
  console.log(`${verdict(during.errors === 0 && d.n > 0)}  /metrics answered with the connection cap reached (${d.n} answered, ${during.errors} failed)`);
  console.log(`${verdict(rssAfter < rssBefore * 1.5 + 20)}  RSS after the load within 1.5 x + 20 MiB of before (${fixed(rssBefore, 1)} -> ${fixed(rssAfter, 1)} MiB)`);
} finally {
  await stopChild(exporter, 5_000);
  await rm(dir, { recursive: true, force: true });
}
