import type { MigrationRecord, RecordSection } from '../records/record.js';

/**
 * One enricher per signal the tracker does not read (ping probes, interface counters, nova's log
 * lines): it adds its section to closed records. Each hears when a VM's migration starts and when
 * its record closes, and is ticked by Enrichment's one timer; a section it has ready goes to
 * `patch`, which merges it into the stored record.
 */
export interface Enricher {
  /** A migration of the VM began (the tracker saw it, or nova's log): keep what its figures need. */
  started?(vm: string, startedAtMs: number): void;
  /** The record closed and is stored. */
  closed(record: MigrationRecord): void;
  /** Hands out the sections that are due. */
  tick(): void;
}

/** Merges a section into the stored record of that id. */
export type PatchRecord = (id: string, section: RecordSection) => void;
