import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { Backoff, backoffCeilingMs, fullJitterDelayMs } from '../../src/backoff.js';

describe('backoffCeilingMs', () => {
  it.each([
    [0, 100],
    [1, 200],
    [2, 400],
    [5, 3200],
    [6, 5000],
    [60, 5000],
    [5000, 5000],
  ])('attempt %i -> %i ms with base 100, cap 5000', (attempt, ceiling) => {
    expect(backoffCeilingMs(attempt, 100, 5000)).toBe(ceiling);
  });
});

describe('fullJitterDelayMs', () => {
  it('spans [0, ceiling) as random spans [0, 1)', () => {
    expect(fullJitterDelayMs(3, { baseMs: 100, capMs: 5000, random: () => 0 })).toBe(0);
    expect(fullJitterDelayMs(3, { baseMs: 100, capMs: 5000, random: () => 0.5 })).toBe(400);
    expect(fullJitterDelayMs(3, { baseMs: 100, capMs: 5000, random: () => 0.999999 })).toBe(799);
  });

  it('never exceeds the cap nor goes below zero', () => {
    fc.assert(
      fc.property(fc.nat(10_000), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
        const delay = fullJitterDelayMs(attempt, { baseMs: 250, capMs: 30_000, random: () => r });
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThan(30_000);
      }),
    );
  });
});

describe('Backoff', () => {
  it('doubles the ceiling per attempt up to the cap and starts again after reset', () => {
    const backoff = new Backoff({ baseMs: 100, capMs: 1000, random: () => 0.5 });
    const delays = Array.from({ length: 6 }, () => backoff.nextDelayMs());
    expect(delays).toEqual([50, 100, 200, 400, 500, 500]);
    expect(backoff.attempts).toBe(6);
    backoff.reset();
    expect(backoff.attempts).toBe(0);
    expect(backoff.nextDelayMs()).toBe(50);
  });

  it('uses Math.random when no random is given', () => {
    const delay = new Backoff({ baseMs: 100, capMs: 1000 }).nextDelayMs();
    expect(delay).toBeGreaterThanOrEqual(0);
    expect(delay).toBeLessThan(100);
  });

  it.each([
    [{ baseMs: 0, capMs: 10 }],
    [{ baseMs: 100, capMs: 10 }],
    [{ baseMs: Number.NaN, capMs: 10 }],
  ])('refuses %o', (options) => {
    expect(() => new Backoff(options)).toThrow(RangeError);
  });
});
