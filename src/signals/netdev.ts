/**
 * Interface counters: read on the hosts that have `interfaces` (faster while a migration runs
 * there); the interface enricher charges their bytes to the records.
 */
import { InterfaceEnricher } from '../enrichers/interfaces/interface-enricher.js';
import { registerInterfaceMetrics } from '../metrics/interface-metrics.js';
import { NetdevSource } from '../sources/netdev/source.js';
import type { SignalFactory } from './signal.js';

/** Reads after a migration's end are waited for this long beyond one idle period. */
const SETTLE_EXTRA_MS = 5_000;

export const netdevSignal: SignalFactory = ({ config, clock, logger, hosts, tracker, enrichment, metrics }) => {
  let migratingHosts = new Set<string>();
  const refresh = () => {
    migratingHosts = new Set(tracker.activeMigrations().flatMap((m) => [m.source.host, ...(m.destination ? [m.destination.host] : [])]));
  };
  const netdev = new NetdevSource({
    clock,
    logger: logger.child({ component: 'netdev' }),
    periodMs: config.netdev.periodMs,
    migratingPeriodMs: config.netdev.migratingPeriodMs,
    isMigrating: (host) => migratingHosts.has(host),
    onSample: (sample) => enricher.sample(sample),
    onError: (host) => metrics.sourceError('netdev', host, 'command'),
    onRefused: (_host, interfaces) => metrics.refused('interface', interfaces.length),
  });
  const enricher = new InterfaceEnricher({
    clock,
    watched: (host) => netdev.watchedHosts().includes(host),
    readNow: (host) => void netdev.readNow(host),
    settleMs: config.netdev.periodMs + SETTLE_EXTRA_MS,
    patch: enrichment.patch,
  });
  enrichment.add(enricher);
  for (const event of ['started', 'phase', 'closed'] as const) tracker.on(event, refresh);
  registerInterfaceMetrics(metrics.registry, () => netdev.snapshot());
  return {
    name: 'netdev',
    start: async () => netdev.setHosts(hosts.declared().map(({ host, config: h }) => ({ host, interfaces: h.interfaces, netdevPath: h.netdevPath }))),
    // The hosts and their interfaces are those of the config at start.
    reload: async () => {},
    stop: async () => netdev.stop(),
    health: () => netdev.health().map((h) => ({ source: 'netdev', host: h.host, up: h.up })),
  };
};
