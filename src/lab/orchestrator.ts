import { errorMessage, livemigError } from '../errors.js';
import type { QmpEvent } from '../qemu/types.js';
import type { LabEngine, LabHostName, LabMigration, LabOrchestrator, LabVmSpec, QmpVm, RunningVm } from './engine.js';
import { MigrationDriver, type MigrationOutcome } from './migrate.js';
import { novaMessages, type NovaMessage } from './nova-log-writer.js';
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

/** nova's monitor polls every 0.5 s; INFO progress at the first poll and every 60th (30 s). */
const MONITOR_POLL_MS = 500;
const INFO_EVERY_POLLS = 60;
/** live_migration_downtime 500 ms over live_migration_downtime_steps 10: the first step. */
const FIRST_DOWNTIME_STEP_MS = 50;
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
          maxPostcopyBandwidth: this.options.maxPostcopyBandwidth ?? this.options.maxBandwidth,
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
        const monitor = this.monitor(source, from, spec, log);
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

  /** nova's _live_migration_monitor: polls the job every 0.5 s and logs progress at INFO. */
  private monitor(source: QmpVm, host: LabHostName, spec: LabVmSpec, log: (host: LabHostName, m: NovaMessage) => void): { stop(): void } {
    let polls = 0;
    let stopped = false;
    const started = Date.now();
    const poll = async (): Promise<void> => {
      if (stopped) return;
      try {
        const reply = await source.qmp.execute<{ status?: string; ram?: Record<string, number> }>('query-migrate');
        const ram = reply.ram;
        if (ram && (reply.status === 'active' || reply.status === 'postcopy-active')) {
          if (polls === 0) log(host, novaMessages.increasingDowntime(FIRST_DOWNTIME_STEP_MS, 0));
          if (polls % INFO_EVERY_POLLS === 0) {
            log(host, novaMessages.migrationRunning((Date.now() - started) / 1000, {
              processed: ram.transferred ?? 0,
              remaining: ram.remaining ?? 0,
              total: ram.total ?? 0,
            }));
          }
          const total = Math.max(1, 2 * spec.stressedMiB + spec.fillMiB) * 1024 * 1024;
          this.options.onProgress?.(spec.name, Math.min(0.99, (ram.transferred ?? 0) / total));
          polls++;
        }
      } catch {
        // The source QEMU may be gone at the end: nova's monitor sees the job end.
      }
    };
    void poll();
    const timer = setInterval(() => void poll(), MONITOR_POLL_MS);
    return {
      stop: () => {
        stopped = true;
        clearInterval(timer);
      },
    };
  }
}

/** The QMP engines' VMs have the orchestrator's monitor; a VM of another engine cannot be migrated here. */
function qmpVm(vm: RunningVm): QmpVm {
  if (!('qmp' in vm)) throw livemigError('LME_LAB_MIGRATION', vm.spec.name, 'this VM has no QMP monitor of the orchestrator: it was not booted by a QMP engine');
  return vm as QmpVm;
}
