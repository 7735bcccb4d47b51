/**
 * logfmt for --log.format logfmt: each JSON line pino writes becomes `time=… level=… msg=…`
 * followed by the other fields in their order; nested objects are flattened with dots
 * (`err.message=…`), arrays written as JSON. Pure: a line in, a line out.
 */

const FIRST = ['time', 'level', 'msg'];

export function toLogfmt(jsonLine: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return `msg=${quote(jsonLine.trimEnd())}`;
  }
  const pairs: string[] = [];
  for (const key of FIRST) if (key in entry) pairs.push(...field(key, entry[key]));
  for (const [key, value] of Object.entries(entry)) if (!FIRST.includes(key)) pairs.push(...field(key, value));
  return pairs.join(' ');
}

function field(key: string, value: unknown): string[] {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => field(`${key}.${k}`, v));
  }
  const text = typeof value === 'string' ? value : value === undefined ? '' : JSON.stringify(value);
  return [`${key.replace(/[\s="]/g, '_')}=${quote(text)}`];
}

/** Bare when it can be (printable, no space, `=`, `"` or backslash), else a JSON string (quotes, backslashes, newlines escaped). */
function quote(text: string): string {
  return text.length > 0 && /^[!#-<>-[\]-~\u0080-\uffff]+$/.test(text) ? text : JSON.stringify(text);
}

/** A destination for pino that writes logfmt lines to `target`. */
export function logfmtStream(target: NodeJS.WritableStream & { flush?: (cb?: (err?: Error) => void) => void }): { write(chunk: string): boolean; flush(cb?: (err?: Error) => void): void } {
  return {
    write(chunk: string): boolean {
      let ok = true;
      for (const line of chunk.split('\n')) if (line) ok = target.write(`${toLogfmt(line)}\n`) && ok;
      return ok;
    },
    flush(cb?: (err?: Error) => void): void {
      if (target.flush) target.flush(cb);
      else cb?.();
    },
  };
}
