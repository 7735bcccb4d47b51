import { LivemigError } from '../../errors.js';

/**
 * Line framing for QMP output: QEMU writes one JSON object per line, CRLF-terminated
 * (qmp-spec.rst); libvirt and test servers may use plain LF. Pure: bytes in, frames out.
 */

export const DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024;
/** How much of a bad line an error keeps: enough to recognise it, never a whole blob. */
export const RAW_EXCERPT_CHARS = 200;

const LF = 0x0a;

export type LineFrame = { kind: 'line'; line: string } | { kind: 'overflow'; excerpt: string; limit: number };

/**
 * Splits a byte stream into lines (without their CR/LF). Chunks may split a line, or a UTF-8
 * character, anywhere. A line longer than `maxLineBytes` is reported once as an overflow and
 * then skipped up to its end, so one runaway line never grows memory or stops later lines.
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** True while skipping the rest of a line that crossed the limit. */
  private overflowed = false;

  constructor(private readonly maxLineBytes: number = DEFAULT_MAX_LINE_BYTES) {}

  push(chunk: Buffer | string): LineFrame[] {
    const data = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    const frames: LineFrame[] = [];
    let start = 0;
    while (start < data.length) {
      const newline = data.indexOf(LF, start);
      const end = newline === -1 ? data.length : newline;
      this.append(data.subarray(start, end), frames);
      if (newline === -1) break;
      this.endLine(frames);
      start = newline + 1;
    }
    return frames;
  }

  /** End of stream: a last line without its terminator is still a line. */
  finish(): LineFrame[] {
    const frames: LineFrame[] = [];
    if (this.pendingBytes > 0 || this.overflowed) this.endLine(frames);
    return frames;
  }

  private append(piece: Buffer, frames: LineFrame[]): void {
    if (this.overflowed) return;
    if (this.pendingBytes + piece.length <= this.maxLineBytes) {
      // Copied: the caller may reuse its chunk buffer.
      if (piece.length > 0) this.pending.push(Buffer.from(piece));
      this.pendingBytes += piece.length;
      return;
    }
    const head = Buffer.concat([...this.pending, piece], Math.min(this.pendingBytes + piece.length, RAW_EXCERPT_CHARS * 4));
    frames.push({ kind: 'overflow', excerpt: excerpt(head.toString('utf8')), limit: this.maxLineBytes });
    this.overflowed = true;
    this.clearPending();
  }

  private clearPending(): void {
    this.pending = [];
    this.pendingBytes = 0;
  }

  private endLine(frames: LineFrame[]): void {
    if (this.overflowed) {
      this.overflowed = false;
      return;
    }
    let line = Buffer.concat(this.pending).toString('utf8');
    if (line.endsWith('\r')) line = line.slice(0, -1);
    this.clearPending();
    frames.push({ kind: 'line', line });
  }
}

export type QmpFrame =
  | { kind: 'message'; message: Record<string, unknown> }
  | { kind: 'error'; error: LivemigError; raw: string };

/**
 * Frames a QMP byte stream into JSON objects. A line that is not a JSON object, or is too long,
 * becomes an LME_QMP_PROTOCOL error frame carrying (an excerpt of) the raw text; the lines after
 * it are framed as usual. Blank lines are ignored.
 */
export class QmpFramer {
  private readonly lines: LineSplitter;

  /** @param source names the monitor in error messages, e.g. "unix:/run/qemu/vm1.qmp". */
  constructor(
    private readonly source: string,
    options: { maxLineBytes?: number } = {},
  ) {
    this.lines = new LineSplitter(options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
  }

  push(chunk: Buffer | string): QmpFrame[] {
    return this.lines.push(chunk).flatMap((frame) => this.toQmpFrames(frame));
  }

  finish(): QmpFrame[] {
    return this.lines.finish().flatMap((frame) => this.toQmpFrames(frame));
  }

  private toQmpFrames(frame: LineFrame): QmpFrame[] {
    if (frame.kind === 'overflow') {
      const detail = `line longer than ${frame.limit} bytes, skipped: ${JSON.stringify(frame.excerpt)}`;
      return [{ kind: 'error', error: new LivemigError('LME_QMP_PROTOCOL', [this.source, detail]), raw: frame.excerpt }];
    }
    if (frame.line.trim() === '') return [];
    return [parseJsonObjectLine(frame.line, this.source)];
  }
}

function parseJsonObjectLine(line: string, source: string): QmpFrame {
  const raw = excerpt(line);
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    const detail = `invalid JSON (${(err as Error).message}): ${JSON.stringify(raw)}`;
    return { kind: 'error', error: new LivemigError('LME_QMP_PROTOCOL', [source, detail], { cause: err }), raw };
  }
  if (!isPlainObject(value)) {
    const detail = `expected a JSON object, got ${describeJsonType(value)}: ${JSON.stringify(raw)}`;
    return { kind: 'error', error: new LivemigError('LME_QMP_PROTOCOL', [source, detail]), raw };
  }
  return { kind: 'message', message: value };
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function describeJsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

export function excerpt(text: string, max: number = RAW_EXCERPT_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}
