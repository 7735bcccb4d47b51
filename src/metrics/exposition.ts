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

/**
 * Characters of text gathered into one chunk. Appending to a string builds a rope, one node per
 * piece; whoever reads the text (res.send encoding the body) first flattens it, and for 1,000 VMs
 * (about 200,000 nodes, 3.7 MB) that took longer than rendering. Flattening each chunk while its
 * nodes are fresh and joining the flat chunks at the end costs less, and spreads the work over
 * the render, which can yield between families (bench/scrape.ts has the figures).
 */
export const CHUNK_CHARS = 64 * 1024;

export class TextWriter {
  /** The rope of the current chunk. */
  private text = '';
  private chunks: string[] = [];
  private chunkChars = 0;
  private flattened = 0;

  /** Writes # HELP and # TYPE; call once per family, before its samples. */
  family(def: Pick<MetricDef, 'name' | 'help' | 'type'>): void {
    this.append(`# HELP ${def.name} ${escapeHelp(def.help)}\n# TYPE ${def.name} ${def.type}\n`);
  }

  /** A sample whose prefix came from seriesPrefix (the closing brace is added here). */
  sample(prefix: string, value: number): void {
    this.append(`${prefix}} ${formatValue(value)}\n`);
  }

  /** A sample with one more label after the prefix, e.g. a state set's `status`. */
  sampleWith(prefix: string, key: string, value: string, sample: number): void {
    this.append(`${prefix},${key}="${escapeLabelValue(value)}"} ${formatValue(sample)}\n`);
  }

  /** Pre-rendered lines (ending in a newline), e.g. cached state-set blocks. */
  raw(lines: string): void {
    this.append(lines);
  }

  /** Characters written so far. */
  get size(): number {
    return this.chunkChars + this.text.length;
  }

  /** Everything written so far, as one flat string. */
  toString(): string {
    this.seal();
    if (this.chunks.length > 1) this.chunks = [this.chunks.join('')];
    return this.chunks[0] ?? '';
  }

  private append(piece: string): void {
    this.text += piece;
    if (this.text.length >= CHUNK_CHARS) this.seal();
  }

  private seal(): void {
    if (this.text === '') return;
    // Reading a character makes V8 flatten the rope now, while its pieces are fresh; the sum
    // keeps the read from being optimised away. Only speed depends on it, never the text.
    this.flattened += this.text.charCodeAt(0);
    this.chunks.push(this.text);
    this.chunkChars += this.text.length;
    this.text = '';
  }
}
