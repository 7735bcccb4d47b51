import { describe, expect, it } from 'vitest';
import type { MigrationRecord } from '../../src/records/record.js';
import { MigrationStore } from '../../src/records/store.js';
import { FakeClock, recordEnded as record } from './tracker-scenarios.js';

const HOUR = 3_600_000;
const NOW = 1_800_000_000_000;

function store(maxRecords = 100, maxAgeMs = 24 * HOUR): { clock: FakeClock; store: MigrationStore } {
  const clock = new FakeClock(NOW);
  return { clock, store: new MigrationStore({ maxRecords, maxAgeMs, clock }) };
}

const ids = (records: MigrationRecord[]): string[] => records.map((r) => r.id);

describe('MigrationStore', () => {
  it('adds, gets by id, and refuses a second record with the same id', () => {
    const { store: s } = store();
    const r = record('vm1', NOW - 5000, NOW - 1000);
    expect(s.add(r)).toBe(true);
    expect(s.add({ ...r, result: 'failed' })).toBe(false);
    expect(s.get(r.id)?.result).toBe('completed');
    expect(s.get('nope')).toBeUndefined();
    expect(s.size).toBe(1);
  });

  it('is bounded by count: the records that ended first go', () => {
    const { store: s } = store(3);
    for (let i = 0; i < 5; i++) s.add(record('vm1', NOW - 100_000 + i * 1000, NOW - 90_000 + i * 1000));
    expect(s.size).toBe(3);
    expect(ids(s.all())).toEqual([`vm1@${NOW - 98_000}`, `vm1@${NOW - 97_000}`, `vm1@${NOW - 96_000}`]);
    expect(s.get(`vm1@${NOW - 100_000}`)).toBeUndefined();
  });

  it('is bounded by age, as the clock moves', () => {
    const { clock, store: s } = store(100, HOUR);
    s.add(record('vm1', NOW - 2 * HOUR, NOW - 2 * HOUR + 10_000));
    expect(s.size).toBe(0);
    s.add(record('vm1', NOW - 30 * 60_000, NOW - 29 * 60_000));
    s.add(record('vm2', NOW - 10 * 60_000, NOW - 9 * 60_000));
    expect(s.size).toBe(2);
    clock.advance(40 * 60_000);
    expect(ids(s.recent(10))).toEqual([`vm2@${NOW - 10 * 60_000}`]);
  });

  it('keeps records ordered by end time whatever the order they are added in', () => {
    const { store: s } = store(2);
    s.add(record('vm1', NOW - 30_000, NOW - 10_000));
    s.add(record('vm2', NOW - 60_000, NOW - 50_000));
    s.add(record('vm3', NOW - 20_000, NOW - 5_000));
    // vm2 ended first, so it is the one evicted.
    expect(ids(s.all())).toEqual([`vm1@${NOW - 30_000}`, `vm3@${NOW - 20_000}`]);
  });

  it('queries by VM and by time range (overlap of [startedAt, endedAt])', () => {
    const { store: s } = store();
    s.add(record('vm1', NOW - 60_000, NOW - 50_000));
    s.add(record('vm2', NOW - 45_000, NOW - 35_000));
    s.add(record('vm1', NOW - 30_000, NOW - 20_000));
    expect(ids(s.query({ vm: 'vm1' }))).toEqual([`vm1@${NOW - 30_000}`, `vm1@${NOW - 60_000}`]);
    expect(ids(s.query({ fromMs: NOW - 52_000, toMs: NOW - 40_000 }))).toEqual([`vm2@${NOW - 45_000}`, `vm1@${NOW - 60_000}`]);
    expect(ids(s.query({ fromMs: NOW - 34_000, toMs: NOW - 31_000 }))).toEqual([]);
    expect(ids(s.query({ vm: 'vm1', toMs: NOW - 60_000 }))).toEqual([`vm1@${NOW - 60_000}`]);
    expect(ids(s.query({ vm: 'vm2', fromMs: NOW - 20_000 }))).toEqual([]);
    expect(s.query()).toHaveLength(3);
  });

  it('recent(n): the n that ended last, newest first', () => {
    const { store: s } = store();
    for (let i = 0; i < 4; i++) s.add(record('vm1', NOW - 100_000 + i * 1000, NOW - 90_000 + i * 1000));
    expect(ids(s.recent(2))).toEqual([`vm1@${NOW - 97_000}`, `vm1@${NOW - 98_000}`]);
    expect(s.recent(0)).toEqual([]);
  });

  it('load() replaces the contents, drops duplicates and applies the bounds', () => {
    const { store: s } = store(2, HOUR);
    s.add(record('vm9', NOW - 1000, NOW - 500));
    const old = record('vm1', NOW - 3 * HOUR, NOW - 3 * HOUR + 1);
    const a = record('vm1', NOW - 50_000, NOW - 40_000);
    const b = record('vm2', NOW - 30_000, NOW - 20_000);
    const c = record('vm3', NOW - 10_000, NOW - 5_000);
    s.load([old, a, a, b, c]);
    expect(ids(s.all())).toEqual([b.id, c.id]);
  });

  it('tells listeners about additions and evictions', () => {
    const { clock, store: s } = store(100, HOUR);
    let changes = 0;
    const off = s.onChange(() => changes++);
    s.add(record('vm1', NOW - 1000, NOW - 500));
    expect(changes).toBe(1);
    clock.advance(2 * HOUR);
    expect(s.prune()).toBe(1);
    expect(changes).toBe(2);
    off();
    s.add(record('vm1', NOW, NOW + 1));
    expect(changes).toBe(2);
  });
});
