/**
 * Ties a VM's probes to its migrations: keeps each VM's recent probes (the `before` window, and
 * everything while it migrates), and once a closed migration's `after` window has passed (and
 * the probes of that window have had time to settle), patches the record with its ping figures.
 */
import type { Clock } from '../../clock.js';
import type { PingObservation } from '../../observations.js';
import type { MigrationRecord } from '../../records/record.js';
import { DueList } from '../due-list.js';
import type { Enricher, PatchRecord } from '../enricher.js';
import type { Probe } from './outages.js';
import { pingFigures, type PingFigureOptions } from './ping-figures.js';

export interface PingEnricherOptions extends PingFigureOptions {
  clock: Clock;
  /** How long after a probe's send its fate may still be unknown (timeout plus the source's grace). */
  settleMs: number;
  /** The ping target of a VM, or null when it has none. */
  targetOf(vm: string): string | null;
  patch: PatchRecord;
  /** The stored record now, with the sections patched in since it closed (frames). */
  latest?(id: string): MigrationRecord | undefined;
}

/** A VM that never stops migrating must not grow without bound: 1 h of probes at 10 ms. */
const MAX_PROBES_PER_VM = 360_000;

export class PingEnricher implements Enricher {
  private readonly probes = new Map<string, Probe[]>();
  private readonly migrating = new Set<string>();
  private readonly pending = new DueList<{ record: MigrationRecord; target: string }>();

  constructor(private readonly options: PingEnricherOptions) {}

  probe(observation: PingObservation): void {
    if (!observation.vm) return;
    let list = this.probes.get(observation.vm);
    if (!list) this.probes.set(observation.vm, (list = []));
    list.push({ sequence: observation.sequence, sentWallMs: observation.sentWallMs, rttMs: observation.rttMs });
    if (list.length > MAX_PROBES_PER_VM) list.splice(0, list.length - MAX_PROBES_PER_VM);
    // Trimming in batches keeps probe() cheap: an idle VM holds at most twice its `before` window.
    if (list.length % 256 === 0) this.trim(observation.vm, list);
  }

  started(vm: string): void {
    this.migrating.add(vm);
  }

  closed(record: MigrationRecord): void {
    this.migrating.delete(record.vm);
    const target = this.options.targetOf(record.vm);
    if (target === null || !record.endedAt) return;
    this.pending.add({ record, target }, record.endedAt.value + this.options.afterMs + this.options.settleMs);
  }

  /** Patches the records whose `after` window has passed. */
  tick(): void {
    for (const { record, target } of this.pending.take(this.options.clock.wallMs())) {
      const probes = this.probes.get(record.vm) ?? [];
      const latest = this.options.latest?.(record.id) ?? record;
      this.options.patch(record.id, { ping: pingFigures(latest, target, probes, this.options) });
    }
  }

  /** Probes held, for the tests and the benchmark. */
  held(vm: string): number {
    return this.probes.get(vm)?.length ?? 0;
  }

  private trim(vm: string, list: Probe[]): void {
    if (this.migrating.has(vm) || this.pending.some((p) => p.record.vm === vm)) return;
    const keepFrom = this.options.clock.wallMs() - this.options.beforeMs - this.options.settleMs;
    const drop = list.findIndex((p) => p.sentWallMs >= keepFrom);
    if (drop > 0) list.splice(0, drop);
    else if (drop === -1) list.length = 0;
  }
}
