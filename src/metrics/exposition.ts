/**
 * A small, fast writer of the Prometheus text format (version 0.0.4) for series computed at
 * scrape time. prom-client keeps every series in label maps and serialises them anew on each
 * scrape; for tens of thousands of per-VM series that is the scrape's cost, so these series are
 * rendered straight from the sources' state with label prefixes cached per VM.
 */
import type { MetricDef } from './catalogue.js';

export function escapeLabelValue(value: string): string {
  return /[\\"\n]/.test(value) ? value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : value;
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** `name{a="x",b="y"` without the closing brace, so more labels can follow. */
export function seriesPrefix(name: string, labels: readonly (readonly [string, string])[]): string {
  let out = `${name}{`;
  labels.forEach(([key, value], i) => {
    out += `${i === 0 ? '' : ','}${key}="${escapeLabelValue(value)}"`;
  });
  return out;
}

export class TextWriter {
  private text = '';

  /** Writes # HELP and # TYPE; call once per family, before its samples. */
  family(def: Pick<MetricDef, 'name' | 'help' | 'type'>): void {
    this.text += `# HELP ${def.name} ${escapeHelp(def.help)}\n# TYPE ${def.name} ${def.type}\n`;
  }

  /** A sample whose prefix came from seriesPrefix (the closing brace is added here). */
  sample(prefix: string, value: number): void {
    this.text += `${prefix}} ${formatValue(value)}\n`;
  }

  /** A sample with one more label after the prefix, e.g. a state set's `status`. */
  sampleWith(prefix: string, key: string, value: string, sample: number): void {
    this.text += `${prefix},${key}="${escapeLabelValue(value)}"} ${formatValue(sample)}\n`;
  }

  /** Pre-rendered lines (ending in a newline), e.g. cached state-set blocks. */
  raw(lines: string): void {
    this.text += lines;
  }

  toString(): string {
    return this.text;
  }
}
