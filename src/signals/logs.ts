/**
 * Logs: the nova-compute and libvirt log files followed on their hosts; their events make nova's
 * migrations per VM (matched by instance UUID), which the nova enricher puts into the records.
 * The followers' positions and nova's migrations under way go into the state file.
 */
import { every } from '../clock.js';
import { NovaEnricher } from '../enrichers/nova/nova-enricher.js';
import { NovaMigrations } from '../enrichers/nova/nova-migrations.js';
import { registerLogMetrics } from '../metrics/log-metrics.js';
import { LogSource } from '../sources/logs/source.js';
import type { SignalFactory } from './signal.js';

/** How long a closed nova migration waits for the tracker's record while a monitor of the VM is up. */
const GRACE_MONITOR_UP_MS = 20_000;
/** ... and while none is (nothing else will report it). */
const GRACE_NO_MONITOR_MS = 2_000;
/** How often the positions are looked at (saved every logs_options.save_interval at most) and quiet migrations expired. */
const HOUSEKEEPING_MS = 1000;

export const logsSignal: SignalFactory = ({ config, clock, logger, hosts, vms, tracker, store, enrichment, metrics, views, saved, persist }) => {
  if (config.logs.length === 0) return null;
  const log = logger.child({ component: 'logs' });
  const positions = saved.logs ?? [];
  const enricher = new NovaEnricher({
    clock,
    store,
    logger: log,
    labelsOf: (vm) => vms.labelsOf(vm),
    isMigrating: (vm) => tracker.activeMigrations().some((m) => m.vm === vm),
    patch: enrichment.patch,
    closeUnstored: (record) => enrichment.closeUnstored(record),
  });
  enrichment.add(enricher);
  const monitorUp = (vm: string) => [...views.monitors()].some((s) => s.ref.vm === vm && s.up);
  const migrations = new NovaMigrations(
    (uuid) => vms.withInstanceUuid(uuid)?.name,
    // With no monitor of the VM up, nothing else will report the migration: do not wait long.
    (m) => enricher.novaClosed(m, monitorUp(m.vm) ? GRACE_MONITOR_UP_MS : GRACE_NO_MONITOR_MS),
    undefined,
    (vm) => enrichment.started(vm, clock.wallMs()),
  );
  migrations.restore(saved.nova ?? []);
  const source = new LogSource({
    files: config.logs,
    hostOf: (name) => hosts.get(name),
    maxLineLength: config.logsOptions.maxLineLength,
    pollMs: config.logsOptions.pollIntervalMs,
    startAt: config.logsOptions.startAt,
    positions,
    clock,
    logger: log,
    onEvent: (event) => migrations.observe(event),
  });
  registerLogMetrics(metrics.registry, () => source.stats(), clock);

  let lastSaved = '';
  let savedAt = Number.NEGATIVE_INFINITY;
  const housekeeping = () => {
    migrations.expire(clock.wallMs(), config.records.staleMigrationTimeoutMs);
    const now = JSON.stringify(source.positions());
    if (now !== lastSaved && clock.monoMs() - savedAt >= config.logsOptions.saveIntervalMs) {
      lastSaved = now;
      savedAt = clock.monoMs();
      persist();
    }
  };
  let stopHousekeeping = () => {};
  return {
    name: 'logs',
    start: async () => {
      await source.start();
      log.info({ files: config.logs.map((l) => `${l.host}:${l.path}`), resumed: positions.length }, 'following logs');
      stopHousekeeping = every(HOUSEKEEPING_MS, housekeeping);
    },
    // The files followed are those of the config at start.
    reload: async () => {},
    stop: async () => {
      stopHousekeeping();
      await source.stop();
      persist(); // the final positions, written by the shutdown's flush
    },
    health: () => [...source.health()].map(([host, up]) => ({ source: 'logs', host, up })),
    saved: () => ({ logs: source.positions(), nova: migrations.snapshot() }),
  };
};
