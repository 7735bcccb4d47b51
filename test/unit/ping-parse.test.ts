import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LivemigError } from '../../src/errors.js';
import { parseFpingLine, type FpingLine } from '../../src/sources/ping/parse.js';

function fixtureLines(name: string): string[] {
  const text = readFileSync(new URL(`../fixtures/fping/${name}`, import.meta.url), 'utf8');
  return text.split('\n').slice(0, text.endsWith('\n') ? -1 : undefined);
}

function kinds(lines: readonly string[]): Record<string, number> {
  const count: Record<string, number> = {};
  for (const line of lines) {
    const { kind } = parseFpingLine(line);
    count[kind] = (count[kind] ?? 0) + 1;
  }
  return count;
}

describe('parseFpingLine on real fping 5.1 output', () => {
  it.each([
    ['replies.5.1.stdout.txt', { reply: 33 }],
    ['replies.5.1.stderr.txt', { blank: 1, summary: 3 }],
    ['blackhole-1.5s.5.1.stdout.txt', { reply: 104, timeout: 15 }],
    ['blackhole-1.5s.5.1.stderr.txt', { blank: 1, summary: 3 }],
    ['duplicate.5.1.stdout.txt', { reply: 24 }],
    ['duplicate.5.1.stderr.txt', { blank: 1, summary: 2 }],
    ['host-unreachable.5.1.stdout.txt', { reply: 24, timeout: 28 }],
    ['host-unreachable.5.1.stderr.txt', { 'icmp-error': 2, blank: 1, summary: 3 }],
    ['slow-replies.5.1.stdout.txt', { reply: 33, timeout: 27 }],
    ['unresolvable-target.5.1.stdout.txt', { reply: 3 }],
    ['unresolvable-target.5.1.stderr.txt', { 'target-error': 1, blank: 1, summary: 1 }],
    ['no-cap-as-nobody.5.1.stderr.txt', { fatal: 1 }],
    ['bad-source-address.5.1.stderr.txt', { fatal: 1 }],
    ['sequence-exhausted.5.1.stderr.txt', { fatal: 1 }],
  ])('%s: every line is understood (%o)', (fixture, expected) => {
    expect(kinds(fixtureLines(fixture))).toEqual(expected);
  });

  it.each<[string, FpingLine]>([
    [
      '[1795645799.72532] 198.18.4.1   : [0], 64 bytes, 0.048 ms (0.048 avg, 0% loss)',
      { kind: 'reply', stampMs: 1795645799725.32, address: '198.18.4.1', seq: 0, bytes: 64, rttMs: 0.048 },
    ],
    [
      '[1795645803.05043] 198.18.1.3 : [12], timed out (0.036 avg, 7% loss)',
      { kind: 'timeout', stampMs: 1795645803050.43, address: '198.18.1.3', seq: 12 },
    ],
    ['[1795645818.17510] 198.18.2.1 : [0], timed out (NaN avg, 100% loss)', { kind: 'timeout', stampMs: 1795645818175.1, address: '198.18.2.1', seq: 0 }],
    [
      'ICMP Host Unreachable from 198.18.0.2 for ICMP Echo sent to 198.18.2.1',
      { kind: 'icmp-error', message: 'Host Unreachable', from: '198.18.0.2', address: '198.18.2.1' },
    ],
    [
      'ICMP Unreachable (Communication Administratively Prohibited) from 198.18.0.2 for ICMP Echo sent to 198.18.2.2',
      { kind: 'icmp-error', message: 'Unreachable (Communication Administratively Prohibited)', from: '198.18.0.2', address: '198.18.2.2' },
    ],
    [
      '198.18.1.2 : xmt/rcv/%loss = 45/29/35%, outage(ms) = 1600, min/avg/max = 0.010/0.046/0.073',
      { kind: 'summary', address: '198.18.1.2', sent: 45, received: 29, outageMs: 1600 },
    ],
    ['198.18.2.1 : xmt/rcv/%loss = 14/0/100%, outage(ms) = 1400', { kind: 'summary', address: '198.18.2.1', sent: 14, received: 0, outageMs: 1400 }],
    ['198.18.4.100 : xmt/rcv/%loss = 1/0/100%', { kind: 'summary', address: '198.18.4.100', sent: 1, received: 0, outageMs: null }],
    ['vm-gone.invalid: Name or service not known', { kind: 'target-error', target: 'vm-gone.invalid', message: 'Name or service not known' }],
    ['fe80::1: Name or service not known', { kind: 'target-error', target: 'fe80::1', message: 'Name or service not known' }],
    [
      '/tmp/fping-without-cap/fping: can\'t create socket (must run as root?)',
      { kind: 'fatal', reason: 'permission', message: "/tmp/fping-without-cap/fping: can't create socket (must run as root?)" },
    ],
    [
      'fping: cannot bind source address : Cannot assign requested address',
      { kind: 'fatal', reason: 'source-address', message: 'fping: cannot bind source address : Cannot assign requested address' },
    ],
    ['fping: can only specify -p with -l', { kind: 'fatal', reason: 'other', message: 'fping: can only specify -p with -l' }],
    ['', { kind: 'blank' }],
  ])('%s', (line, expected) => {
    expect(parseFpingLine(line)).toEqual(expected);
  });

  it('reads the sequence-exhausted error', () => {
    const [line] = fixtureLines('sequence-exhausted.5.1.stderr.txt');
    expect(parseFpingLine(line!)).toMatchObject({ kind: 'fatal', reason: 'sequence-exhausted' });
  });

  it('reads RTTs in all three of fping\'s formats (0.054, 32.0, 119)', () => {
    const rtts = fixtureLines('slow-replies.5.1.stdout.txt').flatMap((line) => {
      const parsed = parseFpingLine(line);
      return parsed.kind === 'reply' ? [parsed.rttMs] : [];
    });
    expect(rtts).toEqual(expect.arrayContaining([2.97, 32, 60.9, 119, 148, 177]));
  });

  it('reads a duplicate reply as a second ordinary reply to the same probe', () => {
    const replies = fixtureLines('duplicate.5.1.stdout.txt')
      .map(parseFpingLine)
      .filter((l): l is Extract<FpingLine, { kind: 'reply' }> => l.kind === 'reply' && l.address === '198.18.1.4');
    expect(replies.map((r) => r.seq)).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]);
  });

  it('accepts CRLF line ends', () => {
    expect(parseFpingLine('[1795645799.72532] 198.18.4.1 : [0], 64 bytes, 0.048 ms (0.048 avg, 0% loss)\r')).toMatchObject({ kind: 'reply', seq: 0 });
  });
});

describe('parseFpingLine on anything else', () => {
  it.each([
    '[1795645799.72532] 198.18.4.1 : [0], 64 bytes, fast ms (0.048 avg, 0% loss)',
    '198.18.4.1 : [0], 64 bytes, 0.048 ms (0.048 avg, 0% loss)',
    '[1795645799.72532] 198.18.4.1 : [x], timed out (0.036 avg, 7% loss)',
    'garbage',
    '{"QMP": {}}',
  ])('%s -> an LME_PING_LINE error carrying the line', (line) => {
    const parsed = parseFpingLine(line);
    expect(parsed.kind).toBe('unknown');
    if (parsed.kind !== 'unknown') return;
    expect(parsed.raw).toBe(line);
    expect(parsed.error).toBeInstanceOf(LivemigError);
    expect(parsed.error.code).toBe('LME_PING_LINE');
    expect(parsed.error.message).toContain(line.slice(0, 20).replace(/"/g, '\\"'));
  });

  it('keeps only an excerpt of a very long line', () => {
    const parsed = parseFpingLine('x'.repeat(10_000));
    expect(parsed.kind === 'unknown' && parsed.raw.length).toBeLessThan(300);
  });

  it('one bad line leaves the lines around it intact', () => {
    const lines = fixtureLines('blackhole-1.5s.5.1.stdout.txt').slice(0, 3);
    const parsed = [lines[0]!, '[1795645800.84] ??? garbage', lines[1]!, lines[2]!].map(parseFpingLine).map((l) => l.kind);
    expect(parsed).toEqual(['reply', 'unknown', 'reply', 'reply']);
  });

  it('never throws, whatever the string', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: fc.constantFrom('[', ']', ' ', ':', '.', '1', 'x', '%', '\r') })), (line) => {
        const parsed = parseFpingLine(line);
        expect(typeof parsed.kind).toBe('string');
      }),
      { numRuns: 2000 },
    );
  });

  it('reads back any reply line fping could print', () => {
    const address = fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain());
    fc.assert(
      fc.property(
        fc.integer({ min: 1_000_000_000, max: 4_000_000_000 }),
        fc.integer({ min: 0, max: 99_999 }),
        address,
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: 0, max: 999_999 }),
        fc.nat(20),
        (seconds, tenMicros, addr, seq, rttMicros, pad) => {
          const stamp = `${seconds}.${String(tenMicros).padStart(5, '0')}`;
          const rtt = (rttMicros / 1000).toFixed(3);
          const line = `[${stamp}] ${addr}${' '.repeat(pad)} : [${seq}], 64 bytes, ${rtt} ms (0.063 avg, 4% loss)`;
          const parsed = parseFpingLine(line);
          expect(parsed).toMatchObject({ kind: 'reply', address: addr, seq, rttMs: Number(rtt) });
          expect(parsed.kind === 'reply' && parsed.stampMs).toBeCloseTo(seconds * 1000 + tenMicros / 100, 3);
        },
      ),
    );
  });
});
