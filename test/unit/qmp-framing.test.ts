import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { LineSplitter, QmpFramer, type QmpFrame } from '../../src/sources/qmp/framing.js';

const GREETING =
  '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}';
const STOP = '{"timestamp": {"seconds": 1795641382, "microseconds": 705922}, "event": "STOP"}';
const RETURN = '{"return": {"status": "running", "singlestep": false, "running": true}, "id": "x"}';
const ERROR = '{"id": 5, "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}';
/** A real QEMU 7.2 output stream (greeting, reply, event, error), CRLF-terminated as QEMU sends it. */
const STREAM = [GREETING, RETURN, STOP, ERROR].map((line) => `${line}\r\n`).join('');
const EXPECTED = [GREETING, RETURN, STOP, ERROR].map((line) => JSON.parse(line) as unknown);

function feed(framer: QmpFramer, chunks: (string | Buffer)[]): QmpFrame[] {
  return [...chunks.flatMap((chunk) => framer.push(chunk)), ...framer.finish()];
}

function messages(frames: QmpFrame[]): unknown[] {
  return frames.flatMap((frame) => (frame.kind === 'message' ? [frame.message] : []));
}

function errors(frames: QmpFrame[]): Extract<QmpFrame, { kind: 'error' }>[] {
  return frames.filter((frame): frame is Extract<QmpFrame, { kind: 'error' }> => frame.kind === 'error');
}

describe('QmpFramer', () => {
  it('frames a whole stream given in one chunk', () => {
    expect(messages(feed(new QmpFramer('t'), [STREAM]))).toEqual(EXPECTED);
  });

  it('frames the same messages when the stream is split in two at every byte offset', () => {
    const bytes = Buffer.from(STREAM);
    for (let at = 0; at <= bytes.length; at++) {
      const frames = feed(new QmpFramer('t'), [bytes.subarray(0, at), bytes.subarray(at)]);
      expect(messages(frames), `split at ${at}`).toEqual(EXPECTED);
      expect(errors(frames), `split at ${at}`).toEqual([]);
    }
  });

  it('frames a stream fed one byte at a time', () => {
    const bytes = Buffer.from(STREAM);
    const chunks = [...bytes].map((byte) => Buffer.from([byte]));
    expect(messages(feed(new QmpFramer('t'), chunks))).toEqual(EXPECTED);
  });

  it.each([
    ['CRLF', '\r\n'],
    ['LF', '\n'],
  ])('accepts %s line ends', (_name, eol) => {
    expect(messages(feed(new QmpFramer('t'), [`${STOP}${eol}${RETURN}${eol}`]))).toEqual([JSON.parse(STOP), JSON.parse(RETURN)]);
  });

  it('keeps a partial last line until its end arrives', () => {
    const framer = new QmpFramer('t');
    expect(framer.push(`${STOP}\r\n${RETURN.slice(0, 10)}`)).toHaveLength(1);
    expect(framer.push(RETURN.slice(10))).toEqual([]);
    expect(messages(framer.push('\r\n'))).toEqual([JSON.parse(RETURN)]);
  });

  it('frames an unterminated last line at the end of the stream', () => {
    expect(messages(feed(new QmpFramer('t'), [`${STOP}\r\n${RETURN}`]))).toEqual([JSON.parse(STOP), JSON.parse(RETURN)]);
  });

  it('ignores blank lines', () => {
    expect(messages(feed(new QmpFramer('t'), [`\r\n\n  \r\n${STOP}\r\n\r\n`]))).toEqual([JSON.parse(STOP)]);
  });

  it('reports a garbage line with its text and frames the lines after it', () => {
    const frames = feed(new QmpFramer('unix:/run/vm1.qmp'), [`${STOP}\r\nqemu-system-x86_64: oops\r\n${RETURN}\r\n`]);
    expect(messages(frames)).toEqual([JSON.parse(STOP), JSON.parse(RETURN)]);
    const [bad] = errors(frames);
    expect(bad?.raw).toBe('qemu-system-x86_64: oops');
    expect(bad?.error.code).toBe('LME_QMP_PROTOCOL');
    expect(bad?.error.message).toContain('unix:/run/vm1.qmp');
    expect(bad?.error.message).toContain('qemu-system-x86_64: oops');
  });

  it.each([
    ['an array', '[1,2]'],
    ['a number', '42'],
    ['null', 'null'],
    ['a string', '"return"'],
  ])('reports JSON that is %s as not QMP', (kind, line) => {
    const frames = feed(new QmpFramer('t'), [`${line}\n${STOP}\n`]);
    expect(errors(frames)[0]?.error.message).toContain(`expected a JSON object, got ${kind}`);
    expect(messages(frames)).toEqual([JSON.parse(STOP)]);
  });

  it('reports an overlong line once, truncated, and frames the next line', () => {
    const long = `{"return": "${'x'.repeat(5000)}"}`;
    const framer = new QmpFramer('t', { maxLineBytes: 1024 });
    const chunks = [long.slice(0, 700), long.slice(700, 3000), `${long.slice(3000)}\r\n${STOP}\r\n`];
    const frames = feed(framer, chunks);
    expect(messages(frames)).toEqual([JSON.parse(STOP)]);
    const overflow = errors(frames);
    expect(overflow).toHaveLength(1);
    expect(overflow[0]?.error.message).toContain('longer than 1024 bytes');
    expect(overflow[0]?.raw.length).toBeLessThanOrEqual(201);
    expect(overflow[0]?.raw.startsWith('{"return": "xxx')).toBe(true);
  });

  it('accepts a line of exactly the maximum length', () => {
    const line = `{"return": "${'x'.repeat(100)}"}`;
    const frames = feed(new QmpFramer('t', { maxLineBytes: line.length }), [`${line}\n`]);
    expect(messages(frames)).toEqual([JSON.parse(line)]);
  });

  it('decodes a UTF-8 character split between chunks', () => {
    const bytes = Buffer.from('{"return": "héllo"}\n');
    const at = bytes.indexOf(0xc3) + 1;
    expect(messages(feed(new QmpFramer('t'), [bytes.subarray(0, at), bytes.subarray(at)]))).toEqual([{ return: 'héllo' }]);
  });
});

describe('LineSplitter', () => {
  it('splits lines and strips CR', () => {
    const splitter = new LineSplitter();
    expect(splitter.push('a\r\nb\nc')).toEqual([
      { kind: 'line', line: 'a' },
      { kind: 'line', line: 'b' },
    ]);
    expect(splitter.finish()).toEqual([{ kind: 'line', line: 'c' }]);
  });
});

describe('QmpFramer property', () => {
  it('yields the same messages for any chunking of a valid stream', () => {
    const message = fc.oneof(
      fc.record({ return: fc.jsonValue(), id: fc.nat() }),
      fc.record({ event: fc.string(), timestamp: fc.record({ seconds: fc.nat(), microseconds: fc.nat(999_999) }) }),
    );
    fc.assert(
      fc.property(
        fc.array(message, { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.constantFrom('\r\n', '\n'),
        (sent, cutPoints, eol) => {
          const bytes = Buffer.from(sent.map((m) => `${JSON.stringify(m)}${eol}`).join(''));
          const cuts = [...new Set(cutPoints.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          const chunks = [0, ...cuts].map((start, i) => bytes.subarray(start, cuts[i] ?? bytes.length));
          const frames = feed(new QmpFramer('t'), chunks);
          expect(errors(frames)).toEqual([]);
          expect(messages(frames)).toEqual(sent.map((m) => JSON.parse(JSON.stringify(m)) as unknown));
        },
      ),
    );
  });
});
