/**
 * The baseline of bench/scrape.ts: the same series as the exporter's scrape-time text, held the
 * way a plain prom-client 15 exporter would hold them: one Gauge (or Counter) per family in a
 * fresh Registry, every series set with its labels ahead of the scrape. The text is parsed back
 * into families (a small parser of the 0.0.4 text format, enough for what the exporter writes).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ExporterMetrics } from '../src/metrics/exporter-metrics.js';

export interface Family {
  name: string;
  help: string;
  type: string;
  labelNames: string[];
  samples: { labels: Record<string, string>; value: number }[];
}

function unescapeHelp(text: string): string {
  return text.replace(/\\(\\|n)/g, (_m, c: string) => (c === 'n' ? '\n' : '\\'));
}

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  const value = Number(text);
  if (text === '' || Number.isNaN(value)) throw new Error(`not a sample value: ${JSON.stringify(text)}`);
  return value;
}

function parseSample(line: string): { name: string; labels: Record<string, string>; value: number } {
  const brace = line.indexOf('{');
  const space = line.indexOf(' ');
  if (brace === -1 || (space !== -1 && space < brace)) {
    return { name: line.slice(0, space), labels: {}, value: parseValue(line.slice(space + 1)) };
  }
  const name = line.slice(0, brace);
  const labels: Record<string, string> = {};
  let i = brace + 1;
  while (line[i] !== '}') {
    const eq = line.indexOf('="', i);
    if (eq === -1) throw new Error(`bad labels in: ${line}`);
    const key = line.slice(i, eq);
    let value = '';
    for (i = eq + 2; line[i] !== '"'; i++) {
      if (i >= line.length) throw new Error(`unterminated label value in: ${line}`);
      if (line[i] === '\\') {
        i++;
        value += line[i] === 'n' ? '\n' : line[i];
      } else {
        value += line[i];
      }
    }
    labels[key] = value;
    i++;
    if (line[i] === ',') i++;
  }
  return { name, labels, value: parseValue(line.slice(i + 2)) };
}

export function parseExposition(text: string): Family[] {
  const families: Family[] = [];
  const byName = new Map<string, Family>();
  const familyOf = (name: string): Family => {
    let f = byName.get(name);
    if (!f) {
      f = { name, help: '', type: 'untyped', labelNames: [], samples: [] };
      byName.set(name, f);
      families.push(f);
    }
    return f;
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) {
      const rest = line.slice(7);
      const space = rest.indexOf(' ');
      familyOf(rest.slice(0, space)).help = unescapeHelp(rest.slice(space + 1));
    } else if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ') as [string, string];
      familyOf(name).type = type;
    } else if (!line.startsWith('#')) {
      const sample = parseSample(line);
      const f = byName.get(sample.name);
      if (!f) throw new Error(`sample of a family without HELP/TYPE: ${line}`);
      for (const key of Object.keys(sample.labels)) if (!f.labelNames.includes(key)) f.labelNames.push(key);
      f.samples.push({ labels: sample.labels, value: sample.value });
    }
  }
  return families;
}

/** A fresh Registry holding every family as a plain Gauge (Counter for counters), all series set. */
export function plainRegistry(families: readonly Family[]): Registry {
  const registry = new Registry();
  for (const f of families) {
    // A family with no series (say, no monitor reports post-copy blocktime) still needs a label
    // name: prom-client serves an unlabelled metric that was never set as a 0 sample.
    if (f.labelNames.length === 0 && f.samples.length === 0) f.labelNames.push('vm');
    if (f.type === 'counter') {
      const counter = new Counter({ name: f.name, help: f.help, labelNames: f.labelNames, registers: [registry] });
      for (const s of f.samples) counter.inc(s.labels, s.value);
    } else if (f.type === 'gauge') {
      const gauge = new Gauge({ name: f.name, help: f.help, labelNames: f.labelNames, registers: [registry] });
      for (const s of f.samples) gauge.set(s.labels, s.value);
    } else if (f.type === 'histogram' && f.samples.length === 0) {
      // Ping RTT histograms: these fleets have no ping targets, so only the family's header is served.
      new Histogram({ name: f.name, help: f.help, labelNames: f.labelNames, registers: [registry] });
    } else {
      throw new Error(`family ${f.name}: type ${f.type} is not expected in the scrape-time series`);
    }
  }
  return registry;
}

/** Lines in one text and not in the other (order ignored): empty when the series are the same. */
export function lineDifference(a: string, b: string): { onlyA: string[]; onlyB: string[] } {
  const count = new Map<string, number>();
  for (const line of a.split('\n')) if (line) count.set(line, (count.get(line) ?? 0) + 1);
  for (const line of b.split('\n')) if (line) count.set(line, (count.get(line) ?? 0) - 1);
  const onlyA: string[] = [];
  const onlyB: string[] = [];
  for (const [line, n] of count) {
    if (n > 0) onlyA.push(line);
    if (n < 0) onlyB.push(line);
  }
  return { onlyA, onlyB };
}

export interface Baseline {
  /** The scrape-time families as plain Gauges, alone. */
  plain: Registry;
  /** `plain` and the exporter's own prom-client registry together: the whole /metrics. */
  merged: Registry;
  /** Lines of renderScrapeTime() missing from `plain`, and the other way round. */
  diff: { onlyA: string[]; onlyB: string[] };
}

export async function baselineFor(metrics: ExporterMetrics): Promise<Baseline> {
  const text = metrics.renderScrapeTime();
  const plain = plainRegistry(parseExposition(text));
  const diff = lineDifference(text, await plain.metrics());
  return { plain, merged: Registry.merge([metrics.registry, plain]), diff };
}
