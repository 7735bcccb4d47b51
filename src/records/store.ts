/**
 * Closed migration records, bounded by count and by age (the oldest go first), in memory.
 * The state file (state-file.ts, persistence.ts) keeps them across restarts; enrichers add their
 * sections through patch().
 */
import type { Clock } from '../clock.js';
import type { MigrationRecord, RecordSection } from './record.js';

export interface MigrationStoreOptions {
  maxRecords: number;
  /** Records that ended longer ago than this are dropped. */
  maxAgeMs: number;
  clock: Clock;
}

export interface RecordQuery {
  vm?: string;
  /** Wall ms: records whose [startedAt, endedAt] overlaps [fromMs, toMs]. */
  fromMs?: number;
  toMs?: number;
}

export class MigrationStore {
  /** Oldest first, by end time. */
  private records: MigrationRecord[] = [];
  private readonly byId = new Map<string, MigrationRecord>();
  private readonly listeners = new Set<() => void>();

  constructor(private readonly options: MigrationStoreOptions) {}

  get size(): number {
    this.prune();
    return this.records.length;
  }

  /** Adds a closed record; false (and nothing changes) when one with the same id is stored. */
  add(record: MigrationRecord): boolean {
    if (this.byId.has(record.id)) return false;
    this.insert(record);
    this.prune();
    this.changed();
    return true;
  }

  /**
   * Merges an enricher's section into the stored record (figures added after it closed), over
   * what the record holds now, so sections added meanwhile stay. The merged record, or undefined
   * when none of that id is stored.
   */
  patch(id: string, section: RecordSection): MigrationRecord | undefined {
    const current = this.byId.get(id);
    if (!current) return undefined;
    const next = { ...current, ...section };
    this.records[this.records.indexOf(current)] = next;
    this.byId.set(id, next);
    this.changed();
    return next;
  }

  get(id: string): MigrationRecord | undefined {
    this.prune();
    return this.byId.get(id);
  }

  /** Matching records, newest first. */
  query(query: RecordQuery = {}): MigrationRecord[] {
    this.prune();
    const from = query.fromMs ?? -Infinity;
    const to = query.toMs ?? Infinity;
    return this.records
      .filter((r) => (query.vm === undefined || r.vm === query.vm) && r.startedAt.value <= to && endOf(r) >= from)
      .reverse();
  }

  /** The `n` records that ended last, newest first. */
  recent(n: number): MigrationRecord[] {
    this.prune();
    return n <= 0 ? [] : this.records.slice(-n).reverse();
  }

  /** Every record, oldest first (what the state file keeps). */
  all(): MigrationRecord[] {
    this.prune();
    return [...this.records];
  }

  /** Replaces the contents with records from the state file; the bounds apply at once. */
  load(records: readonly MigrationRecord[]): void {
    this.records = [];
    this.byId.clear();
    for (const record of records) if (!this.byId.has(record.id)) this.insert(record);
    this.prune();
  }

  /** Drops records beyond the bounds; returns how many went. */
  prune(): number {
    const cutoff = this.options.clock.wallMs() - this.options.maxAgeMs;
    let drop = 0;
    while (drop < this.records.length && endOf(this.records[drop]!) < cutoff) drop++;
    drop = Math.max(drop, this.records.length - this.options.maxRecords);
    if (drop === 0) return 0;
    for (const record of this.records.splice(0, drop)) this.byId.delete(record.id);
    this.changed();
    return drop;
  }

  /** Called after each change; returns a function that unsubscribes. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private insert(record: MigrationRecord): void {
    const end = endOf(record);
    let at = this.records.length;
    while (at > 0 && endOf(this.records[at - 1]!) > end) at--;
    this.records.splice(at, 0, record);
    this.byId.set(record.id, record);
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}

function endOf(record: MigrationRecord): number {
  return record.endedAt?.value ?? record.startedAt.value;
}
