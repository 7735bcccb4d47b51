/**
 * Puts nova's view of a migration (nova-migrations.ts) into the records. A record the QMP tracker
 * closed for the same VM and time gets it as its `nova` section, beside QEMU's figures. A
 * migration nova logged but no monitor saw (none reachable) becomes a record of its own, from the
 * logs alone: times from the log lines, bytes from the last progress line, every figure's
 * evidence naming the log line. It waits a grace period for the tracker's record first (short
 * when no monitor of the VM is up), and longer while the tracker still has the VM's migration open.
 */
import type { Clock } from '../../clock.js';
import type { Logger } from '../../log.js';
import type { NovaMigration } from './nova-migrations.js';
import { novaRecord } from './nova-record.js';
import type { MigrationRecord, NovaFigures } from '../../records/record.js';
import type { MigrationStore } from '../../records/store.js';

export interface NovaAttributionOptions {
  clock: Clock;
  store: MigrationStore;
  logger: Logger;
  labelsOf(vm: string): Record<string, string>;
  /** Whether the QMP tracker has a migration of the VM open now. */
  isMigrating(vm: string): boolean;
  /** A record was made from the logs alone (for the migration counters and histograms). */
  onRecord(record: MigrationRecord): void;
}

/** How far apart nova's and QEMU's times of one migration may be (clocks, log vs event time). */
const MATCH_SLACK_MS = 60_000;

export class NovaAttribution {
  private pending: { migration: NovaMigration; dueAt: number; graceMs: number }[] = [];

  constructor(private readonly options: NovaAttributionOptions) {}

  /** nova's migration closed: attach it to the tracker's record, or wait for that record. */
  novaClosed(migration: NovaMigration, graceMs: number): void {
    const record = this.matchingRecord(migration.vm, migration.figures);
    if (record) {
      this.attach(record, migration.figures);
      return;
    }
    this.pending.push({ migration, dueAt: this.options.clock.monoMs() + graceMs, graceMs });
  }

  /** The tracker closed a record: nova's view of it may be waiting. */
  recordClosed(record: MigrationRecord): void {
    const at = this.pending.findIndex((p) => p.migration.vm === record.vm && overlaps(record, p.migration.figures));
    if (at < 0) return;
    const [p] = this.pending.splice(at, 1);
    if (p) this.attach(record, p.migration.figures);
  }

  /** Records from the logs alone for migrations no monitor reported in time. Call every second or so. */
  tick(): void {
    const now = this.options.clock.monoMs();
    const due = this.pending.filter((p) => p.dueAt <= now);
    if (due.length === 0) return;
    this.pending = this.pending.filter((p) => p.dueAt > now);
    for (const p of due) {
      const { vm, figures } = p.migration;
      const record = this.matchingRecord(vm, figures);
      if (record) {
        this.attach(record, figures);
      } else if (this.options.isMigrating(vm)) {
        this.pending.push({ ...p, dueAt: now + p.graceMs });
      } else {
        const made = novaRecord(vm, this.options.labelsOf(vm), figures);
        if (!made) continue;
        if (this.options.store.add(made)) {
          this.options.logger.info({ vm, id: made.id, result: made.result }, 'migration recorded from nova logs alone (no QEMU monitor reported it)');
          this.options.onRecord(made);
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
    // Re-read: other figures (ping) may have been added since the record closed.
    const current = this.options.store.get(record.id) ?? record;
    this.options.store.update({ ...current, nova });
  }
}

function overlaps(record: MigrationRecord, nova: NovaFigures): boolean {
  const start = nova.startedAt?.value ?? nova.endedAt?.value;
  const end = nova.endedAt?.value ?? start;
  if (start === undefined || end === undefined) return false;
  const recordEnd = record.endedAt?.value ?? Number.POSITIVE_INFINITY;
  return start - MATCH_SLACK_MS <= recordEnd && record.startedAt.value <= end + MATCH_SLACK_MS;
}
