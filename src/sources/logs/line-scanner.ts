/**
 * Framing for followed logs: Buffers in, lines out, without decoding every line. Newlines are
 * found with Buffer.indexOf (native memchr), and only lines holding one of the markers are decoded
 * and handed on; the rest are only counted. A line without its newline yet waits for it (kept up to
 * the length limit; the excess is dropped and the line counted as truncated). Pure: no I/O, no clock.
 */
export interface ScannedLine {
  text: string;
  /** The line was longer than the limit and `text` holds only its start. */
  truncated: boolean;
  /** The line starts with a `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS` stamp. */
  stamped: boolean;
}

export interface ScanCounts {
  lines: number;
  truncated: number;
  /** Lines that do not start with a time stamp (garbage, a layout this exporter does not know). */
  unstamped: number;
}

export interface LineScannerOptions {
  maxLineLength: number;
  /** Only lines containing one of these (within their first maxLineLength bytes) are decoded; `undefined` hands on every line. */
  markers?: readonly string[];
  onLine: (line: ScannedLine) => void;
  /** Counters to add to (several scanners of one followed path share one). */
  counts?: ScanCounts;
}

/** Substrings that every nova live-migration event line contains (see nova-parse.ts). */
export const NOVA_MARKERS: readonly string[] = ['igrat', 'ifecycle', 'owntime'];

const NL = 10;
/** Bytes kept of the newest line: enough for any stamp. */
const HEAD = 64;

export class LineScanner {
  readonly counts: ScanCounts;
  /** The first bytes of the newest complete line (for its time stamp), latin1. */
  newestHead: string | undefined;
  private readonly max: number;
  private readonly markers: readonly Buffer[] | undefined;
  private readonly onLine: (line: ScannedLine) => void;
  private pending: Buffer[] = [];
  private pendingKept = 0;
  private pendingTotal = 0;

  constructor(options: LineScannerOptions) {
    this.max = Math.max(1, options.maxLineLength);
    this.markers = options.markers?.map((m) => Buffer.from(m, 'latin1'));
    this.onLine = options.onLine;
    this.counts = options.counts ?? { lines: 0, truncated: 0, unstamped: 0 };
  }

  /** Bytes of the incomplete last line held back (they are read again after a restart). */
  get pendingBytes(): number {
    return this.pendingTotal;
  }

  push(chunk: Buffer): void {
    let pos = 0;
    if (this.pendingTotal > 0) {
      const nl = chunk.indexOf(NL);
      if (nl < 0) {
        this.hold(chunk, 0, chunk.length);
        return;
      }
      this.hold(chunk, 0, nl);
      const line = Buffer.concat(this.pending, this.pendingKept);
      const truncated = this.pendingTotal > this.max;
      this.pending = [];
      this.pendingKept = 0;
      this.pendingTotal = 0;
      this.count(line, 0, line.length, truncated);
      if (!this.markers || this.markers.some((m) => line.includes(m))) this.emit(line, 0, line.length, truncated);
      this.newestHead = line.toString('latin1', 0, Math.min(line.length, HEAD));
      pos = nl + 1;
    }
    const last = chunk.lastIndexOf(NL);
    if (last >= pos) {
      this.scan(chunk, pos, last);
      pos = last + 1;
    }
    if (pos < chunk.length) this.hold(chunk, pos, chunk.length);
  }

  /** Hands on the incomplete last line as a line (the file ended for good: deleted, truncated). */
  flush(): void {
    if (this.pendingTotal === 0) return;
    this.push(Buffer.from('\n'));
  }

  /** Forgets the incomplete last line (its file was replaced and will be read again). */
  reset(): void {
    this.pending = [];
    this.pendingKept = 0;
    this.pendingTotal = 0;
  }

  private hold(chunk: Buffer, start: number, end: number): void {
    const room = this.max - this.pendingKept;
    const take = Math.min(room, end - start);
    if (take > 0) {
      // Copy: the caller may reuse its read buffer.
      this.pending.push(Buffer.from(chunk.subarray(start, start + take)));
      this.pendingKept += take;
    }
    this.pendingTotal += end - start;
  }

  /** Complete lines in chunk[start..last], last being the index of a newline. */
  private scan(chunk: Buffer, start: number, last: number): void {
    const max = this.max;
    const counts = this.counts;
    let s = start;
    let lastStart = start;
    while (s <= last) {
      const nl = chunk.indexOf(NL, s);
      if (nl - s > max) counts.truncated++;
      if (!stampedAt(chunk, s, nl)) counts.unstamped++;
      counts.lines++;
      lastStart = s;
      s = nl + 1;
    }
    this.newestHead = chunk.toString('latin1', lastStart, Math.min(last, lastStart + HEAD));
    const markers = this.markers;
    if (!markers) {
      s = start;
      while (s <= last) {
        const nl = chunk.indexOf(NL, s);
        this.emit(chunk, s, nl, nl - s > max);
        s = nl + 1;
      }
      return;
    }
    let starts: number[] | undefined;
    for (const marker of markers) {
      let at = chunk.indexOf(marker, start);
      while (at >= 0 && at < last) {
        const lineStart = Math.max(chunk.lastIndexOf(NL, at) + 1, start);
        // Only the part of a line within the limit is read (as for a line held across chunks).
        if (at - lineStart + marker.length <= max) (starts ??= []).push(lineStart);
        const nl = chunk.indexOf(NL, at);
        at = chunk.indexOf(marker, nl + 1);
      }
    }
    if (!starts) return;
    if (starts.length > 1) starts.sort((a, b) => a - b);
    let previous = -1;
    for (const lineStart of starts) {
      if (lineStart === previous) continue;
      previous = lineStart;
      const nl = chunk.indexOf(NL, lineStart);
      this.emit(chunk, lineStart, nl, nl - lineStart > max);
    }
  }

  private count(line: Buffer, start: number, end: number, truncated: boolean): void {
    this.counts.lines++;
    if (truncated) this.counts.truncated++;
    if (!stampedAt(line, start, end)) this.counts.unstamped++;
  }

  private emit(buf: Buffer, start: number, end: number, truncated: boolean): void {
    let stop = Math.min(end, start + this.max);
    if (stop > start && buf[stop - 1] === 13) stop--;
    this.onLine({ text: buf.toString('utf8', start, stop), truncated, stamped: stampedAt(buf, start, end) });
  }
}

/** `DDDD-DD-DD[ T]DD:DD:DD` at `start` (a cheap check, no decoding). */
export function stampedAt(buf: Buffer, start: number, end: number): boolean {
  if (end - start < 19) return false;
  const d0 = buf[start]!;
  const sep = buf[start + 10];
  return (
    d0 >= 48 && d0 <= 57 &&
    buf[start + 4] === 45 && buf[start + 7] === 45 &&
    (sep === 32 || sep === 84) &&
    buf[start + 13] === 58 && buf[start + 16] === 58
  );
}
