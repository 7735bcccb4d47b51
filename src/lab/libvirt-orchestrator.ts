import { setTimeout as delay } from 'node:timers/promises';
import { errorMessage } from '../errors.js';
import { LocalHost } from '../hosts/local.js';
import { LibvirtClient } from '../sources/libvirt/client.js';
import type { DomainEvent } from '../sources/libvirt/events.js';
import type { LabHostName, LabMigration, LabOrchestrator, LabVmSpec, RunningVm } from './engine.js';
import { runTool } from './exec.js';
import type { LibvirtEngine } from './libvirt-engine.js';
import { novaMessages, type NovaMessage } from './nova-log-writer.js';
import { NovaLogs } from './nova-logs.js';
import { FIRST_DOWNTIME_STEP_MS, novaMonitor } from './nova-monitor.js';

/**
 * Plays nova for the libvirt engine: libvirt migrates, as nova asks it to for hybrid mode
 * (`virsh migrate --live --postcopy --postcopy-after-precopy`, so that libvirt switches to
 * post-copy once the first pass is done), after `migrate-setspeed`. nova-compute's log lines
 * are written on each host's log file timed from libvirt's own events and job statistics, read
 * through the project's libvirt client on each daemon's read-only socket: lifecycle events as
 * nova logs them, and nova's monitor polling the job at 2 Hz for its progress lines. What it
 * sees only sequences the run; every figure the lab reports comes from the exporter.
 */

export interface LibvirtOrchestratorOptions {
  engine: LibvirtEngine;
  /** `migrate-setspeed`, bytes per second (in whole MiB/s, at least 1). */
  maxBandwidth: number;
  timeoutMs: number;
  /** Time from the end of the migration to nova's last line (its post-migration work; default 1 s). */
  postMigrationMs?: number;
  /** Progress callback (the progress bar). */
  onProgress?: (vm: string, fraction: number) => void;
}

const MiB = 1024 * 1024;
const DEFAULT_POST_MIGRATION_MS = 1_000;
/** libvirt's events of a migration's end may arrive just after `virsh migrate` returns. */
const END_EVENTS_GRACE_MS = 5_000;
/** virDomainJobOperation of a migration leaving the host. */
const MIGRATION_OUT = 5;

export class LibvirtOrchestrator implements LabOrchestrator {
  private readonly nova: NovaLogs;
  private closed = false;

  private constructor(
    private readonly options: LibvirtOrchestratorOptions,
    private readonly clients: Record<LabHostName, LibvirtClient>,
  ) {
    this.nova = new NovaLogs(options.engine.hosts, options.engine.owner.projectId);
  }

  /** Connects to both daemons' read-only sockets and registers for the domain events nova listens to. */
  static async create(options: LibvirtOrchestratorOptions): Promise<LibvirtOrchestrator> {
    const opened: LibvirtClient[] = [];
    try {
      for (const host of ['src', 'dst'] as const) {
        const socket = options.engine.daemon(host).roSocket;
        const client = await LibvirtClient.open(await new LocalHost(host).connectUnix(socket), `unix:${socket}`);
        opened.push(client);
        for (const event of ['LIFECYCLE', 'MIGRATION_ITERATION', 'JOB_COMPLETED'] as const) await client.registerDomainEvent(event);
      }
    } catch (err) {
      await Promise.all(opened.map((c) => c.close()));
      throw err;
    }
    const [src, dst] = opened as [LibvirtClient, LibvirtClient];
    return new LibvirtOrchestrator(options, { src, dst });
  }

  /** Boots a VM where nova would have spawned it: a domain on that host's libvirt. */
  boot(spec: LabVmSpec, host: LabHostName): Promise<RunningVm> {
    return this.options.engine.boot(spec, host);
  }

  /** One live migration of a running domain to the other host's libvirt. */
  async migrate(running: RunningVm): Promise<LabMigration> {
    const { engine } = this.options;
    const { spec, host: from } = running;
    const to: LabHostName = from === 'src' ? 'dst' : 'src';
    const source = engine.daemon(from);
    const destination = engine.daemon(to);
    this.nova.newRequest();
    const log = (host: LabHostName, message: NovaMessage): void => this.nova.log(host, spec.instanceUuid, message);

    // pre_live_migration: nova has the destination get ready; here, that its libvirt answers.
    const preStarted = Date.now();
    await this.clients[to].getLibVersion();
    log(from, novaMessages.preLiveMigrationTook((Date.now() - preStarted) / 1000, to));
    await source.virsh('migrate-setspeed', spec.name, String(Math.max(1, Math.floor(this.options.maxBandwidth / MiB))));
    const domain = await this.clients[from].lookupByName(spec.name);
    const events = this.followEvents(spec.name, from, to, log);
    const client = this.clients[from];
    const monitor = novaMonitor({
      spec,
      log: (m) => log(from, m),
      read: async () => {
        const job = await client.getJobStats(domain);
        if ((job.typeName !== 'bounded' && job.typeName !== 'unbounded') || job.stats.operation !== MIGRATION_OUT) return null;
        const figure = (name: string): number => (typeof job.stats[name] === 'number' ? job.stats[name] : 0);
        return { processed: figure('memory_processed'), remaining: figure('memory_remaining'), total: figure('memory_total') };
      },
      onFirstPoll: () => source.virsh('migrate-setmaxdowntime', spec.name, String(FIRST_DOWNTIME_STEP_MS)).then(() => undefined, () => undefined),
      ...(this.options.onProgress ? { onProgress: this.options.onProgress } : {}),
    });
    let failure: unknown = null;
    try {
      await runTool({
        tool: 'virsh',
        args: [
          '-c', source.uri, 'migrate', '--live', '--postcopy', '--postcopy-after-precopy',
          '--domain', spec.name, '--desturi', destination.uri, '--migrateuri', `tcp://${engine.network.migrationAddress(to)}`,
        ],
        packageName: 'libvirt-clients',
        failure: { code: 'LME_LAB_MIGRATION', subject: `${spec.name} ${from} -> ${to}` },
        timeoutMs: this.options.timeoutMs,
      });
    } catch (err) {
      failure = err;
    } finally {
      monitor.stop();
    }
    if (failure === null) {
      await events.ended(END_EVENTS_GRACE_MS);
      events.detach();
      log(from, novaMessages.operationCompleted());
      log(from, novaMessages.postLiveMigrationStarted());
      log(to, novaMessages.postOperationStarted());
      await delay(this.options.postMigrationMs ?? DEFAULT_POST_MIGRATION_MS);
      log(from, novaMessages.finishedSuccessfully(to));
      await this.flush();
      return { vm: spec.name, from, to, running: engine.vmOn(spec, to, await engine.qemuPid(spec.name, to)) };
    }
    events.detach();
    log(from, novaMessages.liveMigrationFailure(errorMessage(failure)));
    log(from, novaMessages.operationAborted());
    await this.flush();
    // A migration that failed in pre-copy leaves the guest running on the source.
    if (!this.closed && (await engine.runs(spec.name, from).catch(() => false))) return { vm: spec.name, from, to, running };
    throw failure;
  }

  flush(): Promise<void> {
    return this.nova.flush();
  }

  /** No more log lines; waits for those under way and closes the connections. */
  async close(): Promise<void> {
    this.closed = true;
    await this.nova.close();
    await Promise.all(Object.values(this.clients).map((c) => c.close()));
  }

  /** nova's lines for libvirt's events of one migration: the switch, the lifecycle events on both hosts. */
  private followEvents(name: string, from: LabHostName, to: LabHostName, log: (host: LabHostName, m: NovaMessage) => void): { ended(timeoutMs: number): Promise<void>; detach(): void } {
    const seen = { switching: false, postcopy: false, completed: false, started: false, resumed: false };
    let ended: () => void = () => undefined;
    const end = new Promise<void>((resolve) => (ended = resolve));
    const onSource = (event: DomainEvent): void => {
      if (event.domain.name !== name) return;
      // libvirt (--postcopy-after-precopy) switches once the first pass is done, when the second begins.
      const switching = (event.kind === 'migration-iteration' && event.iteration >= 2) || (event.kind === 'lifecycle' && event.event === 'suspended' && event.detail === 'postcopy');
      if (switching && !seen.switching) {
        seen.switching = true;
        log(from, novaMessages.switchingToPostcopy());
      }
      if (event.kind === 'lifecycle' && event.event === 'suspended' && event.detail === 'postcopy' && !seen.postcopy) {
        seen.postcopy = true;
        log(from, novaMessages.lifecycle('Postcopy started'));
      }
      const completed = event.kind === 'job-completed' || (event.kind === 'lifecycle' && event.event === 'stopped' && event.detail === 'migrated');
      if (completed && !seen.completed) {
        seen.completed = true;
        log(from, novaMessages.lifecycle('Migration completed'));
      }
      if (seen.completed && seen.resumed) ended();
    };
    const onDestination = (event: DomainEvent): void => {
      if (event.domain.name !== name || event.kind !== 'lifecycle') return;
      if (event.event === 'started' && !seen.started) {
        seen.started = true;
        log(to, novaMessages.lifecycle('Started'));
      }
      if (event.event === 'resumed' && !seen.resumed) {
        seen.resumed = true;
        log(to, novaMessages.lifecycle('Resumed'));
      }
      if (seen.completed && seen.resumed) ended();
    };
    this.clients[from].on('event', onSource);
    this.clients[to].on('event', onDestination);
    return {
      ended: (timeoutMs) => Promise.race([end, delay(timeoutMs)]),
      detach: () => {
        this.clients[from].off('event', onSource);
        this.clients[to].off('event', onDestination);
      },
    };
  }
}
