import { describe, expect, it } from 'vitest';
import { DueList } from '../../src/enrichers/due-list.js';
import type { Enricher } from '../../src/enrichers/enricher.js';
import { Enrichment } from '../../src/enrichers/enrichment.js';
import type { MigrationRecord, RecordSection } from '../../src/records/record.js';
import { MigrationStore } from '../../src/records/store.js';
import { fig, recordEnded } from '../helpers/records.js';
import { FakeClock } from './tracker-scenarios.js';

const NOW = 1_800_000_000_000;

function setup() {
  const store = new MigrationStore({ maxRecords: 100, maxAgeMs: 86_400_000, clock: new FakeClock(NOW) });
  const enrichment = new Enrichment(store);
  const heard: string[] = [];
  const enricher: Enricher = {
    started: (vm) => heard.push(`started ${vm}`),
    closed: (r) => heard.push(`closed ${r.id}`),
    tick: () => heard.push('tick'),
  };
  enrichment.add(enricher);
  const closed: string[] = [];
  const patched: RecordSection[] = [];
  enrichment.on('closed', (r) => closed.push(r.id));
  enrichment.on('patched', (_r, section) => patched.push(section));
  return { store, enrichment, heard, closed, patched };
}

describe('MigrationStore.patch', () => {
  it("merges a section over what the record holds now: another enricher's section stays", () => {
    const { store } = setup();
    const r = recordEnded('vm1', NOW - 5000, NOW - 1000);
    store.add(r);
    store.patch(r.id, { nova: null });
    const merged = store.patch(r.id, { postcopyAt: fig(NOW - 3000, 'netdev inferred') });
    expect(merged).toMatchObject({ nova: null, postcopyAt: { value: NOW - 3000 } });
    expect(store.get(r.id)).toEqual(merged);
    expect(store.all()).toEqual([merged]);
    expect(store.patch('nope', { nova: null })).toBeUndefined();
  });
});

describe('Enrichment: the one path of a closed record', () => {
  it("a record from the logs alone is stored, then closed like the tracker's: listeners and enrichers hear it once", () => {
    const { store, enrichment, heard, closed } = setup();
    const fromLogs: MigrationRecord = recordEnded('vm1', NOW - 5000, NOW - 1000);
    enrichment.started('vm1', NOW - 5000);
    expect(enrichment.closeUnstored(fromLogs)).toBe(true);
    expect(enrichment.closeUnstored(fromLogs)).toBe(false);
    expect(store.get(fromLogs.id)).toEqual(fromLogs);
    expect(closed).toEqual([fromLogs.id]);
    expect(heard).toEqual(['started vm1', `closed ${fromLogs.id}`]);
    enrichment.tick();
    expect(heard.at(-1)).toBe('tick');
  });

  it('patch() tells the listeners the merged record and the section, and nothing for a record not stored', () => {
    const { store, enrichment, patched } = setup();
    const r = recordEnded('vm1', NOW - 5000, NOW - 1000);
    store.add(r);
    enrichment.patch(r.id, { interfaces: null });
    enrichment.patch('gone', { interfaces: null });
    expect(patched).toEqual([{ interfaces: null }]);
  });
});

describe('DueList', () => {
  it('hands out what is due, or ready before its time, once', () => {
    const list = new DueList<string>();
    list.add('a', 10);
    list.add('b', 20);
    list.add('c', 30);
    expect(list.take(5)).toEqual([]);
    expect(list.take(10)).toEqual(['a']);
    expect(list.take(11, (item) => item === 'c')).toEqual(['c']);
    expect(list.some((item) => item === 'b')).toBe(true);
    expect(list.remove((item) => item === 'b')).toBe('b');
    expect(list.size).toBe(0);
  });
});
