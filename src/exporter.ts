/**
 * Puts the exporter together: state file -> store and tracker -> the enrichment path -> every
 * signal the config enables (src/signals/registry.ts) -> metrics -> HTTP server; and takes it
 * apart again on SIGTERM/SIGINT. SIGHUP and `POST /-/reload` reload the config file's VMs (a
 * bad file is logged, answered with its problems, and the running config kept).
 */
import { systemClock, type Clock } from './clock.js';
import { readConfigFile } from './config/load.js';
import type { Config } from './config/schema.js';
import { Enrichment } from './enrichers/enrichment.js';
import { errorMessage, LivemigError } from './errors.js';
import { HostRegistry } from './hosts/registry.js';
import type { Logger } from './log.js';
import { ExporterMetrics } from './metrics/exporter-metrics.js';
import { loadState } from './records/load-state.js';
import { persistState } from './records/persistence.js';
import { MigrationStore } from './records/store.js';
import { createApp, type LabInfo, type ReloadOutcome } from './server/app.js';
import { DEFAULT_CONNECTION_LIMITS, listen } from './server/listen.js';
import type { ListenAddress } from './server/listen-address.js';
import { WebSecurity } from './server/web-security.js';
import { metricsInputs } from './signals/metrics-inputs.js';
import { SIGNALS } from './signals/registry.js';
import { Signals } from './signals/signals.js';
import { MAX_DISCOVERED_VMS, WatchedVms } from './signals/watched-vms.js';
import { MigrationTracker } from './tracker/tracker.js';
import { REVISION, VERSION } from './version.js';

export interface RunOptions {
  config: Config;
  configFile: string | null;
  listen: ListenAddress;
  telemetryPath: string;
  logger: Logger;
  /** --web.config.file: TLS, basic auth and response headers (exporter-toolkit's format); null: plain HTTP, open. */
  webConfigFile?: string | null;
  /** --web.max-connections (default DEFAULT_CONNECTION_LIMITS'). */
  maxConnections?: number;
  clock?: Clock;
  /** Embedded use (the lab): stop when this aborts; with it, no process signal handlers are installed. */
  stopSignal?: AbortSignal;
  /** Called once the server listens, with its base URL (e.g. http://127.0.0.1:10027, https://... with TLS). */
  onListening?: (url: string) => void;
  /** Run by the lab: its engine, told to Prometheus (livemig_lab_info) and on the landing page (a SIMULATED banner). */
  lab?: LabInfo;
}

const STATE_WRITE_DEBOUNCE_MS = 1000;
const SOURCE_STOP_TIMEOUT_MS = 5000;

export async function runExporter(options: RunOptions): Promise<void> {
  const { config, logger, telemetryPath } = options;
  const clock = options.clock ?? systemClock;
  // First, so that a bad web config file stops the exporter before anything starts.
  const web = options.webConfigFile ? WebSecurity.load(options.webConfigFile, logger.child({ component: 'web' })) : null;
  const store = new MigrationStore({ maxRecords: config.records.maxCount, maxAgeMs: config.records.maxAgeMs, clock });
  const loaded = await loadState(config.stateFile, store, clock, logger);
  const saved = loaded.content;
  const refusedVms = (names: string[]) => {
    logger.warn({ cap: MAX_DISCOVERED_VMS, refused: names.slice(0, 10), more: Math.max(0, names.length - 10) }, 'libvirt domains past the cap of discovered VMs are not watched (livemig_series_refused_total{kind="vm"})');
    metrics.refused('vm', names.length);
  };
  const vms = new WatchedVms(config.vms, MAX_DISCOVERED_VMS, (names) => refusedVms(names));
  const timeouts = { undecidedMs: config.records.staleMigrationTimeoutMs, pausedMs: config.records.postcopyPausedTimeoutMs };
  const tracker = new MigrationTracker({ clock, logger: logger.child({ component: 'tracker' }), store, vms: vms.meta(), timeouts, ...(saved ? { restore: saved.tracker } : {}) });
  // One registry, so one SSH connection per host carries every channel.
  const hosts = new HostRegistry({ hosts: config.hosts, logger, reconnectMaxBackoffMs: config.polling.reconnectMaxBackoffMs, agentSocket: process.env.SSH_AUTH_SOCK });
  const signals = new Signals();
  const metrics = new ExporterMetrics(metricsInputs({ signals, hosts, tracker, store, vms }), clock, config.records.lastMigrationTtlMs);
  if (options.lab) metrics.labInfo(options.lab);

  const enrichment = new Enrichment(store);
  enrichment.on('closed', (record) => metrics.recordClosed(record));
  enrichment.on('patched', (record, section) => section.ping && metrics.recordPing(record));
  tracker.on('started', (active) => enrichment.started(active.vm, active.startedAtMs));
  tracker.on('closed', (record) => enrichment.closed(record));
  const persistence = config.stateFile && loaded.writable
    ? persistState({ path: config.stateFile, debounceMs: STATE_WRITE_DEBOUNCE_MS, tracker, store, clock, logger, onWrite: (ok) => metrics.stateFileWritten(ok), sections: () => signals.saved() })
    : null;
  const vmsChanged = async () => {
    tracker.setVms(vms.meta());
    await signals.reload();
  };
  signals.build(SIGNALS, { config, clock, logger, hosts, vms, tracker, store, enrichment, metrics, views: signals.views, saved: saved ?? {}, persist: () => persistence?.schedule(), vmsChanged });

  tracker.start();
  hosts.start();
  enrichment.start();
  await signals.start();
  const watched = vms.all().map((vm) => vm.name);
  if (watched.length) logger.info({ vms: watched }, 'watching VMs');
  else logger.info({ libvirt: config.libvirt.discover }, 'watching no VMs: none configured and no libvirt domains found; serving metrics and the API anyway');

  // SIGHUP and POST /-/reload: the file is read and checked whole; only a good one is applied
  // (its VMs; other sections apply on restart). One reload at a time, in the order asked.
  let reloads: Promise<unknown> = Promise.resolve();
  const reload = (by: string): Promise<ReloadOutcome> => {
    const outcome = reloads.then(() => reloadConfig(by));
    reloads = outcome;
    return outcome;
  };
  const reloadConfig = async (by: string): Promise<ReloadOutcome> => {
    const file = options.configFile;
    if (!file) {
      logger.info({ by }, 'reload: no config file to reload (started without --config)');
      return { ok: false, status: 400, errors: ['started without --config: there is no config file to reload'] };
    }
    try {
      const loaded = await readConfigFile(file);
      vms.configure(loaded.config.vms);
      await vmsChanged();
      const warnings = loaded.warnings.map((w) => w.message);
      for (const warning of warnings) logger.warn({ file }, warning);
      const notApplied = changedSections(config, loaded.config);
      logger.info({ file, by, vms: vms.all().length, ...(notApplied.length ? { notApplied } : {}) }, 'config reloaded (VMs; other sections apply on restart)');
      return { ok: true, file, vms: vms.all().length, warnings, notApplied };
    } catch (err) {
      const errors = err instanceof LivemigError ? err.problems.map((p) => p.message) : [errorMessage(err)];
      logger.error({ file, by, err: errors.join('; ') }, 'config reload failed; keeping the running config');
      return { ok: false, status: 500, errors };
    }
  };

  let ready = false;
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
    describeSources: () => [...signals.describe(), `state file: ${config.stateFile ?? 'none (records kept in memory only)'}`],
    reload: () => reload('POST /-/reload'),
    ...(options.lab ? { lab: options.lab } : {}),
  });
  const limits = { ...DEFAULT_CONNECTION_LIMITS, ...(options.maxConnections ? { maxConnections: options.maxConnections } : {}) };
  const { server, url } = await listen(web ? web.handler(app) : app, options.listen, limits, web?.tlsHooks() ?? undefined);
  logger.info({ url, telemetryPath, version: VERSION, revision: REVISION }, 'listening');
  ready = true;
  options.onListening?.(url);

  const signal = await untilStopped(options.stopSignal, () => void reload('SIGHUP'));
  logger.info({ signal }, 'shutting down');
  ready = false;
  server.close();
  server.closeAllConnections();
  tracker.stop();
  enrichment.stop();
  // A source stuck on a dead peer must not keep the exporter from stopping (and saving its state).
  const stopped = await Promise.race([
    signals.stop().then(() => hosts.close()).then(() => true),
    new Promise<false>((resolve) => setTimeout(() => resolve(false), SOURCE_STOP_TIMEOUT_MS).unref()),
  ]);
  if (!stopped) logger.warn({ timeoutMs: SOURCE_STOP_TIMEOUT_MS, signals: signals.stillStopping() }, 'sources did not stop in time; exiting anyway');
  await persistence?.flush().catch((err: unknown) => logger.error({ err: errorMessage(err) }, 'state file not written at shutdown'));
}

/** Sections of a reloaded config that differ from the running one and wait for a restart. */
function changedSections(running: Config, next: Config): string[] {
  const names: Partial<Record<keyof Config, string>> = { stateFile: 'state_file', logsOptions: 'logs_options' };
  return (Object.keys(next) as (keyof Config)[]).filter((key) => key !== 'vms' && JSON.stringify(running[key]) !== JSON.stringify(next[key])).map((key) => names[key] ?? key);
}

/** Resolves with what stopped the exporter: the abort of `stopSignal`, else SIGTERM or SIGINT (SIGHUP calls `reload`). */
function untilStopped(stopSignal: AbortSignal | undefined, reload: () => void): Promise<string> {
  return new Promise((resolve) => {
    if (stopSignal) {
      if (stopSignal.aborted) resolve('abort');
      else stopSignal.addEventListener('abort', () => resolve('abort'), { once: true });
      return;
    }
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
    process.on('SIGHUP', reload);
  });
}
