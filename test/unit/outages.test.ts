import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  findOutages,
  OutageLog,
  outageAt,
  outageDurationMs,
  outagesWithin,
  outageTotals,
  rttStats,
  statsByWindow,
  type Probe,
} from '../../src/enrichers/ping/outages.js';

const PERIOD = 100;
const T0 = 1_795_645_800_000;

/** Probes one period apart from T0: 'o' answered (1 ms), '.' lost. */
function probes(pattern: string, rtt = (_seq: number) => 1): Probe[] {
  return [...pattern].map((c, sequence) => ({ sequence, sentWallMs: T0 + sequence * PERIOD, rttMs: c === 'o' ? rtt(sequence) : null }));
}

const at = (sequence: number) => T0 + sequence * PERIOD;

describe('findOutages', () => {
  it('finds each run of consecutive losses with its send-time bounds', () => {
    expect(findOutages(probes('oo...ooo.o'))).toEqual([
      { firstSequence: 2, lost: 3, startMs: at(2), endMs: at(5), lastLostMs: at(4), previousAnsweredMs: at(1) },
      { firstSequence: 8, lost: 1, startMs: at(8), endMs: at(9), lastLostMs: at(8), previousAnsweredMs: at(7) },
    ]);
  });

  it('an outage at the end is under way; one at the start has no answered probe before it', () => {
    const [first, last] = findOutages(probes('..oo..'));
    expect(first).toMatchObject({ startMs: at(0), endMs: at(2), previousAnsweredMs: null });
    expect(last).toMatchObject({ startMs: at(4), endMs: null, lost: 2 });
    expect(outageDurationMs(last!)).toBeNull();
    expect(outageDurationMs(last!, at(7))).toBe(300);
    expect(outageDurationMs(first!)).toBe(200);
  });

  it('nothing lost, nothing found', () => {
    expect(findOutages(probes('oooo'))).toEqual([]);
    expect(findOutages([])).toEqual([]);
  });

  it('a hole in the sequences (fping restarted) does not split an outage', () => {
    const history: Probe[] = [
      { sequence: 0, sentWallMs: at(0), rttMs: 1 },
      { sequence: 1, sentWallMs: at(1), rttMs: null },
      { sequence: 5, sentWallMs: at(30), rttMs: null },
      { sequence: 6, sentWallMs: at(31), rttMs: 1 },
    ];
    expect(findOutages(history)).toEqual([{ firstSequence: 1, lost: 2, startMs: at(1), endMs: at(31), lastLostMs: at(30), previousAnsweredMs: at(0) }]);
  });
});

describe('OutageLog', () => {
  it('returns the outage a reply ends', () => {
    const log = new OutageLog();
    const [a, b, c, d] = probes('o..o');
    expect(log.add(a!)).toBeNull();
    expect(log.add(b!)).toBeNull();
    expect(log.current).toMatchObject({ lost: 1, endMs: null });
    expect(log.add(c!)).toBeNull();
    expect(log.add(d!)).toMatchObject({ lost: 2, startMs: at(1), endMs: at(3) });
    expect(log.current).toBeNull();
  });

  it('keeps the latest outages only, plus the one under way', () => {
    const log = new OutageLog(2);
    for (const p of probes('o.o.o.o..')) log.add(p);
    expect(log.outages().map((o) => o.firstSequence)).toEqual([3, 5, 7]);
  });

  it('ignores a probe that is not after the last one', () => {
    const log = new OutageLog();
    const [a, b] = probes('o.');
    log.add(a!);
    log.add(b!);
    expect(log.add({ ...a!, rttMs: 1 })).toBeNull();
    expect(log.current).toMatchObject({ lost: 1 });
  });
});

describe('outageAt (the switch-over)', () => {
  const outages = findOutages(probes('ooo...ooo..o'));

  it.each([
    ['inside the run of losses', at(4), 3],
    ['between the last answered probe and the first lost one', at(2) + 50, 3],
    ['on the last lost probe', at(5) + 99, 3],
    ['just after the answered probe before the second outage', at(8) + 1, 9],
  ])('%s', (_what, instant, firstSequence) => {
    expect(outageAt(outages, instant)?.firstSequence).toBe(firstSequence);
  });

  it.each([
    ['on an answered probe', at(2)],
    ['on the first answered probe after it', at(6)],
    ['long after', at(20)],
  ])('none %s', (_what, instant) => {
    expect(outageAt(outages, instant)).toBeNull();
  });

  it('an outage under way spans every later instant', () => {
    expect(outageAt(findOutages(probes('oo..')), at(50))?.firstSequence).toBe(2);
  });
});

describe('outagesWithin (post-copy)', () => {
  it('returns the outages that overlap the window, one that began before it included', () => {
    const outages = findOutages(probes('o..oo.oooo..o'));
    expect(outagesWithin(outages, { startMs: at(2), endMs: at(7) }).map((o) => o.firstSequence)).toEqual([1, 5]);
    expect(outagesWithin(outages, { startMs: at(6), endMs: at(10) })).toEqual([]);
    expect(outagesWithin(outages, { startMs: at(11), endMs: at(12) }).map((o) => o.firstSequence)).toEqual([10]);
  });
});

describe('statsByWindow (loss and RTT by phase)', () => {
  it('counts each probe in the windows its send time falls in, [start, end)', () => {
    const history = probes('oo.o..oooo', (seq) => seq);
    const [before, during, after, empty] = statsByWindow(history, [
      { startMs: at(0), endMs: at(2) },
      { startMs: at(2), endMs: at(6) },
      { startMs: at(6), endMs: at(100) },
      { startMs: at(200), endMs: at(300) },
    ]);
    expect(before).toEqual({ sent: 2, lost: 0, rtt: { count: 2, minMs: 0, meanMs: 0.5, p50Ms: 0, p99Ms: 1, maxMs: 1 } });
    expect(during).toMatchObject({ sent: 4, lost: 3, rtt: { count: 1, minMs: 3, maxMs: 3 } });
    expect(after).toMatchObject({ sent: 4, lost: 0, rtt: { count: 4, minMs: 6, p50Ms: 7, maxMs: 9, meanMs: 7.5 } });
    expect(empty).toEqual({ sent: 0, lost: 0, rtt: null });
  });

  it('rttStats uses nearest-rank percentiles', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(rttStats(values)).toEqual({ count: 100, minMs: 1, meanMs: 50.5, p50Ms: 50, p99Ms: 99, maxMs: 100 });
    expect(rttStats([])).toBeNull();
  });
});

describe('outageTotals', () => {
  it('counts the ended outages: number, probes lost, total and longest length', () => {
    expect(outageTotals(findOutages(probes('o...o.oo..')))).toEqual({ count: 2, lost: 4, totalMs: 400, longestMs: 300 });
  });
});

describe('outage properties', () => {
  const pattern = fc.array(fc.boolean(), { maxLength: 300 }).map((bits) => bits.map((b) => (b ? 'o' : '.')).join(''));

  it('every lost probe is in exactly one outage, and lengths add up to lost x period', () => {
    fc.assert(
      fc.property(pattern, (p) => {
        const history = probes(p);
        const outages = findOutages(history);
        const lost = history.filter((x) => x.rttMs === null).length;
        expect(outages.reduce((n, o) => n + o.lost, 0)).toBe(lost);
        const lengths = outages.reduce((sum, o) => sum + (o.endMs ?? o.lastLostMs + PERIOD) - o.startMs, 0);
        expect(lengths / PERIOD).toBeCloseTo(lost, 9);
        for (const o of outages) {
          if (o.endMs !== null) expect(outageDurationMs(o)).toBe(o.lost * PERIOD);
        }
      }),
    );
  });

  it('outages never overlap, come in order, and at most one spans any instant', () => {
    fc.assert(
      fc.property(pattern, fc.integer({ min: -5, max: 310 }), (p, slot) => {
        const outages = findOutages(probes(p));
        for (let i = 1; i < outages.length; i++) {
          const prev = outages[i - 1]!;
          const next = outages[i]!;
          expect(prev.endMs).not.toBeNull();
          expect(prev.endMs!).toBeLessThan(next.startMs);
          expect(next.previousAnsweredMs!).toBeGreaterThanOrEqual(prev.endMs!);
        }
        const instant = T0 + slot * PERIOD + 37;
        const spanning = outages.filter((o) => outageAt([o], instant) !== null);
        expect(spanning.length).toBeLessThanOrEqual(1);
        expect(outageAt(outages, instant)).toBe(spanning[0] ?? null);
      }),
    );
  });

  it('the bounded log keeps exactly the latest outages of the unbounded analysis', () => {
    fc.assert(
      fc.property(pattern, fc.integer({ min: 1, max: 10 }), (p, max) => {
        const log = new OutageLog(max);
        for (const probe of probes(p)) log.add(probe);
        const all = findOutages(probes(p));
        const ended = all.filter((o) => o.endMs !== null);
        const ongoing = all.filter((o) => o.endMs === null);
        expect(log.outages()).toEqual([...ended.slice(-max), ...ongoing]);
      }),
    );
  });

  it('loss by window adds up when windows tile the history', () => {
    fc.assert(
      fc.property(pattern, fc.uniqueArray(fc.integer({ min: 1, max: 299 }), { maxLength: 4 }), (p, cuts) => {
        const history = probes(p);
        const edges = [0, ...[...cuts].sort((a, b) => a - b), 300].map(at);
        const windows = edges.slice(1).map((end, i) => ({ startMs: edges[i]!, endMs: end }));
        const stats = statsByWindow(history, windows);
        expect(stats.reduce((n, s) => n + s.sent, 0)).toBe(history.length);
        expect(stats.reduce((n, s) => n + s.lost, 0)).toBe(history.filter((x) => x.rttMs === null).length);
      }),
    );
  });
});
