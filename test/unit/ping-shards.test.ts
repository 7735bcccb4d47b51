import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { planShards, sendIntervalMs, targetsPerProcess } from '../../src/sources/ping/shards.js';

describe('targetsPerProcess', () => {
  it.each([
    [100, 500, 5000, 500],
    [10, 500, 5000, 50],
    [10_000, 500, 5000, 500],
    [1000, 500, 5000, 500],
    [50, 500, 5000, 250],
    [10, 500, 1, 1],
  ])('period %i ms, at most %i targets and %i probes/s -> %i targets', (period, maxTargets, maxRate, expected) => {
    expect(targetsPerProcess(period, maxTargets, maxRate)).toBe(expected);
  });
});

describe('sendIntervalMs', () => {
  it.each([
    [100, 500, 0.1],
    [100, 1, 10],
    [10, 50, 0.1],
    [10, 5000, 0.01],
    [1000, 3, 10],
  ])('period %i ms, %i targets -> -i %f', (period, targets, expected) => {
    expect(sendIntervalMs(period, targets)).toBe(expected);
  });

  it('lets a whole round go out within the period', () => {
    fc.assert(
      fc.property(fc.integer({ min: 10, max: 10_000 }), fc.integer({ min: 1, max: 500 }), (period, targets) => {
        const interval = sendIntervalMs(period, targets);
        if (interval > 0.01) expect(interval * targets).toBeLessThanOrEqual(period);
      }),
    );
  });
});

describe('planShards', () => {
  it('fills shards up to capacity', () => {
    const plan = planShards(new Map(), ['a', 'b', 'c', 'd', 'e'], 2);
    expect([...plan.assignment]).toEqual([
      ['a', 0],
      ['b', 0],
      ['c', 1],
      ['d', 1],
      ['e', 2],
    ]);
    expect([...plan.changed].sort()).toEqual([0, 1, 2]);
  });

  it('adding a target touches only the shard it goes to', () => {
    const current = new Map([
      ['a', 0],
      ['b', 0],
      ['c', 1],
    ]);
    const plan = planShards(current, ['a', 'b', 'c', 'd'], 2);
    expect(plan.assignment.get('d')).toBe(1);
    expect([...plan.changed]).toEqual([1]);
  });

  it('removing a target touches only its shard; the freed place is reused', () => {
    const current = new Map([
      ['a', 0],
      ['b', 0],
      ['c', 1],
      ['d', 1],
    ]);
    expect([...planShards(current, ['a', 'c', 'd'], 2).changed]).toEqual([0]);
    const plan = planShards(current, ['a', 'c', 'd', 'e'], 2);
    expect(plan.assignment.get('e')).toBe(0);
    expect([...plan.changed]).toEqual([0]);
  });

  it('keeps every remaining target where it was, never overfills, changes only shards that changed', () => {
    const names = fc.uniqueArray(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz'.split('')), { maxLength: 26 });
    fc.assert(
      fc.property(names, names, fc.integer({ min: 1, max: 5 }), (before, after, capacity) => {
        const current = planShards(new Map(), before, capacity).assignment;
        const { assignment, changed } = planShards(current, after, capacity);
        expect([...assignment.keys()].sort()).toEqual([...after].sort());
        const load = new Map<number, number>();
        for (const shard of assignment.values()) load.set(shard, (load.get(shard) ?? 0) + 1);
        for (const n of load.values()) expect(n).toBeLessThanOrEqual(capacity);
        for (const [address, shard] of current) if (assignment.has(address)) expect(assignment.get(address)).toBe(shard);
        const members = (map: ReadonlyMap<string, number>, shard: number) => [...map].filter(([, s]) => s === shard).map(([a]) => a).sort();
        for (const shard of new Set([...current.values(), ...assignment.values()])) {
          if (!changed.has(shard)) expect(members(assignment, shard)).toEqual(members(current, shard));
          else expect(members(assignment, shard)).not.toEqual(members(current, shard));
        }
      }),
    );
  });
});
