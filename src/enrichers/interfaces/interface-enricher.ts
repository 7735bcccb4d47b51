/**
 * Charges interface bytes to migrations: keeps each watched host's recent counter reads (all of
 * them while a migration runs), and once both hosts of a closed migration have a read after its
 * end, patches the record with its interface figures. Where no QMP monitor reported the
 * switch to post-copy, the switch inferred from the reverse traffic fills `postcopyAt`, and its
 * evidence says it was inferred.
 */
import type { Clock } from '../../clock.js';
import type { Figure, MigrationRecord, RecordSection } from '../../records/record.js';
import type { InterfaceSample } from '../../sources/netdev/source.js';
import { DueList } from '../due-list.js';
import type { Enricher, PatchRecord } from '../enricher.js';
import { inferPostcopyFromReverseTraffic, interfaceFigures, type CounterRead, type DirectionPoint, type HostReads } from './interface-figures.js';

export interface InterfaceEnricherOptions {
  clock: Clock;
  /** Hosts whose interfaces are read. */
  watched(host: string): boolean;
  /** Asks for a read now (so the "after" read does not wait a whole idle period). */
  readNow?(host: string): void;
  /** How long to wait for the reads after the end before giving up on a host. */
  settleMs: number;
  patch: PatchRecord;
}

/** Reads kept per host while nothing migrates; enough to find the read before a start seen late. */
const IDLE_READS = 64;
/** A migration that never ends must not grow without bound: 1 h of reads at 100 ms. */
const MAX_READS = 36_000;

export class InterfaceEnricher implements Enricher {
  private readonly reads = new Map<string, InterfaceSample[]>();
  private readonly active = new Set<string>();
  private readonly pending = new DueList<MigrationRecord>();

  constructor(private readonly options: InterfaceEnricherOptions) {}

  sample(sample: InterfaceSample): void {
    let list = this.reads.get(sample.host);
    if (!list) this.reads.set(sample.host, (list = []));
    list.push(sample);
    if (list.length > MAX_READS) list.splice(0, list.length - MAX_READS);
    else if (this.active.size === 0 && this.pending.size === 0 && list.length > IDLE_READS) list.splice(0, list.length - IDLE_READS);
  }

  started(vm: string): void {
    this.active.add(vm);
  }

  closed(record: MigrationRecord): void {
    this.active.delete(record.vm);
    const hosts = this.watchedHostsOf(record);
    if (hosts.length === 0 || !record.endedAt) return;
    for (const host of hosts) this.options.readNow?.(host);
    this.pending.add(record, this.options.clock.wallMs() + this.options.settleMs);
    this.tick();
  }

  /** Patches the records whose reads after the end are in (or whose wait is over). */
  tick(): void {
    const ready = (record: MigrationRecord) => this.watchedHostsOf(record).every((h) => this.after(h, record.endedAt?.value ?? Infinity) !== null);
    for (const record of this.pending.take(this.options.clock.wallMs(), ready)) this.options.patch(record.id, this.section(record));
  }

  private watchedHostsOf(record: MigrationRecord): string[] {
    return [record.source.host, record.destination?.host].filter((h): h is string => h !== undefined && this.options.watched(h));
  }

  private section(record: MigrationRecord): RecordSection {
    const start = record.startedAt.value;
    const end = record.endedAt?.value ?? start;
    const readsOf = (host: string | undefined): HostReads | null =>
      host !== undefined && this.options.watched(host) ? { host, before: this.before(host, start), after: this.after(host, end) } : null;
    const source = readsOf(record.source.host);
    const destination = readsOf(record.destination?.host);
    const inferred = this.inferPostcopy(record, start, end);
    const section: RecordSection = { interfaces: interfaceFigures(source, destination, inferred) };
    // Only when no monitor of the source answered: QEMU's own view always wins.
    const sourceSeen = record.statuses.some((s) => s.side === 'source');
    if (!record.postcopyAt && !sourceSeen && inferred) {
      section.postcopyAt = { value: inferred.value, evidence: `${inferred.evidence}; no QMP monitor of the source was reachable` };
    }
    return section;
  }

  private inferPostcopy(record: MigrationRecord, start: number, end: number): Figure | null {
    const list = this.reads.get(record.source.host);
    if (!list) return null;
    const points: DirectionPoint[] = list
      .filter((r) => r.wallMs >= start && r.wallMs <= end)
      .map((r) => {
        let forward = 0n;
        let reverse = 0n;
        let packets = 0n;
        for (const c of r.interfaces.values()) {
          forward += c.transmitBytes;
          reverse += c.receiveBytes;
          packets += c.receivePackets ?? 0n;
        }
        return { wallMs: r.wallMs, forwardBytes: Number(forward), reverseBytes: Number(reverse), reversePackets: Number(packets) };
      });
    const at = inferPostcopyFromReverseTraffic(points);
    if (at === null) return null;
    return {
      value: at,
      evidence: `netdev:${record.source.host} inferred from reverse traffic (the destination began sending payload, not only acknowledgements: post-copy page requests)`,
    };
  }

  private before(host: string, atMs: number): CounterRead | null {
    const list = this.reads.get(host) ?? [];
    for (let i = list.length - 1; i >= 0; i--) if ((list[i] as InterfaceSample).wallMs <= atMs) return list[i] as InterfaceSample;
    return null;
  }

  private after(host: string, atMs: number): CounterRead | null {
    const list = this.reads.get(host) ?? [];
    return list.find((r) => r.wallMs >= atMs) ?? null;
  }
}
