import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseFpingLine, type FpingLine } from '../../src/sources/ping/parse.js';
import { ProbeSequencer, type ProbeResult } from '../../src/sources/ping/sequencer.js';

type ProbeLine = Extract<FpingLine, { kind: 'reply' | 'timeout' }>;

function probeLines(fixture: string, address: string): ProbeLine[] {
  const text = readFileSync(new URL(`../fixtures/fping/${fixture}`, import.meta.url), 'utf8');
  return text
    .split('\n')
    .map(parseFpingLine)
    .filter((l): l is ProbeLine => (l.kind === 'reply' || l.kind === 'timeout') && l.address === address);
}

function feed(sequencer: ProbeSequencer, line: ProbeLine) {
  return line.kind === 'reply' ? sequencer.reply(line.seq, line.stampMs, line.rttMs) : sequencer.timeout(line.seq, line.stampMs);
}

function sequencerFor(periodMs: number, timeoutMs: number, firstSendWallMs: number): ProbeSequencer {
  return new ProbeSequencer({ periodMs, timeoutMs, graceMs: 1000, firstSendWallMs });
}

const lostSeqs = (results: ProbeResult[]) => results.filter((r) => r.rttMs === null).map((r) => r.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('ProbeSequencer on a real 1.5 s blackhole (fping 5.1, -p 100 -t 1000)', () => {
  it('reply-side blackhole: holds replies back until the earlier probes time out, then releases in order', () => {
    const lines = probeLines('blackhole-1.5s.5.1.stdout.txt', '198.18.1.3');
    const first = lines[0] as Extract<ProbeLine, { kind: 'reply' }>;
    const sequencer = sequencerFor(100, 1000, first.stampMs - first.rttMs);
    const released: ProbeResult[] = [];
    const held: number[] = [];
    for (const line of lines) {
      const { outcome, released: now } = feed(sequencer, line);
      expect(outcome).toBe('new');
      if (line.kind === 'reply' && now.length === 0) held.push(line.seq);
      released.push(...now);
    }
    // fping printed the reply to 27 before the `timed out` of 17, and so on up to 36 before 26.
    expect(held).toEqual(range(27, 36));
    expect(released.map((r) => r.seq)).toEqual(range(0, 44));
    expect(lostSeqs(released)).toEqual(range(12, 26));
    // Every send time sits on the 100 ms grid of the first probe, within 3 ms.
    for (const r of released) expect(Math.abs(r.sentWallMs - (first.stampMs - first.rttMs) - r.seq * 100)).toBeLessThan(3);
  });

  it('sender-side blackhole: fping prints nothing for unsent probes; the sweep declares them lost on the grid', () => {
    const lines = probeLines('blackhole-1.5s.5.1.stdout.txt', '198.18.1.2');
    const first = lines[0] as Extract<ProbeLine, { kind: 'reply' }>;
    const grid = (seq: number) => first.stampMs - first.rttMs + seq * 100;
    const sequencer = sequencerFor(100, 1000, grid(0));
    const released: ProbeResult[] = [];
    for (const line of lines) released.push(...feed(sequencer, line).released);
    expect(released.map((r) => r.seq)).toEqual(range(0, 11));
    // Not yet: probe 12's deadline is its send + timeout + grace.
    expect(sequencer.sweep(grid(12) + 1999)).toEqual([]);
    released.push(...sequencer.sweep(grid(27) + 2010));
    expect(released.map((r) => r.seq)).toEqual(range(0, 44));
    expect(lostSeqs(released)).toEqual(range(12, 27));
    for (const r of released) expect(Math.abs(r.sentWallMs - grid(r.seq))).toBeLessThan(4);
  });
});

describe('ProbeSequencer', () => {
  it('sends time: a reply at stamp - rtt, a timeout at stamp - timeout', () => {
    const s = sequencerFor(100, 500, 0);
    expect(s.reply(0, 1000.5, 0.5).released).toEqual([{ seq: 0, sentWallMs: 1000, rttMs: 0.5 }]);
    expect(s.timeout(1, 1600).released).toEqual([{ seq: 1, sentWallMs: 1100, rttMs: null }]);
  });

  it('tells a second reply to an answered probe (fping 5.1 prints it as an ordinary reply)', () => {
    const s = sequencerFor(100, 1000, 0);
    const lines = probeLines('duplicate.5.1.stdout.txt', '198.18.1.4');
    const outcomes = lines.map((line) => feed(s, line).outcome);
    expect(outcomes).toEqual(lines.map((_, i) => (i % 2 === 0 ? 'new' : 'duplicate')));
  });

  it('ignores a line for a probe the sweep already declared lost', () => {
    const s = sequencerFor(100, 500, 0);
    expect(s.sweep(100 + 500 + 1000).map((r) => r.seq)).toEqual([0, 1]);
    expect(s.timeout(1, 600)).toEqual({ outcome: 'stale', released: [] });
    expect(s.reply(0, 10, 10)).toEqual({ outcome: 'stale', released: [] });
  });

  it('flush() hands out what was reported, in order, and leaves out probes in flight', () => {
    const s = sequencerFor(100, 1000, 0);
    s.reply(0, 1, 1);
    s.reply(2, 201, 1);
    s.reply(3, 301, 1);
    expect(s.flush().map((r) => r.seq)).toEqual([2, 3]);
    expect(s.nextSeq).toBe(4);
  });

  it('reanchor() moves the grid only while no line has placed it', () => {
    const s = sequencerFor(100, 1000, 0);
    s.reanchor(5000);
    expect(s.sendTimeOf(2)).toBe(5200);
    s.reply(0, 7001, 1);
    s.reanchor(9000);
    expect(s.sendTimeOf(2)).toBe(7200);
  });

  it('releases every probe once, in sequence order, whatever order its lines come in', () => {
    // Each probe is answered, times out, or gets no line at all; lines arrive shuffled.
    const fate = fc.constantFrom('reply', 'timeout', 'silent');
    fc.assert(
      fc.property(fc.array(fate, { minLength: 1, maxLength: 60 }), fc.infiniteStream(fc.nat()), (fates, randomness) => {
        const period = 10;
        const timeout = 50;
        const s = new ProbeSequencer({ periodMs: period, timeoutMs: timeout, graceMs: 20, firstSendWallMs: 0 });
        const lines = fates.flatMap((f, seq) =>
          f === 'reply' ? [{ seq, reply: true }] : f === 'timeout' ? [{ seq, reply: false }] : [],
        );
        const rand = randomness[Symbol.iterator]();
        const shuffled = lines
          .map((l) => ({ l, k: rand.next().value as number }))
          .sort((a, b) => a.k - b.k)
          .map(({ l }) => l);
        const released: ProbeResult[] = [];
        for (const { seq, reply } of shuffled) {
          released.push(...(reply ? s.reply(seq, seq * period + 1, 1) : s.timeout(seq, seq * period + timeout)).released);
        }
        released.push(...s.sweep((fates.length - 1) * period + timeout + 20));
        expect(released.map((r) => r.seq)).toEqual(range(0, fates.length - 1));
        expect(lostSeqs(released)).toEqual(fates.flatMap((f, seq) => (f === 'reply' ? [] : [seq])));
        for (const r of released) expect(r.sentWallMs).toBeCloseTo(r.seq * period, 6);
      }),
    );
  });
});
