/**
 * Synthetic MetricsInputs for bench/scrape.ts, in exactly the shapes the real sources produce:
 * MonitorState.info comes from the real parseQueryMigrate on the captured QEMU 7.2 reply, and
 * records are MigrationRecords as the tracker closes them. Every VM's numbers differ a little,
 * so number-to-string conversions cannot all be served from V8's cache.
 */
import { systemClock } from '../src/clock.js';
import { ExporterMetrics, type ActiveMigrationView, type MetricsInputs, type SourceHealth, type VmView } from '../src/metrics/exporter-metrics.js';
import type { Figure, MigrationMode, MigrationRecord } from '../src/records/record.js';
import { parseQueryMigrate } from '../src/sources/qmp/parse.js';
import type { MonitorState } from '../src/sources/qmp/source.js';
import { readFixture } from './common.js';
import type { MigrationResult } from '../src/qemu/status.js';

export interface Fleet {
  /** VMs, one QEMU monitor each, every one answering with the full post-copy reply. */
  vms: number;
  hosts: number;
  /** The first `migrating` VMs also have a migration in progress (phase post-copy). */
  migrating: number;
  /** Closed records, spread over the VMs, all ended within the last-migration TTL. */
  records: number;
}

export interface ScrapeCase {
  key: string;
  title: string;
  fleet: Fleet;
  /** The render-time target (median ≤ 20 ms) applies to this case. */
  renderTarget: boolean;
}

export const SCRAPE_CASES: readonly ScrapeCase[] = [
  {
    key: '(i)',
    title: '100 tracked VMs (each migrating, post-copy, one monitor with the full 7.2 reply), 1,000 closed records',
    fleet: { vms: 100, hosts: 20, migrating: 100, records: 1000 },
    renderTarget: false,
  },
  {
    key: '(ii)',
    title: "1,000 VMs' worth of series: one monitor per VM with the full 7.2 postcopy-active reply",
    fleet: { vms: 1000, hosts: 50, migrating: 0, records: 0 },
    renderTarget: true,
  },
];

/** The last-migration TTL (config default: 1 h); every synthetic record ended within it. */
export const TTL_MS = 3_600_000;

/** The real ExporterMetrics over a synthetic fleet, closed records also counted by recordClosed(). */
export function exporterFor(fleet: Fleet): { metrics: ExporterMetrics; inputs: SyntheticInputs } {
  const inputs = syntheticInputs(fleet, Date.now(), TTL_MS);
  const metrics = new ExporterMetrics(inputs, systemClock, TTL_MS);
  for (const record of inputs.closed) metrics.recordClosed(record);
  return { metrics, inputs };
}

export interface SyntheticInputs extends MetricsInputs {
  readonly closed: readonly MigrationRecord[];
}

const FLAVORS = ['m1.small', 'm1.medium', 'm1.large', 'm1.xlarge', 'm1.2xlarge'];
const MODES: readonly MigrationMode[] = ['hybrid', 'precopy', 'postcopy'];
const EVIDENCE = 'bench:synthetic';

export function vmName(i: number): string {
  return `instance-${(0x1000 + i).toString(16).padStart(8, '0')}`;
}

function hostName(i: number): string {
  return `compute-${String(i).padStart(3, '0')}`;
}

/** Integers move by a few units, floats by a few parts per million: same shape, other digits. */
function perturb(value: unknown, i: number): unknown {
  if (typeof value === 'number') return Number.isInteger(value) ? value + i * 13 : value * (1 + i * 1e-6);
  if (Array.isArray(value)) return value.map((v) => perturb(v, i));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, perturb(v, i)]));
  }
  return value;
}

const fig = (value: number): Figure => ({ value, evidence: EVIDENCE });

function resultOf(i: number): MigrationResult {
  if (i % 100 === 13) return 'postcopy-paused';
  if (i % 50 === 7) return 'cancelled';
  if (i % 20 === 3) return 'failed';
  return 'completed';
}

function closedRecord(i: number, vms: number, hosts: number, nowMs: number, ttlMs: number): MigrationRecord {
  const v = i % vms;
  const vm = vmName(v);
  const result = resultOf(i);
  const mode = MODES[i % MODES.length] as MigrationMode;
  const seconds = 2 + ((i * 37) % 900) + (i % 10) / 10;
  const endedAt = nowMs - 1000 - ((i * 7919) % Math.max(1, ttlMs - 60_000));
  const startedAt = endedAt - seconds * 1000;
  const transferred = 536_870_912 + i * 1_048_573;
  const postcopy = mode === 'precopy' ? 0 : Math.round(transferred * 0.08) + i;
  const downtime = mode === 'postcopy' ? 0 : 65_536 + i * 17;
  const ok = result === 'completed';
  return {
    id: `${vm}@${startedAt}`,
    vm,
    labels: { flavor: FLAVORS[v % FLAVORS.length] as string, project: `project-${v % 40}` },
    source: { host: hostName(v % hosts), monitor: `${hostName(v % hosts)}/unix:/run/libvirt/qemu/${vm}.monitor` },
    destination: { host: hostName((v + 1) % hosts), monitor: `${hostName((v + 1) % hosts)}/unix:/run/libvirt/qemu/${vm}.monitor` },
    result,
    resultEvidence: `qmp:source query-migrate status ${result}`,
    mode,
    startedAt: fig(startedAt),
    postcopyAt: mode === 'precopy' ? null : fig(startedAt + 1500 + i),
    stoppedAt: fig(startedAt + 1400 + i),
    resumedAt: ok ? fig(startedAt + 1480 + i) : null,
    endedAt: fig(endedAt),
    durationSeconds: fig(seconds),
    bytes: {
      transferred: fig(transferred),
      precopy: fig(transferred - postcopy - downtime),
      postcopy: mode === 'precopy' ? null : fig(postcopy),
      downtime: mode === 'postcopy' ? null : fig(downtime),
      disk: null,
    },
    qemu: {
      downtimeMs: ok ? fig(20 + (i % 300)) : null,
      setupTimeMs: fig(3 + (i % 9)),
      totalTimeMs: fig(seconds * 1000),
      postcopyRequests: mode === 'precopy' ? null : fig(i % 500),
      passes: fig(1 + (i % 6)),
      passesBeforePostcopy: mode === 'hybrid' ? fig(1) : null,
      errorDesc: result === 'failed' ? 'Unable to write to socket: Connection reset by peer' : null,
    },
    statuses: [
      { status: 'setup', at: startedAt, side: 'source' },
      { status: 'active', at: startedAt + 5, side: 'source' },
      { status: result, at: endedAt, side: 'source' },
    ],
    resumedAfterRestart: false,
  };
}

export function syntheticInputs(fleet: Fleet, nowMs: number, ttlMs: number): SyntheticInputs {
  const reply = readFixture('query-migrate.7.2.src.postcopy-active.json');
  const monitors: MonitorState[] = [];
  const vmViews: VmView[] = [];
  const active: ActiveMigrationView[] = [];
  for (let v = 0; v < fleet.vms; v++) {
    const vm = vmName(v);
    const host = hostName(v % fleet.hosts);
    const endpoint = `unix:/run/libvirt/qemu/${vm}.monitor`;
    monitors.push({
      ref: { vm, host, monitor: `${host}/${endpoint}` },
      endpoint,
      up: true,
      reconnects: v % 3,
      info: parseQueryMigrate(perturb(reply, v), endpoint),
      runState: 'finish-migrate',
      lastProblem: 'none',
    });
    vmViews.push({ name: vm, flavor: FLAVORS[v % FLAVORS.length] as string, labels: { project: `project-${v % 40}`, az: `az-${v % 3}` } });
    if (v < fleet.migrating) {
      active.push({ vm, phase: 'postcopy', sourceHost: host, destinationHost: hostName((v + 1) % fleet.hosts), startedAtMs: nowMs - 4550 - v });
    }
  }
  const health: SourceHealth[] = Array.from({ length: fleet.hosts }, (_, h) => ({ source: 'qmp', host: hostName(h), up: h % 17 !== 5 }));
  const closed = Array.from({ length: fleet.records }, (_, i) => closedRecord(i, Math.max(1, fleet.vms), fleet.hosts, nowMs, ttlMs));
  return {
    closed,
    monitors: () => monitors,
    health: () => health,
    activeMigrations: () => active,
    records: () => closed,
    recordCount: () => closed.length,
    vms: () => vmViews,
  };
}
