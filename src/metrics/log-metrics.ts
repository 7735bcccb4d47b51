/**
 * The log source's series (livemig_log_*), registered on the exporter's prom-client registry and
 * read from the source's counters at scrape time, so the source itself never touches metrics.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Clock } from '../clock.js';
import type { LogStats } from '../sources/logs/source.js';
import { METRICS } from './catalogue.js';

type Labels = Record<string, string>;

export function registerLogMetrics(registry: Registry, stats: () => readonly LogStats[], clock: Clock): void {
  const m = METRICS;
  // One snapshot per scrape, shared by the families (collect() runs once per family).
  let cached: { at: number; value: readonly LogStats[] } | null = null;
  const read = (): readonly LogStats[] => {
    const now = clock.monoMs();
    if (!cached || now - cached.at > 50) cached = { at: now, value: stats() };
    return cached.value;
  };
  const counter = (def: { name: string; help: string; labels: readonly string[] }, values: (s: LogStats) => [Labels, number][]) =>
    new Counter({
      name: def.name,
      help: def.help,
      labelNames: def.labels as string[],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of read()) for (const [labels, value] of values(s)) this.inc(labels, value);
      },
    });
  const base = (s: LogStats): Labels => ({ host: s.host, kind: s.kind });
  counter(m.logLinesRead, (s) => [[base(s), s.linesRead]]);
  counter(m.logLinesMatched, (s) => [...s.matched].map(([event, n]) => [{ ...base(s), event }, n]));
  counter(m.logLinesUnparseable, (s) => [[base(s), s.unparseable]]);
  counter(m.logLinesTruncated, (s) => [[base(s), s.truncated]]);
  counter(m.logRotations, (s) => [[base(s), s.rotations]]);
  new Gauge({
    name: m.logLag.name,
    help: m.logLag.help,
    labelNames: m.logLag.labels as string[],
    registers: [registry],
    collect() {
      this.reset();
      const now = clock.wallMs();
      for (const s of read()) if (s.newestLineMs !== null) this.set(base(s), Math.max(0, (now - s.newestLineMs) / 1000));
    },
  });
}
