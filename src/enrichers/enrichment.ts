/**
 * The one path of a closed record: the tracker's records and those made from nova's logs alone
 * both come through closed(), which tells the listeners (the migration metrics) and every
 * enricher; one timer ticks the enrichers; their sections are merged by store.patch.
 */
import { EventEmitter } from 'node:events';
import { every } from '../clock.js';
import type { MigrationRecord, RecordSection } from '../records/record.js';
import type { MigrationStore } from '../records/store.js';
import type { Enricher } from './enricher.js';

export interface EnrichmentEvents {
  closed: [MigrationRecord];
  patched: [record: MigrationRecord, section: RecordSection];
}

/** Often enough for the interface reads that follow an end (100 ms while migrating). */
const TICK_MS = 250;

export class Enrichment extends EventEmitter<EnrichmentEvents> {
  private readonly enrichers: Enricher[] = [];
  private stopTicking: (() => void) | null = null;

  constructor(private readonly store: MigrationStore) {
    super();
  }

  add(enricher: Enricher): void {
    this.enrichers.push(enricher);
  }

  started(vm: string, startedAtMs: number): void {
    for (const enricher of this.enrichers) enricher.started?.(vm, startedAtMs);
  }

  /** A stored record closed (the tracker stores its own). */
  closed(record: MigrationRecord): void {
    this.emit('closed', record);
    for (const enricher of this.enrichers) enricher.closed(record);
  }

  /** A record no monitor reported (from nova's logs alone): stored, then closed like the tracker's. False when already stored. */
  closeUnstored(record: MigrationRecord): boolean {
    if (!this.store.add(record)) return false;
    this.closed(record);
    return true;
  }

  readonly patch = (id: string, section: RecordSection): void => {
    const record = this.store.patch(id, section);
    if (record) this.emit('patched', record, section);
  };

  tick(): void {
    for (const enricher of this.enrichers) enricher.tick();
  }

  start(): void {
    this.stop();
    this.stopTicking = every(TICK_MS, () => this.tick());
  }

  stop(): void {
    this.stopTicking?.();
    this.stopTicking = null;
  }
}
