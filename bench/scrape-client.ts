/**
 * The scraper of bench/scrape.ts, in a CHILD process so its work does not load the exporter's
 * event loop: GETs the URL back to back (one keep-alive connection, each request after the
 * previous body is read) for DURATION_MS, then prints what it saw as one JSON line.
 *
 *   node --import tsx bench/scrape-client.ts URL DURATION_MS
 *
 * Prints "ready", waits for "go" on stdin, scrapes, prints the JSON report and exits.
 */
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';

const [url, durationText] = process.argv.slice(2);
const durationMs = Number(durationText);
if (!url || !(durationMs > 0)) {
  console.error('usage: scrape-client.ts URL DURATION_MS');
  process.exit(2);
}

async function scrape(target: string): Promise<void> {
  const latencies: number[] = [];
  let bytes = 0;
  let failures = 0;
  const end = performance.now() + durationMs;
  while (performance.now() < end) {
    const t0 = performance.now();
    const res = await fetch(target);
    const body = await res.text();
    latencies.push(performance.now() - t0);
    if (res.status !== 200) failures++;
    bytes = body.length;
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)] ?? NaN;
  process.stdout.write(`${JSON.stringify({ scrapes: latencies.length, failures, bodyChars: bytes, medianMs: at(0.5), p99Ms: at(0.99), maxMs: at(1) })}\n`);
}

let started = false;
const lines = createInterface({ input: process.stdin });
// The parent went away before saying go: nothing to do.
lines.on('close', () => {
  if (!started) process.exit(0);
});
lines.on('line', (line) => {
  if (line.trim() !== 'go' || started) return;
  started = true;
  scrape(url).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
});
process.stdout.write('ready\n');
