import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LineScanner, NOVA_MARKERS, type ScannedLine } from '../../src/sources/logs/line-scanner.js';

function scan(chunks: readonly Buffer[], max: number, markers?: readonly string[]) {
  const lines: ScannedLine[] = [];
  const s = new LineScanner({ maxLineLength: max, onLine: (l) => lines.push(l), ...(markers ? { markers } : {}) });
  for (const c of chunks) s.push(c);
  return { lines, counts: s.counts, pending: s.pendingBytes, scanner: s };
}

/** The reference: split the whole text at newlines, as a plain loop would. */
function reference(text: Buffer, max: number, markers?: readonly string[]) {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === 10) {
      parts.push(text.subarray(start, i));
      start = i + 1;
    }
  }
  const pick = parts.filter((p) => !markers || markers.some((m) => p.subarray(0, max).includes(m)));
  return {
    lines: pick.map((p) => {
      let t = p.subarray(0, max);
      if (t.length && t[t.length - 1] === 13) t = t.subarray(0, t.length - 1);
      return { text: t.toString('utf8'), truncated: p.length > max };
    }),
    count: parts.length,
    truncated: parts.filter((p) => p.length > max).length,
    pending: text.length - start,
  };
}

describe('LineScanner', () => {
  it('hands on marker lines only, counts all, keeps the partial last line', () => {
    const text = Buffer.from(
      '2026-03-10 12:00:00.000 1 INFO a [-] Running periodic task\n' +
        '2026-03-10 12:00:01.000 1 INFO a [-] Migration operation has completed\n' +
        'garbage without stamp\n' +
        '2026-03-10 12:00:02.000 1 INFO a [-] VM Paused (Lifecycle Event)\n' +
        '2026-03-10 12:00:03.000 1 INFO a [-] Increasing downtime to 50 ms',
    );
    const r = scan([text], 1000, NOVA_MARKERS);
    expect(r.lines.map((l) => l.text.slice(37))).toEqual(['Migration operation has completed', 'VM Paused (Lifecycle Event)']);
    expect(r.counts).toEqual({ lines: 4, truncated: 0, unstamped: 1 });
    expect(r.pending).toBe(65);
    r.scanner.push(Buffer.from(' after 0 sec elapsed time\n'));
    expect(r.lines).toHaveLength(3);
    expect(r.lines[2]!.text).toContain('Increasing downtime to 50 ms after 0 sec');
    expect(r.scanner.newestHead).toMatch(/^2026-03-10 12:00:03\.000 /);
  });

  it('same lines whatever the chunking (property), with and without markers, long lines cut', () => {
    const piece = fc.constantFrom('igrat', 'ifecycle', 'owntime', '\n', '\r\n', 'x', 'abc def ', 'é', '2026-03-10 12:00:00.000 ', '\u0000', 'Migration');
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 200 }),
        fc.array(fc.nat(50), { maxLength: 20 }),
        fc.integer({ min: 1, max: 40 }),
        fc.boolean(),
        (pieces, cuts, max, useMarkers) => {
          const text = Buffer.from(pieces.join(''));
          const chunks: Buffer[] = [];
          let at = 0;
          for (const c of cuts) {
            const end = Math.min(text.length, at + c);
            chunks.push(text.subarray(at, end));
            at = end;
          }
          chunks.push(text.subarray(at));
          const markers = useMarkers ? NOVA_MARKERS : undefined;
          const got = scan(chunks, max, markers);
          const want = reference(text, max, markers);
          // Chunked reading may split a multi-byte character only where the line is cut by the limit.
          expect(got.lines.map((l) => l.truncated)).toEqual(want.lines.map((l) => l.truncated));
          expect(got.lines.filter((l) => !l.truncated).map((l) => l.text)).toEqual(want.lines.filter((l) => !l.truncated).map((l) => l.text));
          expect(got.counts.lines).toBe(want.count);
          expect(got.counts.truncated).toBe(want.truncated);
          expect(got.pending).toBe(want.pending);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('a 10 MB line in 1 MiB pieces: held to the limit, then one truncated line', () => {
    const lines: ScannedLine[] = [];
    const s = new LineScanner({ maxLineLength: 65536, onLine: (l) => lines.push(l) });
    for (let i = 0; i < 10; i++) s.push(Buffer.alloc(1 << 20, 'y'));
    expect(s.pendingBytes).toBe(10 << 20);
    s.push(Buffer.from('\nnext\n'));
    expect(lines.map((l) => [l.text.length, l.truncated])).toEqual([[65536, true], [4, false]]);
    expect(s.counts).toMatchObject({ lines: 2, truncated: 1 });
  });
});
