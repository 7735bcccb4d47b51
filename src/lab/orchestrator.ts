import { errorMessage, livemigError } from '../errors.js';
import type { QmpEvent } from '../qemu/types.js';
import type { LabEngine, LabHostName, LabMigration, LabOrchestrator, LabVmSpec, QmpVm, RunningVm } from './engine.js';
import { MigrationDriver, type MigrationOutcome } from './migrate.js';
import { novaMessages, type NovaMessage } from './nova-log-writer.js';
import { FIRST_DOWNTIME_STEP_MS, novaMonitor } from './nova-monitor.js';
import { NovaLogs } from './nova-logs.js';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * Plays nova and libvirt for the lab: for each live migration it starts the destination VM
 * (pre_live_migration), sets capabilities and bandwidth, starts the migration, switches to
 * post-copy after the first pass (libvirt's hybrid mode), stops the source once the destination
 * runs, and writes nova-compute's log lines on each host's log file as nova would. Its own
 * observations only sequence the run; every figure the lab reports comes from the exporter.
 */

export interface OrchestratorOptions {
  engine: LabEngine;
  /** QEMU max-bandwidth and max-postcopy-bandwidth, bytes per second. */
  maxBandwidth: number;
  /** QEMU max-postcopy-bandwidth, bytes per second; default maxBandwidth. */
  maxPostcopyBandwidth?: number;
  timeoutMs: number;
  /** Time from the end of the migration to the source's shutdown (nova's post-migration work; default 1 s). */
  postMigrationMs?: number;
  /** Progress callback (the progress bar). */
  onProgress?: (vm: string, fraction: number) => void;
}

/** Between `Migration operation has completed` and the source domain's end. */
export const DEFAULT_POST_MIGRATION_MS = 1_000;


export interface QmpMigration extends LabMigration {
  /** The orchestrator's own view, for sequencing only (never reported). */
  outcome: MigrationOutcome;
  running: QmpVm;
}

export class Orchestrator implements LabOrchestrator {
  private readonly nova: NovaLogs;

  constructor(private readonly options: OrchestratorOptions) {
    this.nova = new NovaLogs(options.engine.hosts);
  }

  /** Boots a VM where nova would have spawned it. */
  async boot(spec: LabVmSpec, host: LabHostName): Promise<QmpVm> {
    return this.options.engine.startVm(spec, host, false);
  }

  /** One live migration of a running VM (one this orchestrator booted) to the other host, the way nova drives libvirt's hybrid mode. */
  async migrate(running: RunningVm): Promise<QmpMigration> {
    const { engine } = this.options;
    const source = qmpVm(running);
    const from = source.host;
    const to: LabHostName = from === 'src' ? 'dst' : 'src';
    const spec = source.spec;
    this.nova.newRequest();
    const log = (host: LabHostName, message: NovaMessage): void => this.nova.log(host, spec.instanceUuid, message);

    const preStarted = Date.now();
    const destination = await engine.startVm(spec, to, true);
    // libvirt's STARTED/MIGRATED event of the incoming domain.
    log(to, novaMessages.lifecycle('Started'));
    try {
      await engine.beforeMigrate?.(destination);
      log(from, novaMessages.preLiveMigrationTook((Date.now() - preStarted) / 1000, to));
      const driver = new MigrationDriver(
        { source: source.qmp, destination: destination.qmp },
        {
          mode: 'hybrid',
          uri: engine.migrationUri(to, spec.name),
          maxBandwidth: this.options.maxBandwidth,
          maxPostcopyBandwidth: spec.faults?.postcopyBandwidth ?? this.options.maxPostcopyBandwidth ?? this.options.maxBandwidth,
          // nova starts at the first of its downtime steps (and logs it, below).
          downtimeLimitMs: FIRST_DOWNTIME_STEP_MS,
        },
      );
      const faults: Promise<void>[] = [];
      const detach = this.followEvents(source, destination, log, (vm) => {
        if (engine.duringPostcopy) faults.push(engine.duringPostcopy(vm));
      });
      let outcome: MigrationOutcome;
      try {
        await driver.prepare();
        await driver.start();
        const monitor = novaMonitor({
          spec,
          log: (m) => log(from, m),
          read: async () => {
            const reply = await source.qmp.execute<{ status?: string; ram?: Record<string, number> }>('query-migrate');
            const ram = reply.ram;
            if (!ram || (reply.status !== 'active' && reply.status !== 'postcopy-active')) return null;
            return { processed: ram.transferred ?? 0, remaining: ram.remaining ?? 0, total: ram.total ?? 0 };
          },
          ...(this.options.onProgress ? { onProgress: this.options.onProgress } : {}),
        });
        try {
          outcome = await driver.finish(this.options.timeoutMs);
        } finally {
          monitor.stop();
        }
      } catch (err) {
        driver.dispose();
        log(from, novaMessages.liveMigrationFailure(errorMessage(err)));
        log(from, novaMessages.operationAborted());
        throw err;
      } finally {
        detach();
        await Promise.allSettled(faults);
      }
      const status = outcome.source.finalStatus;
      if (status === 'completed' || (status === 'gone' && outcome.destination?.finalStatus === 'completed')) {
        log(from, novaMessages.operationCompleted());
        log(from, novaMessages.postLiveMigrationStarted());
        log(to, novaMessages.postOperationStarted());
        await delay(this.options.postMigrationMs ?? DEFAULT_POST_MIGRATION_MS);
        log(from, novaMessages.finishedSuccessfully(to));
        // The guest runs on the destination now: a source that will not stop must not take it down too.
        await source.stop().catch(() => undefined);
        await this.flush();
        return { vm: spec.name, from, to, outcome, running: destination };
      }
      const reason = outcome.source.final?.['error-desc'] ?? `migration ${status}`;
      log(from, status === 'cancelled' ? novaMessages.operationCancelled() : novaMessages.liveMigrationFailure(String(reason)));
      if (status !== 'cancelled') log(from, novaMessages.operationAborted());
      await destination.stop();
      await this.flush();
      return { vm: spec.name, from, to, outcome, running: source };
    } catch (err) {
      await destination.stop().catch(() => undefined);
      await this.flush();
      throw err;
    }
  }

  flush(): Promise<void> {
    return this.nova.flush();
  }

  /** No more log lines (the lab is being taken down); waits for those under way. */
  close(): Promise<void> {
    return this.nova.close();
  }

  /** Lifecycle lines: libvirt's events as nova turns them into log lines. */
  private followEvents(source: QmpVm, destination: QmpVm, log: (host: LabHostName, m: NovaMessage) => void, onResume: (vm: QmpVm) => void): () => void {
    let switched = false;
    const onSource = (event: QmpEvent): void => {
      if (event.event === 'MIGRATION' && event.data?.status === 'postcopy-active' && !switched) {
        switched = true;
        log(source.host, novaMessages.switchingToPostcopy());
        log(source.host, novaMessages.lifecycle('Postcopy started'));
      }
      if (event.event === 'MIGRATION' && event.data?.status === 'completed') log(source.host, novaMessages.lifecycle('Migration completed'));
    };
    const onDestination = (event: QmpEvent): void => {
      if (event.event === 'RESUME') {
        log(destination.host, novaMessages.lifecycle('Resumed'));
        onResume(destination);
      }
    };
    source.qmp.on('event', onSource);
    destination.qmp.on('event', onDestination);
    return () => {
      source.qmp.off('event', onSource);
      destination.qmp.off('event', onDestination);
    };
  }
}

/** The QMP engines' VMs have the orchestrator's monitor; a VM of another engine cannot be migrated here. */
function qmpVm(vm: RunningVm): QmpVm {
  if (!('qmp' in vm)) throw livemigError('LME_LAB_MIGRATION', vm.spec.name, 'this VM has no QMP monitor of the orchestrator: it was not booted by a QMP engine');
  return vm as QmpVm;
}
