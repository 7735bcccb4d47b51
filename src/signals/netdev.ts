/**
 * Starts the netdev source on the hosts that have `interfaces`, feeds its reads to the interface
 * attribution, and puts the figures into the records. Kept out of exporter.ts so the wiring there
 * stays a few lines.
 */
import type { Registry } from 'prom-client';
import type { Clock } from '../clock.js';
import type { Config } from '../config/schema.js';
import type { HostRegistry } from '../hosts/registry.js';
import type { Logger } from '../log.js';
import { registerInterfaceMetrics } from '../metrics/interface-metrics.js';
import { NetdevSource } from '../sources/netdev/source.js';
import { InterfaceAttribution } from '../enrichers/interfaces/interface-enricher.js';
import type { MigrationRecord } from '../records/record.js';
import type { MigrationStore } from '../records/store.js';
import type { MigrationTracker } from '../tracker/tracker.js';

export interface InterfaceCountersOptions {
  config: Config;
  clock: Clock;
  logger: Logger;
  hosts: HostRegistry;
  store: MigrationStore;
  tracker: MigrationTracker;
  registry: Registry;
  /** A host's counters could not be read (livemig_source_errors_total). */
  onError?(host: string): void;
  /** The record got its interface figures. */
  onRecord?(record: MigrationRecord): void;
}

export interface InterfaceCounters {
  health(): { source: string; host: string; up: boolean }[];
  /** A migration seen by another source than the tracker (nova's log) began: keep the reads from now on. */
  started(vm: string, startedAtMs: number): void;
  /** A record closed outside the tracker (from nova's log alone): charge it its interface bytes too. */
  closed(record: MigrationRecord): void;
  stop(): void;
}

/** Reads after a migration's end are waited for this long beyond one idle period. */
const SETTLE_EXTRA_MS = 5_000;

export function startInterfaceCounters(options: InterfaceCountersOptions): InterfaceCounters {
  const { config, clock, tracker, store, hosts } = options;
  const logger = options.logger.child({ component: 'netdev' });
  const migratingHosts = () => {
    const set = new Set<string>();
    for (const m of tracker.activeMigrations()) {
      set.add(m.source.host);
      if (m.destination) set.add(m.destination.host);
    }
    return set;
  };
  let migrating = new Set<string>();
  const refresh = () => {
    migrating = migratingHosts();
  };
  const netdev = new NetdevSource({
    clock,
    logger,
    periodMs: config.netdev.periodMs,
    migratingPeriodMs: config.netdev.migratingPeriodMs,
    isMigrating: (host) => migrating.has(host),
    onSample: (sample) => attribution.sample(sample),
    onError: (host) => options.onError?.(host),
  });
  const attribution = new InterfaceAttribution({
    clock,
    watched: (host) => netdev.watchedHosts().includes(host),
    readNow: (host) => void netdev.readNow(host),
    settleMs: config.netdev.periodMs + SETTLE_EXTRA_MS,
    onFigures: (record) => {
      // Merge into what the store holds now: other sections (ping, nova) may have been added meanwhile.
      const current = store.get(record.id) ?? record;
      const next: MigrationRecord = { ...current, interfaces: record.interfaces ?? null, ...(current.postcopyAt ? {} : { postcopyAt: record.postcopyAt }) };
      if (store.update(next)) options.onRecord?.(next);
    },
  });
  tracker.on('started', (active) => {
    refresh();
    attribution.started(active.vm, active.startedAtMs);
  });
  tracker.on('phase', refresh);
  tracker.on('closed', (record) => {
    refresh();
    attribution.closed(record);
  });
  const timer = setInterval(() => attribution.tick(), 250);
  timer.unref();
  netdev.setHosts(hosts.declared().map(({ host, config: h }) => ({ host, interfaces: h.interfaces, netdevPath: h.netdevPath })));
  registerInterfaceMetrics(options.registry, () => netdev.snapshot());
  return {
    health: () => [
      ...hosts.declared().map(({ host }) => ({ source: 'host', host: host.name, up: host.up })),
      ...netdev.health().map((h) => ({ source: 'netdev', host: h.host, up: h.up })),
    ],
    started: (vm, startedAtMs) => attribution.started(vm, startedAtMs),
    closed: (record) => attribution.closed(record),
    stop: () => {
      clearInterval(timer);
      netdev.stop();
    },
  };
}
