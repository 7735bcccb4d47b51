/**
 * The exporter's /metrics: prom-client for what is recorded as it happens (histograms, counters,
 * process metrics), and scrape-time rendering for the per-VM series read from the sources and
 * the tracker (see exposition.ts for why).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Clock } from '../clock.js';
import type { MigrationRecord, OutageFigure } from '../records/record.js';
import { MIGRATION_MODES, OUTAGE_CAUSES } from '../records/record.js';
import type { MonitorState } from '../sources/qmp/source.js';
import { REVISION, VERSION } from '../version.js';
import type { SourceErrorReason } from '../errors.js';
import { METRICS, RAM_METRICS } from './catalogue.js';
import { PingMetrics, type PingTargetView } from './ping-metrics.js';
import { escapeLabelValue, seriesPrefix, TextWriter } from './exposition.js';
import { MIGRATION_PHASES, MIGRATION_RESULTS, MIGRATION_STATUSES } from '../qemu/status.js';

export interface ActiveMigrationView {
  vm: string;
  phase: string;
  sourceHost: string;
  destinationHost: string | null;
  startedAtMs: number;
  /** Current ping outage (s) while the VM is in post-copy; undefined otherwise or without ping. */
  postcopyOutageSeconds?: number;
  /** Provisional cause of that outage (the frame watcher), while it lasts. */
  postcopyOutageCause?: string;
}

export interface VmView {
  name: string;
  flavor: string;
  labels: Record<string, string>;
}

export interface SourceHealth {
  source: string;
  host: string;
  up: boolean;
}

export interface MetricsInputs {
  monitors(): Iterable<MonitorState>;
  health(): Iterable<SourceHealth>;
  activeMigrations(): Iterable<ActiveMigrationView>;
  /** Closed records, any order; the newest per VM within the TTL is served as "last". */
  records(): Iterable<MigrationRecord>;
  recordCount(): number;
  vms(): Iterable<VmView>;
  /** Ping targets tied to VMs, as the ping source counts them now. */
  pingTargets?(): Iterable<PingTargetView>;
}

/**
 * render() yields to the event loop each time it has written about this much: 1,000 VMs are
 * about 4 MB of text, and rendered in one go they would hold up timers and other requests.
 */
const YIELD_BYTES = 256 * 1024;

/** Per-monitor label prefixes, computed once per (vm, host) and reused every scrape. */
interface MonitorPrefixes {
  base: string;
  statusLines: Map<string, string>;
}

export class ExporterMetrics {
  readonly registry = new Registry();
  private readonly migrationsTotal: Counter<'result' | 'mode'>;
  private readonly duration: Histogram<'result' | 'mode' | 'flavor'>;
  private readonly transferred: Histogram<'result' | 'mode' | 'flavor'>;
  private readonly qemuDowntime: Histogram<'result' | 'mode' | 'flavor'>;
  private readonly blackout: Histogram<'result' | 'mode' | 'flavor'>;
  private readonly postcopyOutage: Histogram<'result' | 'mode' | 'flavor'>;
  private readonly postcopyOutageCauses: Counter<'cause'>;
  private readonly blackoutCauses: Counter<'cause'>;
  private readonly sourceErrors: Counter<'source' | 'host' | 'reason'>;
  private readonly seriesRefused: Counter<'kind'>;
  private readonly stateFileWrites: Counter<'result'>;
  private prefixes = new Map<string, MonitorPrefixes>();
  private readonly ping = new PingMetrics();

  constructor(
    private readonly inputs: MetricsInputs,
    private readonly clock: Clock,
    private readonly lastMigrationTtlMs: number,
  ) {
    const r = this.registry;
    const m = METRICS;
    this.migrationsTotal = new Counter({ ...spec(m.migrationsTotal), registers: [r] });
    // Every series exists from the start, so rate() and increase() count the first migration too.
    for (const result of MIGRATION_RESULTS) for (const mode of MIGRATION_MODES) this.migrationsTotal.inc({ result, mode }, 0);
    this.duration = new Histogram({ ...spec(m.migrationDuration), buckets: [...m.migrationDuration.buckets], registers: [r] });
    this.transferred = new Histogram({ ...spec(m.migrationTransferred), buckets: [...m.migrationTransferred.buckets], registers: [r] });
    this.qemuDowntime = new Histogram({ ...spec(m.migrationQemuDowntime), buckets: [...m.migrationQemuDowntime.buckets], registers: [r] });
    this.blackout = new Histogram({ ...spec(m.migrationBlackout), buckets: [...m.migrationBlackout.buckets], registers: [r] });
    this.postcopyOutage = new Histogram({ ...spec(m.migrationPostcopyOutage), buckets: [...m.migrationPostcopyOutage.buckets], registers: [r] });
    this.postcopyOutageCauses = new Counter({ ...spec(m.postcopyOutagesByCause), registers: [r] });
    this.blackoutCauses = new Counter({ ...spec(m.switchoverBlackoutsByCause), registers: [r] });
    for (const cause of OUTAGE_CAUSES) {
      if (cause !== 'switch-over') this.postcopyOutageCauses.inc({ cause }, 0);
      this.blackoutCauses.inc({ cause }, 0);
    }
    this.sourceErrors = new Counter({ ...spec(m.sourceErrors), registers: [r] });
    this.seriesRefused = new Counter({ ...spec(m.seriesRefused), registers: [r] });
    for (const kind of ['vm', 'interface']) this.seriesRefused.inc({ kind }, 0);
    this.stateFileWrites = new Counter({ ...spec(m.stateFileWrites), registers: [r] });
    for (const result of ['ok', 'error']) this.stateFileWrites.inc({ result }, 0);
    const build = new Gauge({ ...spec(m.buildInfo), registers: [r] });
    build.set({ version: VERSION, revision: REVISION, nodejs: process.version }, 1);
    new Gauge({
      ...spec(m.records),
      registers: [r],
      collect() {
        this.set(inputs.recordCount());
      },
    });
    collectDefaultMetrics({ register: r });
  }

  /** livemig_lab_info: the exporter runs in the lab, on this engine (simulated: engine sim). */
  labInfo(lab: { engine: string; simulated: boolean }): void {
    const gauge = new Gauge({ ...spec(METRICS.labInfo), registers: [this.registry] });
    gauge.set({ engine: lab.engine, simulated: String(lab.simulated) }, 1);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** A closed record got its ping figures (ping.after after its end). */
  recordPing(record: MigrationRecord): void {
    if (!record.result || !record.ping) return;
    const labels = { result: record.result, mode: record.mode, flavor: record.labels.flavor ?? '' };
    this.blackout.observe(labels, record.ping.switchoverBlackout?.seconds ?? 0);
    if (record.postcopyAt) this.postcopyOutage.observe(labels, record.ping.postcopyOutageTotalSeconds);
    const blackoutCause = record.ping.switchoverBlackout?.cause;
    if (blackoutCause) this.blackoutCauses.inc({ cause: blackoutCause.cause });
    for (const outage of record.ping.postcopyOutages) if (outage.cause) this.postcopyOutageCauses.inc({ cause: outage.cause.cause });
  }

  recordClosed(record: MigrationRecord): void {
    if (!record.result) return;
    const labels = { result: record.result, mode: record.mode, flavor: record.labels.flavor ?? '' };
    this.migrationsTotal.inc({ result: record.result, mode: record.mode });
    if (record.durationSeconds) this.duration.observe(labels, record.durationSeconds.value);
    if (record.bytes.transferred) this.transferred.observe(labels, record.bytes.transferred.value);
    if (record.qemu.downtimeMs) this.qemuDowntime.observe(labels, record.qemu.downtimeMs.value / 1000);
  }

  /** One answered probe of a VM's ping target. */
  pingRtt(vm: string, rttSeconds: number): void {
    this.ping.observeRtt(vm, rttSeconds);
  }

  /** A cardinality cap refused `count` more things of a kind a series of their own. */
  refused(kind: 'vm' | 'interface', count = 1): void {
    this.seriesRefused.inc({ kind }, count);
  }

  sourceError(source: string, host: string, reason: SourceErrorReason): void {
    this.sourceErrors.inc({ source, host, reason });
  }

  stateFileWritten(ok: boolean): void {
    this.stateFileWrites.inc({ result: ok ? 'ok' : 'error' });
  }

  async render(): Promise<string> {
    const registryText = await this.registry.metrics();
    const w = new TextWriter();
    w.raw(registryText);
    let sinceYield = w.size;
    for (const step of this.scrapeTimeSteps(w)) {
      step();
      // A large fleet renders megabytes: let timers and other requests run between families.
      if (w.size - sinceYield >= YIELD_BYTES) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        sinceYield = w.size;
      }
    }
    return w.toString();
  }

  /** Series computed from the sources and tracker at scrape time, in one go. Exported for the benchmark. */
  renderScrapeTime(): string {
    const w = new TextWriter();
    for (const step of this.scrapeTimeSteps(w)) step();
    return w.toString();
  }

  /**
   * One step per family, over the inputs as they are now: monitor states and health entries are
   * copied, since the sources update them in place and render() yields between steps.
   */
  private scrapeTimeSteps(w: TextWriter): (() => void)[] {
    const monitors = [...this.inputs.monitors()].map((s) => ({ ...s }));
    const prefixes = monitors.map((s) => this.prefixFor(s.ref.vm, s.ref.host));
    this.prefixes = new Map(monitors.map((s, i) => [prefixKey(s.ref.vm, s.ref.host), prefixes[i] as MonitorPrefixes]));
    const health = [...this.inputs.health()].map((h) => ({ ...h }));
    const vms = [...this.inputs.vms()];
    const active = [...this.inputs.activeMigrations()];
    const last = this.lastPerVm();
    const ping = [...(this.inputs.pingTargets?.() ?? [])];
    return [
      ...this.monitorSteps(w, monitors, prefixes),
      ...this.ping.steps(w, ping),
      ...this.healthSteps(w, health, vms),
      ...this.migrationSteps(w, active, last),
    ];
  }

  private prefixFor(vm: string, host: string): MonitorPrefixes {
    const cached = this.prefixes.get(prefixKey(vm, host));
    if (cached) return cached;
    const base = `{vm="${escapeLabelValue(vm)}",host="${escapeLabelValue(host)}"`;
    const statusLines = new Map<string, string>();
    const statusName = METRICS.qemuStatus.name;
    for (const current of MIGRATION_STATUSES) {
      statusLines.set(current, MIGRATION_STATUSES.map((s) => `${statusName}${base},status="${s}"} ${s === current ? 1 : 0}\n`).join(''));
    }
    return { base, statusLines };
  }

  private monitorSteps(w: TextWriter, all: MonitorState[], allPrefixes: MonitorPrefixes[]): (() => void)[] {
    const m = METRICS;
    // A QEMU that is gone (a source after its migration) has no status: its series end with it.
    const live = all.map((s, i) => [s, i] as const).filter(([s]) => s.up && s.info);
    const monitors = live.map(([s]) => s);
    const prefixes = live.map(([, i]) => allPrefixes[i] as MonitorPrefixes);
    const steps: (() => void)[] = [];
    steps.push(() => {
      w.family(m.qemuStatus);
      monitors.forEach((s, i) => {
        const p = prefixes[i] as MonitorPrefixes;
        const status = s.info?.status ?? 'none';
        const block = p.statusLines.get(status);
        if (block) {
          w.raw(block);
        } else {
          // An unknown status (a newer QEMU) is kept visible rather than dropped.
          w.raw((p.statusLines.get('none') as string).replace(/status="none"\} 1/, 'status="none"} 0'));
          w.sampleWith(m.qemuStatus.name + p.base, 'status', status, 1);
        }
      });
    });

    const timeGauges = [
      [m.qemuTotalTime, (s: MonitorState) => s.info?.totalTimeMs],
      [m.qemuSetupTime, (s: MonitorState) => s.info?.setupTimeMs],
      [m.qemuExpectedDowntime, (s: MonitorState) => s.info?.expectedDowntimeMs],
      [m.qemuDowntime, (s: MonitorState) => s.info?.downtimeMs],
      [m.qemuPostcopyBlocktime, (s: MonitorState) => s.info?.postcopyBlocktimeMs],
    ] as const;
    for (const [def, read] of timeGauges) {
      steps.push(() => {
        w.family(def);
        monitors.forEach((s, i) => {
          const ms = read(s);
          if (ms !== undefined) w.sample(def.name + (prefixes[i] as MonitorPrefixes).base, ms / 1000);
        });
      });
    }
    for (const ram of RAM_METRICS) {
      steps.push(() => {
        w.family({ name: ram.name, help: ram.help, type: 'gauge' });
        monitors.forEach((s, i) => {
          const value = s.info?.ram?.[ram.field];
          if (value !== undefined) w.sample(ram.name + (prefixes[i] as MonitorPrefixes).base, value * ram.scale);
        });
      });
    }
    steps.push(() => {
      w.family(m.qmpMonitorUp);
      all.forEach((s, i) => w.sample(m.qmpMonitorUp.name + (allPrefixes[i] as MonitorPrefixes).base, s.up ? 1 : 0));
    });
    steps.push(() => {
      w.family(m.qmpReconnects);
      all.forEach((s, i) => w.sample(m.qmpReconnects.name + (allPrefixes[i] as MonitorPrefixes).base, s.reconnects));
    });
    return steps;
  }

  private healthSteps(w: TextWriter, health: SourceHealth[], vms: VmView[]): (() => void)[] {
    return [
      () => {
        const def = METRICS.sourceUp;
        w.family(def);
        for (const h of health) {
          w.sample(seriesPrefix(def.name, [['source', h.source], ['host', h.host]]), h.up ? 1 : 0);
        }
      },
      () => {
        w.family(METRICS.vmInfo);
        for (const vm of vms) {
          const labels: [string, string][] = [['vm', vm.name], ['flavor', vm.flavor], ...Object.entries(vm.labels)];
          w.sample(seriesPrefix(METRICS.vmInfo.name, labels), 1);
        }
      },
    ];
  }

  private migrationSteps(w: TextWriter, active: ActiveMigrationView[], last: MigrationRecord[]): (() => void)[] {
    const m = METRICS;
    const steps: (() => void)[] = [];
    steps.push(() => {
      w.family(m.migrationPhase);
      for (const a of active) {
        const prefix = seriesPrefix(m.migrationPhase.name, [['vm', a.vm]]);
        const known = (MIGRATION_PHASES as readonly string[]).includes(a.phase);
        for (const phase of MIGRATION_PHASES) w.sampleWith(prefix, 'phase', phase, phase === a.phase ? 1 : 0);
        if (!known) w.sampleWith(prefix, 'phase', a.phase, 1);
      }
    });
    steps.push(() => {
      w.family(m.migrationInProgress);
      for (const a of active) {
        w.sample(seriesPrefix(m.migrationInProgress.name, [['vm', a.vm], ['source_host', a.sourceHost], ['destination_host', a.destinationHost ?? '']]), 1);
      }
    });
    steps.push(() => {
      w.family(m.migrationStarted);
      for (const a of active) w.sample(seriesPrefix(m.migrationStarted.name, [['vm', a.vm]]), a.startedAtMs / 1000);
    });
    steps.push(() => {
      w.family(m.currentPostcopyOutage);
      for (const a of active) {
        if (a.postcopyOutageSeconds !== undefined) w.sample(seriesPrefix(m.currentPostcopyOutage.name, [['vm', a.vm]]), a.postcopyOutageSeconds);
      }
    });
    steps.push(() => {
      w.family(m.currentOutageCause);
      for (const a of active) {
        if (a.postcopyOutageCause !== undefined) w.sample(seriesPrefix(m.currentOutageCause.name, [['vm', a.vm], ['cause', a.postcopyOutageCause]]), 1);
      }
    });

    steps.push(() => {
      w.family(m.lastInfo);
      for (const r of last) {
        w.sample(
          seriesPrefix(m.lastInfo.name, [
            ['vm', r.vm],
            ['result', r.result ?? ''],
            ['mode', r.mode],
            ['source_host', r.source.host],
            ['destination_host', r.destination?.host ?? ''],
          ]),
          1,
        );
      }
    });
    const perVm = [
      [m.lastEnd, (r: MigrationRecord) => (r.endedAt ? r.endedAt.value / 1000 : undefined)],
      [m.lastDuration, (r: MigrationRecord) => r.durationSeconds?.value],
      [m.lastQemuDowntime, (r: MigrationRecord) => (r.qemu.downtimeMs ? r.qemu.downtimeMs.value / 1000 : undefined)],
      [m.lastBlackout, (r: MigrationRecord) => (r.ping ? (r.ping.switchoverBlackout?.seconds ?? 0) : undefined)],
      [m.lastPostcopyOutage, (r: MigrationRecord) => (r.ping && r.postcopyAt ? r.ping.postcopyOutageTotalSeconds : undefined)],
    ] as const;
    for (const [def, read] of perVm) {
      steps.push(() => {
        w.family(def);
        for (const r of last) {
          const value = read(r);
          if (value !== undefined) w.sample(seriesPrefix(def.name, [['vm', r.vm]]), value);
        }
      });
    }
    steps.push(() => {
      w.family(m.lastOutageStart);
      for (const r of last) {
        for (const [outage, figure] of outagesOf(r)) {
          if (figure.cause) w.sample(seriesPrefix(m.lastOutageStart.name, [['vm', r.vm], ['outage', outage], ['cause', figure.cause.cause]]), figure.startAt / 1000);
        }
      }
    });
    steps.push(() => {
      w.family(m.lastTransferred);
      for (const r of last) {
        const prefix = seriesPrefix(m.lastTransferred.name, [['vm', r.vm]]);
        const parts = [['total', r.bytes.transferred], ['precopy', r.bytes.precopy], ['postcopy', r.bytes.postcopy], ['downtime', r.bytes.downtime]] as const;
        for (const [phase, figure] of parts) if (figure) w.sampleWith(prefix, 'phase', phase, figure.value);
      }
    });
    return steps;
  }

  /** The newest closed record per VM, if it ended within the TTL: per-VM series expire. */
  private lastPerVm(): MigrationRecord[] {
    const cutoff = this.clock.wallMs() - this.lastMigrationTtlMs;
    const newest = new Map<string, MigrationRecord>();
    for (const r of this.inputs.records()) {
      const end = r.endedAt?.value;
      if (end === undefined || end < cutoff) continue;
      const seen = newest.get(r.vm);
      if (!seen || (seen.endedAt?.value ?? 0) < end) newest.set(r.vm, r);
    }
    return [...newest.values()];
  }
}

/** The annotations' outages of a record: its blackout and its first MAX_ANNOTATED_OUTAGES post-copy outages (a bounded label set). */
const MAX_ANNOTATED_OUTAGES = 10;
function outagesOf(r: MigrationRecord): [string, OutageFigure][] {
  if (!r.ping) return [];
  const list: [string, OutageFigure][] = r.ping.switchoverBlackout ? [['blackout', r.ping.switchoverBlackout]] : [];
  r.ping.postcopyOutages.slice(0, MAX_ANNOTATED_OUTAGES).forEach((o, i) => list.push([`postcopy-${i + 1}`, o]));
  return list;
}

function prefixKey(vm: string, host: string): string {
  return `${vm}\u0000${host}`;
}

function spec<L extends string>(def: { name: string; help: string; labels: readonly string[] }) {
  return { name: def.name, help: def.help, labelNames: def.labels as readonly L[] };
}
