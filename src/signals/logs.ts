/**
 * Starts the log source and ties it to the records: log events -> nova's migrations per VM
 * (matched by instance UUID) -> the tracker's records or records of their own; the followers'
 * positions go into the state file. Kept out of exporter.ts so the wiring there stays a few lines.
 */
import type { Registry } from 'prom-client';
import type { Clock } from '../clock.js';
import type { Config } from '../config/schema.js';
import type { Host } from '../hosts/host.js';
import type { HostRegistry } from '../hosts/registry.js';
import type { Logger } from '../log.js';
import { registerLogMetrics } from '../metrics/log-metrics.js';
import { LogSource, type SavedLogPosition } from '../sources/logs/source.js';
import { NovaAttribution } from '../enrichers/nova/nova-enricher.js';
import { NovaMigrations, type NovaMigration } from '../enrichers/nova/nova-migrations.js';
import type { MigrationRecord } from '../records/record.js';
import type { StateFileContent } from '../records/state-file.js';
import type { MigrationStore } from '../records/store.js';
import type { MigrationTracker } from '../tracker/tracker.js';

export interface NovaLogsOptions {
  config: Config;
  clock: Clock;
  logger: Logger;
  store: MigrationStore;
  tracker: MigrationTracker;
  registry: Registry;
  /** The exporter's hosts (one SSH connection per host for every source). */
  hosts: HostRegistry;
  /** What the state file kept of the logs (read once, by the exporter, at start). */
  saved: Pick<StateFileContent, 'logs' | 'nova'>;
  /** VM name of a nova instance UUID (configured VMs with instance_uuid). */
  vmOf(instanceUuid: string): string | undefined;
  labelsOf(vm: string): Record<string, string>;
  /** Whether any QEMU monitor of the VM is connected now. */
  monitorUp(vm: string): boolean;
  /** A record made from the logs alone closed (counters, histograms, ping figures). */
  onRecord(record: MigrationRecord): void;
  /** nova's lines say the VM's migration started (keep its ping probes). */
  onMigrationOpened?(vm: string): void;
  /** The positions changed: write the state file (debounced by the caller). */
  schedulePersist(): void;
}

export interface NovaLogs {
  health(): { source: string; host: string; up: boolean }[];
  /** What the state file keeps: the followers' positions and nova's migrations under way. */
  state(): { positions: SavedLogPosition[]; nova: NovaMigration[] };
  stop(): Promise<void>;
}

/** How long a closed nova migration waits for the tracker's record while a monitor of the VM is up. */
const GRACE_MONITOR_UP_MS = 20_000;
/** ... and while none is (nothing else will report it). */
const GRACE_NO_MONITOR_MS = 2_000;

export async function startNovaLogs(options: NovaLogsOptions): Promise<NovaLogs | null> {
  const { config, clock, logger } = options;
  if (config.logs.length === 0) return null;
  const log = logger.child({ component: 'logs' });
  const { saved, hosts } = options;
  const positions = saved.logs ?? [];

  const attribution = new NovaAttribution({
    clock,
    store: options.store,
    logger: log,
    labelsOf: options.labelsOf,
    isMigrating: (vm) => options.tracker.activeMigrations().some((m) => m.vm === vm),
    onRecord: options.onRecord,
  });
  // With no monitor of the VM up, nothing else will report the migration: do not wait long.
  const migrations = new NovaMigrations(
    options.vmOf,
    (m) => attribution.novaClosed(m, options.monitorUp(m.vm) ? GRACE_MONITOR_UP_MS : GRACE_NO_MONITOR_MS),
    undefined,
    options.onMigrationOpened,
  );
  options.tracker.on('closed', (record) => attribution.recordClosed(record));
  migrations.restore(saved.nova ?? []);

  const source = new LogSource({
    files: config.logs,
    hostOf: (name): Host => hosts.get(name),
    maxLineLength: config.logsOptions.maxLineLength,
    pollMs: config.logsOptions.pollIntervalMs,
    startAt: config.logsOptions.startAt,
    positions,
    clock,
    logger: log,
    onEvent: (event) => migrations.observe(event),
  });
  registerLogMetrics(options.registry, () => source.stats(), clock);
  await source.start();
  log.info({ files: config.logs.map((l) => `${l.host}:${l.path}`), resumed: positions.length }, 'following logs');

  let lastSaved = '';
  let savedAt = Number.NEGATIVE_INFINITY;
  const timer = setInterval(() => {
    migrations.expire(clock.wallMs(), config.records.staleMigrationTimeoutMs);
    attribution.tick();
    const now = JSON.stringify(source.positions());
    if (now !== lastSaved && clock.monoMs() - savedAt >= config.logsOptions.saveIntervalMs) {
      lastSaved = now;
      savedAt = clock.monoMs();
      options.schedulePersist();
    }
  }, 1000);
  timer.unref();

  return {
    health: () => [...source.health()].map(([host, up]) => ({ source: 'logs', host, up })),
    state: () => ({ positions: source.positions(), nova: migrations.snapshot() }),
    stop: async () => {
      clearInterval(timer);
      await source.stop();
      options.schedulePersist(); // the final positions, written by the caller's flush

    },
  };
}
