/**
 * Puts the exporter together: state file -> store and tracker -> QMP source (configured VMs and
 * libvirt discovery) -> metrics -> HTTP server; and takes it apart again on SIGTERM/SIGINT.
 * SIGHUP reloads the config file (a bad file is logged and the running config kept).
 */
import { access, constants, mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import type { AddressInfo } from 'node:net';
import { systemClock, type Clock } from './clock.js';
import { loadConfigFile } from './config/load.js';
import type { Config, VmConfig } from './config/schema.js';
import { errorMessage, livemigError } from './errors.js';
import type { Logger } from './log.js';
import { ExporterMetrics, type SourceHealth } from './metrics/exporter-metrics.js';
import { pingTargetView } from './metrics/ping-metrics.js';
import { persistState, type StatePersistence } from './records/persistence.js';
import { moveAsideCorrupt, readStateFile, StateFileCorruptError, type StateFileContent } from './records/state-file.js';
import { MigrationStore } from './records/store.js';
import { PingAttribution } from './enrichers/ping/ping-enricher.js';
import { MigrationTracker, type VmMeta } from './tracker/tracker.js';
import { startNovaLogs, type NovaLogs } from './signals/logs.js';
import { startInterfaceCounters, type InterfaceCounters } from './signals/netdev.js';
import { HostRegistry } from './hosts/registry.js';
import { createApp } from './server/app.js';
import type { ListenAddress } from './server/listen-address.js';
import { LibvirtDiscovery } from './sources/qmp/libvirt-discovery.js';
import { QmpMonitor } from './sources/qmp/monitor.js';
import { QmpSource } from './sources/qmp/source.js';
import { PingSource } from './sources/ping/source.js';
import type { PingTarget } from './sources/ping/types.js';
import { VERSION } from './version.js';

export interface RunOptions {
  config: Config;
  configFile: string | null;
  listen: ListenAddress;
  telemetryPath: string;
  logger: Logger;
  clock?: Clock;
  /** Embedded use (the lab): stop when this aborts; with it, no process signal handlers are installed. */
  stopSignal?: AbortSignal;
  /** Called once the server listens, with its base URL (e.g. http://127.0.0.1:10027). */
  onListening?: (url: string) => void;
}

const STATE_WRITE_DEBOUNCE_MS = 1000;
const SOURCE_STOP_TIMEOUT_MS = 5000;
/** Phases in which a VM's ping outage is the post-copy outage operators are paged for. */
const POSTCOPY_PHASES = new Set<string>(['postcopy', 'postcopy-paused', 'postcopy-recover']);

export async function runExporter(options: RunOptions): Promise<void> {
  const { logger, telemetryPath } = options;
  const clock = options.clock ?? systemClock;
  let config = options.config;
  let ready = false;

  const store = new MigrationStore({ maxRecords: config.records.maxCount, maxAgeMs: config.records.maxAgeMs, clock });
  const saved = await loadState(config.stateFile, store, clock, logger);
  const restore = saved?.tracker;
  const tracker = new MigrationTracker({
    clock,
    logger: logger.child({ component: 'tracker' }),
    store,
    vms: vmMeta(config.vms),
    timeouts: { undecidedMs: config.records.staleMigrationTimeoutMs, pausedMs: config.records.postcopyPausedTimeoutMs },
    ...(restore ? { restore } : {}),
  });
  tracker.start();

  const health = new Map<string, SourceHealth>();
  let logs: NovaLogs | null = null;
  let interfaces: InterfaceCounters | null = null;
  // One registry, so one SSH connection per host carries every channel.
  const hosts = new HostRegistry({
    hosts: config.hosts,
    logger,
    reconnectMaxBackoffMs: config.polling.reconnectMaxBackoffMs,
    agentSocket: process.env.SSH_AUTH_SOCK,
  });
  hosts.start();
  /** QMP goes through the host only when it is declared non-local (a local socket needs no detour). */
  const qmpHost = (name: string) => {
    const host = hosts.get(name);
    return host.kind === 'ssh' ? { host } : {};
  };
  let discovered: VmConfig[] = [];
  const watchedVms = () => [...config.vms, ...discovered];

  const metrics = new ExporterMetrics(
    {
      monitors: () => qmp.snapshot(),
      health: () => [...qmpHealth(), ...pingHealth(), ...health.values(), ...(logs?.health() ?? []), ...(interfaces?.health() ?? [])],
      activeMigrations: () => {
        const outages = new Map(ping.snapshot().map((t) => [t.target.vm, t.currentOutageSeconds]));
        return tracker.activeMigrations().map((m) => {
          const outage = POSTCOPY_PHASES.has(m.phase) ? outages.get(m.vm) : undefined;
          return {
            vm: m.vm,
            phase: m.phase,
            sourceHost: m.source.host,
            destinationHost: m.destination?.host ?? null,
            startedAtMs: m.startedAtMs,
            ...(outage !== undefined ? { postcopyOutageSeconds: outage } : {}),
          };
        });
      },
      records: () => store.all(),
      recordCount: () => store.size,
      vms: () => watchedVms().map((vm) => ({ name: vm.name, flavor: vm.flavor, labels: vm.labels })),
      pingTargets: () =>
        ping.snapshot().map(pingTargetView),
    },
    clock,
    config.records.lastMigrationTtlMs,
  );
  const attribution = new PingAttribution({
    clock,
    periodMs: config.ping.periodMs,
    beforeMs: config.ping.beforeMs,
    afterMs: config.ping.afterMs,
    blackoutGraceMs: config.ping.blackoutGraceMs,
    settleMs: config.ping.timeoutMs + Math.max(1000, 2 * config.ping.periodMs),
    targetOf: (vm) => watchedVms().find((v) => v.name === vm)?.pingAddress ?? null,
    onFigures: (record) => {
      // Only the ping section is new: the stored record may have gained nova or interface figures since.
      const stored = store.get(record.id);
      if (!stored || !record.ping) return;
      const withPing = { ...stored, ping: record.ping };
      if (store.update(withPing)) metrics.recordPing(withPing);
    },
  });
  const attributionTimer = setInterval(() => attribution.tick(), 500);
  attributionTimer.unref();
  tracker.on('started', (active) => attribution.started(active.vm));
  tracker.on('closed', (record) => {
    metrics.recordClosed(record);
    attribution.closed(record);
  });

  let persistence: StatePersistence | null = null;
  if (config.stateFile) {
    persistence = persistState({
      path: config.stateFile,
      debounceMs: STATE_WRITE_DEBOUNCE_MS,
      tracker,
      store,
      clock,
      logger,
      onWrite: (ok) => metrics.stateFileWritten(ok),
      logs: () => logs?.state() ?? null,
    });
  }

  const qmp = new QmpSource({
    clock,
    logger: logger.child({ component: 'qmp' }),
    idleIntervalMs: config.polling.idleIntervalMs,
    migratingIntervalMs: config.polling.migratingIntervalMs,
    commandTimeoutMs: config.polling.commandTimeoutMs,
    createMonitor: (endpoint, target, hostName) =>
      new QmpMonitor({
        endpoint,
        logger: logger.child({ component: 'qmp', monitor: target }),
        sessionOptions: { commandTimeoutMs: config.polling.commandTimeoutMs, connectTimeoutMs: config.polling.commandTimeoutMs, ...qmpHost(hostName) },
        backoff: { baseMs: Math.min(500, config.polling.reconnectMaxBackoffMs), capMs: config.polling.reconnectMaxBackoffMs },
      }),
    onObservation: (observation) => tracker.observe(observation),
    onError: (host, reason) => metrics.sourceError('qmp', host, reason),
  });
  function qmpHealth(): SourceHealth[] {
    return [...qmp.hostHealth()].map(([host, up]) => ({ source: 'qmp', host, up }));
  }

  const localHost = config.libvirt.host ?? hostname();
  const ping = new PingSource({
    clock,
    logger: logger.child({ component: 'ping' }),
    periodMs: config.ping.periodMs,
    timeoutMs: config.ping.timeoutMs,
    fpingPath: config.ping.fpingPath,
    maxTargetsPerProcess: config.ping.targetsPerProcess,
    ...(config.ping.sourceAddress ? { sourceAddress: config.ping.sourceAddress } : {}),
    ...(config.ping.netns ? { netns: config.ping.netns } : {}),
    onObservation: (observation) => attribution.probe(observation),
    onRtt: (target, rttMs) => metrics.pingRtt(target.vm ?? target.address, rttMs / 1000),
    onError: (err) => {
      metrics.sourceError('ping', localHost, 'fping');
      logger.warn({ component: 'ping', err: errorMessage(err) }, 'ping source error');
    },
  });
  const pingTargets = (): PingTarget[] =>
    watchedVms().flatMap((vm) => (vm.pingAddress ? [{ address: vm.pingAddress, vm: vm.name, labels: {} }] : []));
  function pingHealth(): SourceHealth[] {
    return pingTargets().length ? [{ source: 'ping', host: localHost, up: ping.health().up }] : [];
  }

  let discovery: LibvirtDiscovery | null = null;
  const startDiscovery = async (current: Config) => {
    const mode = current.libvirt.discover;
    if (mode === 'off') return;
    const host = localHost;
    if (mode === 'auto' && !(await onPath(current.libvirt.virshPath))) {
      logger.info({ virsh: current.libvirt.virshPath }, 'libvirt not found (no virsh on PATH): not watching libvirt domains');
      return;
    }
    discovery = new LibvirtDiscovery({
      virshPath: current.libvirt.virshPath,
      uri: current.libvirt.uri,
      host,
      intervalMs: current.libvirt.discoverIntervalMs,
      timeoutMs: current.polling.commandTimeoutMs * 5,
      logger: logger.child({ component: 'libvirt' }),
      onHealth: (up) => health.set(`libvirt\u0000${host}`, { source: 'libvirt', host, up }),
      onDomains: async (vms) => {
        // A configured VM of the same name wins over the discovered domain.
        const configured = new Set(config.vms.map((vm) => vm.name));
        discovered = vms.filter((vm) => !configured.has(vm.name));
        await qmp.setVms(watchedVms());
      },
    });
    await discovery.start();
  };

  await qmp.setVms(config.vms);
  await startDiscovery(config);
  logs = await startNovaLogs({
    config,
    clock,
    logger,
    store,
    tracker,
    registry: metrics.registry,
    hosts,
    saved: saved ?? {},
    vmOf: (uuid) => watchedVms().find((vm) => vm.instanceUuid === uuid)?.name,
    labelsOf: (vm) => vmMeta(watchedVms().filter((v) => v.name === vm))[0]?.labels ?? {},
    monitorUp: (vm) => [...qmp.snapshot()].some((s) => s.ref.vm === vm && s.up),
    onRecord: (record) => {
      metrics.recordClosed(record);
      attribution.closed(record);
      interfaces?.closed(record);
    },
    onMigrationOpened: (vm) => {
      attribution.started(vm);
      interfaces?.started(vm, clock.wallMs());
    },
    schedulePersist: () => persistence?.schedule(),
  });
  interfaces = startInterfaceCounters({
    config,
    clock,
    logger,
    hosts,
    store,
    tracker,
    registry: metrics.registry,
    onError: (host) => metrics.sourceError('netdev', host, 'command'),
    onRecord: () => persistence?.schedule(),
  });
  await ping.setTargets(pingTargets()).catch((err: unknown) => logger.error({ err: errorMessage(err) }, 'ping targets refused'));
  if (watchedVms().length === 0) {
    logger.info(
      { libvirt: config.libvirt.discover },
      'watching no VMs: none configured and no libvirt domains found; serving metrics and the API anyway',
    );
  } else {
    logger.info({ vms: watchedVms().map((vm) => vm.name) }, 'watching VMs');
  }

  const app = createApp({
    telemetryPath,
    version: VERSION,
    logger,
    metricsContentType: metrics.contentType,
    renderMetrics: () => metrics.render(),
    listMigrations: (f) => store.query({ ...(f.vm ? { vm: f.vm } : {}), ...(f.from !== undefined ? { fromMs: f.from } : {}), ...(f.to !== undefined ? { toMs: f.to } : {}) }).slice(0, f.limit),
    getMigration: (id) => store.get(id),
    activeMigrations: () => tracker.activeMigrations(),
    isReady: () => ready,
    describeSources: () => [
      `QMP: ${[...qmp.snapshot()].length} monitors of ${watchedVms().length} VMs (${[...qmp.snapshot()].filter((s) => s.up).length} connected)`,
      `libvirt discovery: ${config.libvirt.discover}${discovery ? ` (${config.libvirt.uri})` : ' (inactive)'}`,
      `state file: ${config.stateFile ?? 'none (records kept in memory only)'}`,
    ],
  });
  const server = await listen(app, options.listen);
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  logger.info({ url: `http://${shownHost}:${address.port}`, telemetryPath, version: VERSION }, 'listening');
  ready = true;
  options.onListening?.(`http://${shownHost}:${address.port}`);

  const reload = async () => {
    if (!options.configFile) {
      logger.info('SIGHUP: no config file to reload');
      return;
    }
    try {
      const next = await loadConfigFile(options.configFile);
      config = { ...next, stateFile: config.stateFile, records: config.records, polling: config.polling, libvirt: config.libvirt };
      tracker.setVms(vmMeta(watchedVms()));
      await qmp.setVms(watchedVms());
      await ping.setTargets(pingTargets()).catch((err: unknown) => logger.error({ err: errorMessage(err) }, 'ping targets refused'));
      logger.info({ file: options.configFile, vms: config.vms.length }, 'config reloaded (VMs; other sections apply on restart)');
    } catch (err) {
      logger.error({ file: options.configFile, err: errorMessage(err) }, 'config reload failed; keeping the running config');
    }
  };

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      ready = false;
      server.close();
      server.closeAllConnections();
      discovery?.stop();
      tracker.stop();
      clearInterval(attributionTimer);
      // A source stuck on a dead peer must not keep the exporter from stopping (and saving its state).
      const stopped = await Promise.race([
        Promise.all([qmp.stop(), ping.stop(), logs?.stop(), interfaces?.stop()]).then(() => hosts.close()).then(() => true),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), SOURCE_STOP_TIMEOUT_MS).unref()),
      ]);
      if (!stopped) logger.warn({ timeoutMs: SOURCE_STOP_TIMEOUT_MS }, 'sources did not stop in time; exiting anyway');
      if (persistence) {
        try {
          await persistence.flush();
        } catch (err) {
          logger.error({ err: errorMessage(err) }, 'state file not written at shutdown');
        }
      }
      resolve();
    };
    if (options.stopSignal) {
      if (options.stopSignal.aborted) void stop('abort');
      else options.stopSignal.addEventListener('abort', () => void stop('abort'), { once: true });
      return;
    }
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
    process.on('SIGHUP', () => void reload());
  });
}

function vmMeta(vms: readonly VmConfig[]): VmMeta[] {
  return vms.map((vm) => ({ name: vm.name, labels: { ...vm.labels, ...(vm.flavor ? { flavor: vm.flavor } : {}) } }));
}

/** Reads the state file into the store; returns what it holds for the tracker and the logs. A corrupt file is moved aside. */
async function loadState(path: string | null, store: MigrationStore, clock: Clock, logger: Logger): Promise<StateFileContent | undefined> {
  if (!path) return undefined;
  try {
    await mkdir(dirname(path), { recursive: true });
    const content = await readStateFile(path);
    if (!content) {
      logger.info({ path }, 'no state file yet; starting empty');
      return undefined;
    }
    store.load(content.records);
    logger.info({ path, records: store.size, savedAt: new Date(content.savedAtMs).toISOString() }, 'state file loaded');
    return content;
  } catch (err) {
    if (err instanceof StateFileCorruptError) {
      const movedTo = await moveAsideCorrupt(path, clock.wallMs());
      logger.error({ path, movedTo, err: errorMessage(err) }, 'state file unusable; moved aside, starting empty');
      return undefined;
    }
    logger.error({ path, err: errorMessage(err) }, 'state file cannot be read; records will not survive a restart until this is fixed');
    return undefined;
  }
}

function listen(app: ReturnType<typeof createApp>, address: ListenAddress): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(app);
    server.listen({ port: address.port, ...(address.host ? { host: address.host } : {}) });
    server.once('listening', () => resolve(server));
    server.once('error', (err) => reject(livemigError('LME_LISTEN', `${address.host ?? ''}:${address.port}`, err)));
  });
}

async function onPath(binary: string): Promise<boolean> {
  const dirs = binary.includes('/') ? [''] : (process.env.PATH ?? '').split(':');
  for (const dir of dirs) {
    try {
      await access(dir ? `${dir}/${binary}` : binary, constants.X_OK);
      return true;
    } catch {
      // try the next directory
    }
  }
  return false;
}
