/**
 * Puts nova's view of a migration (nova-migrations.ts) into the records. A record the QMP tracker
 * closed for the same VM and time gets it as its `nova` section, beside QEMU's figures. A
 * migration nova logged but no monitor saw (none reachable) becomes a record of its own, from the
 * logs alone: times from the log lines, bytes from the last progress line, every figure's
 * evidence naming the log line. That record enters by the same closed path as the tracker's. It
 * waits a grace period for the tracker's record first (short when no monitor of the VM is up), and
 * longer while the tracker still has the VM's migration open.
 */
import type { Clock } from '../../clock.js';
import type { Logger } from '../../log.js';
import type { MigrationRecord, NovaFigures, NovaMigration } from '../../records/record.js';
import type { MigrationStore } from '../../records/store.js';
import { DueList } from '../due-list.js';
import type { Enricher, PatchRecord } from '../enricher.js';
import { novaRecord } from './nova-record.js';

export interface NovaEnricherOptions {
  clock: Clock;
  /** Read only: where the tracker's record of the same migration is looked for. */
  store: MigrationStore;
  logger: Logger;
  labelsOf(vm: string): Record<string, string>;
  /** Whether the QMP tracker has a migration of the VM open now. */
  isMigrating(vm: string): boolean;
  patch: PatchRecord;
  /** The closed path, for a record made from the logs alone; false when one of that id is stored. */
  closeUnstored(record: MigrationRecord): boolean;
}

/** How far apart nova's and QEMU's times of one migration may be (clocks, log vs event time). */
const MATCH_SLACK_MS = 60_000;

export class NovaEnricher implements Enricher {
  private readonly pending = new DueList<{ migration: NovaMigration; graceMs: number }>();

  constructor(private readonly options: NovaEnricherOptions) {}

  /**
   * nova's migration closed, or a late line (another host's log is read on its own) added to it
   * since: attach it to the tracker's record, or wait for that record.
   */
  novaClosed(migration: NovaMigration, graceMs: number): void {
    // A migration already waiting is the same object: it will be attached as it is then.
    if (this.pending.some((p) => p.migration === migration)) return;
    const record = this.matchingRecord(migration.vm, migration.figures);
    if (record) {
      this.attach(record, migration.figures);
      return;
    }
    this.pending.add({ migration, graceMs }, this.options.clock.monoMs() + graceMs);
  }

  /** A record closed: nova's view of it may be waiting (a record from the logs alone has it already). */
  closed(record: MigrationRecord): void {
    if (record.nova) return;
    const p = this.pending.remove((p) => p.migration.vm === record.vm && overlaps(record, p.migration.figures));
    if (p) this.attach(record, p.migration.figures);
  }

  /** Records from the logs alone for migrations no monitor reported in time. */
  tick(): void {
    const now = this.options.clock.monoMs();
    for (const p of this.pending.take(now)) {
      const { vm, figures } = p.migration;
      const record = this.matchingRecord(vm, figures);
      if (record) {
        this.attach(record, figures);
      } else if (this.options.isMigrating(vm)) {
        this.pending.add(p, now + p.graceMs);
      } else {
        const made = novaRecord(vm, this.options.labelsOf(vm), figures);
        if (made && this.options.closeUnstored(made)) {
          this.options.logger.info({ vm, id: made.id, result: made.result }, 'migration recorded from nova logs alone (no QEMU monitor reported it)');
        }
      }
    }
  }

  private matchingRecord(vm: string, figures: NovaFigures): MigrationRecord | undefined {
    const start = figures.startedAt?.value ?? figures.endedAt?.value;
    const end = figures.endedAt?.value ?? start;
    if (start === undefined || end === undefined) return undefined;
    return this.options.store
      .query({ vm, fromMs: start - MATCH_SLACK_MS, toMs: end + MATCH_SLACK_MS })
      .find((r) => overlaps(r, figures));
  }

  private attach(record: MigrationRecord, nova: NovaFigures): void {
    // A copy: the record must not change behind the store's back when a late line comes.
    this.options.patch(record.id, { nova: structuredClone(nova) });
  }
}

function overlaps(record: MigrationRecord, nova: NovaFigures): boolean {
  const start = nova.startedAt?.value ?? nova.endedAt?.value;
  const end = nova.endedAt?.value ?? start;
  if (start === undefined || end === undefined) return false;
  const recordEnd = record.endedAt?.value ?? Number.POSITIVE_INFINITY;
  return start - MATCH_SLACK_MS <= recordEnd && record.startedAt.value <= end + MATCH_SLACK_MS;
}
