import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CounterTotals, counterDelta, plausibleBytes } from '../../src/sources/netdev/counters.js';

const GiB = 2n ** 30n;

describe('counterDelta', () => {
  it('is the difference while the counter grows', () => {
    expect(counterDelta(100n, 250n, GiB)).toEqual({ delta: 150n, kind: 'normal' });
    expect(counterDelta(5n, 5n, GiB)).toEqual({ delta: 0n, kind: 'normal' });
  });

  it('takes a 32-bit wrap when the counter was near 2^32 and the jump is plausible', () => {
    expect(counterDelta(2n ** 32n - 100n, 50n, GiB)).toEqual({ delta: 150n, kind: 'wrap32' });
  });

  it('takes a 64-bit wrap near 2^64', () => {
    expect(counterDelta(2n ** 64n - 10n, 20n, GiB)).toEqual({ delta: 30n, kind: 'wrap64' });
  });

  it('takes a reset (device re-created) when no wrap explains the drop', () => {
    expect(counterDelta(500_000_000n, 1000n, 100n * 2n ** 20n)).toEqual({ delta: 1000n, kind: 'reset' });
    expect(counterDelta(2n ** 40n, 10n, GiB)).toEqual({ delta: 10n, kind: 'reset' });
  });

  it('never yields a negative delta nor more than current + the plausible jump', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 1n, max: 2n ** 40n }), (a, b, max) => {
        const d = counterDelta(a, b, max);
        expect(d.delta >= 0n).toBe(true);
        if (d.kind !== 'normal') expect(d.delta <= b + max).toBe(true);
      }),
    );
  });
});

describe('CounterTotals', () => {
  it('keeps a monotonic total across a reset and a wrap', () => {
    const t = new CounterTotals();
    expect(t.update('veth0', 1000n, GiB)).toBeNull();
    t.update('veth0', 3000n, GiB);
    expect(t.total('veth0')).toBe(3000n);
    expect(t.update('veth0', 200n, GiB)?.kind).toBe('reset');
    expect(t.total('veth0')).toBe(3200n);
    t.update('veth0', 2n ** 32n - 1n, 2n ** 33n);
    const wrapped = t.update('veth0', 9n, GiB);
    expect(wrapped).toEqual({ delta: 10n, kind: 'wrap32' });
    expect(t.total('veth0')).toBe(3200n + (2n ** 32n - 1n - 200n) + 10n);
  });

  it('sizes the plausible jump from the link rate and the time since the last read', () => {
    expect(plausibleBytes(1000, 8e9)).toBe(2_000_000_000n);
    expect(plausibleBytes(1, 1e6)).toBe(BigInt(1 << 20));
  });
});

describe('packets tell a reset from a wrap', () => {
  it('bytes and packets both back: a reset, even where a 32-bit wrap would be plausible', () => {
    const huge = 2n ** 40n;
    expect(counterDelta(823_000_000n, 500n, huge)).toMatchObject({ kind: 'wrap32' });
    expect(counterDelta(823_000_000n, 500n, huge, true)).toEqual({ delta: 500n, kind: 'reset' });
    expect(counterDelta(2n ** 32n - 100n, 50n, huge, false)).toEqual({ delta: 150n, kind: 'wrap32' });
  });
});
