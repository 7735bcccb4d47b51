/**
 * The libvirt source: one read-only libvirt connection per host (its socket on this machine, or
 * forwarded over the host's SSH connection), no process per VM, and no QEMU monitor command, so
 * no domain is tainted.
 *
 * - Idle, it only listens: lifecycle, migration-iteration and job-completed events for every
 *   domain, plus a domain list at start, after each reconnect and every `listIntervalMs`.
 * - While a domain's migration job runs on this host (its first migration-iteration event, or a
 *   job found by a list), it polls that domain's job statistics every `jobPollIntervalMs`
 *   (nova's 2 Hz by default). The final figures come from the job-completed event, else from
 *   the completed statistics, kept for others with KEEP_COMPLETED.
 * - A destination has no job statistics: its lifecycle events tell its side.
 * Everything is turned into the tracker's observations (migration-reports.ts does the mapping).
 */
import type { Clock } from '../../clock.js';
import { Backoff } from '../../backoff.js';
import { errorMessage, LivemigError, type SourceErrorReason } from '../../errors.js';
import type { Host } from '../../hosts/host.js';
import type { Logger } from '../../log.js';
import { libvirtMonitorId, type MonitorRef, type Observation } from '../../observations.js';
import type { MigrationInfo } from '../../qemu/types.js';
import type { MonitorState } from '../qmp/source.js';
import type { LibvirtClient } from './client.js';
import { parseDomainXml, type DomainDescription } from './domain-xml.js';
import type { DomainEvent } from './events.js';
import { eventReports, isOutgoingMigration, isRunningJob, jobStatsInfo, type DomainRole, type LibvirtReport } from './migration-reports.js';
import { openLibvirt } from './socket.js';
import type { DomainRef } from './wire.js';

/** virConnectListAllDomainsFlags: VIR_CONNECT_LIST_DOMAINS_ACTIVE. */
const LIST_ACTIVE = 1;
/** XML descriptions read at once for new domains. */
const DESCRIBE_AT_ONCE = 8;
/** After a job ended, how long its job-completed event may trail the poll that saw the end. */
const COMPLETED_EVENT_GRACE_MS = 1_000;

export interface LibvirtSourceOptions {
  host: Host;
  /** The socket path on the host; unset: the read-only sockets of libvirtd and virtqemud. */
  socketPath?: string;
  uri: string;
  clock: Clock;
  logger: Logger;
  jobPollIntervalMs: number;
  listIntervalMs: number;
  callTimeoutMs: number;
  reconnect: { baseMs: number; capMs: number };
  /** The watched VM a domain is, or null to leave it alone. */
  vmOf(domain: DomainDescription): string | null;
  /** The running domains changed (a list, a domain started or stopped). */
  onDomains(host: string, domains: DomainDescription[]): void | Promise<void>;
  onObservation(observation: Observation): void;
  onError(host: string, reason: SourceErrorReason): void;
  /** A client is open (tests: capture its packets; nothing else needs it). */
  open?: (host: Host, options: { socketPath?: string; uri: string; callTimeoutMs: number; logger: Logger; clock: Clock }) => Promise<LibvirtClient>;
}

interface Domain {
  ref: DomainRef;
  description: DomainDescription | null;
  role: DomainRole;
  /** Switched to post-copy (libvirt's job statistics do not say so). */
  postcopy: boolean;
  /** Job statistics polled while a migration job runs here. */
  polling: NodeJS.Timeout | null;
  polls: number;
  /** The job's final figures arrived (job-completed, or the completed statistics). */
  finished: boolean;
  /** Its job was being polled when the connection dropped: looked at again once reconnected. */
  interrupted: boolean;
  /** Stopped after migrating out, its job-completed event still to come: the report of its going waits for it. */
  departing: NodeJS.Timeout | null;
  info: MigrationInfo | null;
}

export class LibvirtSource {
  private client: LibvirtClient | null = null;
  private readonly domains = new Map<string, Domain>();
  /** Source domains that stopped after migrating out and whose job-completed event is awaited. */
  private readonly departed = new Map<string, Domain>();
  private readonly backoff: Backoff;
  private stopped = false;
  private reconnects = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private listTimer: NodeJS.Timeout | null = null;
  private lastError: string | null = null;
  private isUp = false;

  constructor(private readonly options: LibvirtSourceOptions) {
    this.backoff = new Backoff(options.reconnect);
  }

  get hostName(): string {
    return this.options.host.name;
  }

  get up(): boolean {
    return this.isUp;
  }

  /** Connects (or schedules the retry); resolves after the first attempt. */
  async start(): Promise<void> {
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of [this.reconnectTimer, this.listTimer]) if (timer) clearTimeout(timer);
    for (const d of this.domains.values()) this.stopPolling(d);
    for (const d of this.departed.values()) if (d.departing) clearTimeout(d.departing);
    const client = this.client;
    this.client = null;
    await client?.close();
  }

  /** Domains whose migration job is watched, for the QEMU metrics (their latest figures). */
  *views(): Iterable<MonitorState> {
    for (const d of this.domains.values()) {
      if (!d.info) continue;
      const vm = this.vmName(d);
      if (vm === null) continue;
      yield { ref: this.refOf(vm), endpoint: `libvirt:${this.hostName}/${d.ref.name}`, up: this.isUp, reconnects: this.reconnects, info: d.info, runState: null, lastProblem: 'none' };
    }
  }

  /** Looks at the domains again now, e.g. after the watched VMs changed. */
  async relist(): Promise<void> {
    if (this.client) await this.list(this.client);
  }

  private async connect(): Promise<void> {
    const { host, socketPath, uri, callTimeoutMs, logger, clock } = this.options;
    const open = this.options.open ?? ((h, o) => openLibvirt(h, { ...o, readOnly: true }));
    let client: LibvirtClient;
    try {
      client = await open(host, { ...(socketPath ? { socketPath } : {}), uri, callTimeoutMs, logger, clock });
    } catch (err) {
      this.failed(err, 'connect');
      return;
    }
    if (this.stopped) {
      await client.close();
      return;
    }
    this.client = client;
    client.on('event', (event) => this.onEvent(event));
    client.once('close', (reason) => this.onClose(client, reason));
    try {
      for (const event of ['LIFECYCLE', 'MIGRATION_ITERATION', 'JOB_COMPLETED'] as const) await client.registerDomainEvent(event);
      await this.list(client);
    } catch (err) {
      this.client = null;
      this.failed(err, reasonOf(err));
      await client.close();
      return;
    }
    this.isUp = true;
    this.backoff.reset();
    if (this.lastError) logger.info({ host: this.hostName, target: client.target }, 'libvirt reachable again');
    else logger.info({ host: this.hostName, target: client.target, libvirt: client.libVersion }, 'watching libvirt');
    this.lastError = null;
  }

  private failed(err: unknown, reason: SourceErrorReason): void {
    this.isUp = false;
    this.options.onError(this.hostName, reason);
    const message = errorMessage(err);
    if (message !== this.lastError) this.options.logger.warn({ host: this.hostName, err: message }, 'cannot watch libvirt; retrying');
    this.lastError = message;
    this.scheduleReconnect();
  }

  private onClose(client: LibvirtClient, reason: LivemigError): void {
    if (this.client !== client) return;
    this.client = null;
    this.isUp = false;
    if (this.listTimer) clearTimeout(this.listTimer);
    for (const d of this.domains.values()) {
      if (d.polling) d.interrupted = true;
      this.stopPolling(d);
    }
    if (this.stopped) return;
    this.reconnects++;
    this.options.onError(this.hostName, 'connect');
    this.lastError = reason.message;
    this.options.logger.warn({ host: this.hostName, err: reason.message }, 'libvirt connection lost; reconnecting');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect();
    }, Math.max(100, this.backoff.nextDelayMs()));
  }

  // --- the domain list -------------------------------------------------------------------------

  private async list(client: LibvirtClient): Promise<void> {
    if (this.listTimer) clearTimeout(this.listTimer);
    try {
      const running = await client.listAllDomains(LIST_ACTIVE);
      const names = new Set(running.map((r) => r.name));
      for (const [name, d] of this.domains) {
        if (names.has(name)) continue;
        this.stopPolling(d);
        this.domains.delete(name);
      }
      const fresh = running.filter((r) => !this.domains.has(r.name) || this.domains.get(r.name)?.ref.uuid !== r.uuid);
      for (const ref of fresh) this.domains.set(ref.name, newDomain(ref));
      await this.describe(client, [...this.domains.values()].filter((d) => d.description === null));
      // A migration under way when we (re)connected: its job is polled from now on.
      await Promise.all(fresh.map((ref) => this.domains.get(ref.name)).map((d) => d && this.checkJob(client, d)));
      // A migration followed when the connection dropped (libvirtd restarted, the SSH tunnel broke):
      // its job is polled again, and if it ended meanwhile its completed statistics or the
      // domain's state tell how; else nothing would until the stale timeout.
      for (const d of this.domains.values()) {
        if (!d.interrupted) continue;
        d.interrupted = false;
        if (!d.polling && !d.finished) this.startPolling(client, d);
      }
      await this.announceDomains();
    } finally {
      if (!this.stopped && this.client === client) this.listTimer = setTimeout(() => void this.list(client).catch((err: unknown) => this.listFailed(err)), this.options.listIntervalMs);
    }
  }

  private listFailed(err: unknown): void {
    this.options.onError(this.hostName, reasonOf(err));
    this.options.logger.warn({ host: this.hostName, err: errorMessage(err) }, 'cannot list libvirt domains');
  }

  private async describe(client: LibvirtClient, domains: Domain[]): Promise<void> {
    for (let i = 0; i < domains.length; i += DESCRIBE_AT_ONCE) {
      await Promise.all(
        domains.slice(i, i + DESCRIBE_AT_ONCE).map(async (d) => {
          try {
            d.description = parseDomainXml(await client.getXmlDesc(d.ref), `domain ${d.ref.name} on ${this.hostName}`);
          } catch (err) {
            // Watched by name and UUID alone; the next list tries again.
            this.options.logger.warn({ host: this.hostName, domain: d.ref.name, err: errorMessage(err) }, 'cannot read the domain XML');
          }
        }),
      );
    }
  }

  private async announceDomains(): Promise<void> {
    const described = [...this.domains.values()].map((d) => d.description ?? bare(d.ref));
    await this.options.onDomains(this.hostName, described);
  }

  // --- events ----------------------------------------------------------------------------------

  private onEvent(event: DomainEvent): void {
    const client = this.client;
    if (!client) return;
    let d = this.domains.get(event.domain.name);
    if (event.kind === 'lifecycle' && event.event === 'started') {
      if (!d || d.ref.uuid !== event.domain.uuid) {
        d = newDomain(event.domain);
        this.domains.set(event.domain.name, d);
      }
      if (event.detail === 'migrated') d.role = 'destination';
      const known = d;
      void this.describe(client, [known]).then(() => this.announceDomains()).catch((err: unknown) => this.listFailed(err));
    }
    d ??= this.departed.get(event.domain.name);
    if (!d) return;
    if (event.kind === 'migration-iteration' && d.role !== 'source') {
      // A save or a dump iterates too: only a migration leaving this host is one.
      const at = this.now();
      const known = d;
      void this.checkJob(client, known).then((migrating) => migrating && this.emitAll(known, eventReports(event, known.role), at));
      return;
    }
    if (event.kind === 'lifecycle' && event.event === 'suspended' && event.detail === 'postcopy') d.postcopy = true;
    const reports = eventReports(event, d.role);
    if (event.kind === 'job-completed' && reports.length > 0) {
      d.finished = true;
      const completed = reports[0];
      if (completed?.kind === 'status') d.info = completed.info;
    }
    const departing = event.kind === 'lifecycle' && event.event === 'stopped' && event.detail === 'migrated' && d.role === 'source' && !d.finished;
    // libvirt sends "stopped migrated" before job-completed: the source's final figures come after its end.
    this.emitAll(d, departing ? reports.filter((r) => r.kind !== 'gone') : reports);
    if (event.kind === 'job-completed' && d.departing) this.depart(d);
    if (event.kind === 'lifecycle' && event.event === 'stopped') {
      this.stopPolling(d);
      this.domains.delete(d.ref.name);
      if (departing) {
        const known = d;
        this.departed.set(d.ref.name, d);
        d.departing = setTimeout(() => this.depart(known), COMPLETED_EVENT_GRACE_MS * 3);
      }
      void this.announceDomains();
    }
  }

  /** The departed source domain's going, once its final figures came or stopped being awaited. */
  private depart(d: Domain): void {
    if (d.departing) clearTimeout(d.departing);
    d.departing = null;
    if (this.departed.get(d.ref.name) === d) this.departed.delete(d.ref.name);
    this.emitAll(d, [{ kind: 'gone', reason: 'libvirt: domain stopped migrated', what: 'lifecycle event stopped migrated' }]);
  }

  // --- job statistics while a migration job runs ------------------------------------------------

  /** Whether the domain has a running outgoing migration job; if so, its job is polled from now on. */
  private async checkJob(client: LibvirtClient, d: Domain): Promise<boolean> {
    try {
      const job = await client.getJobStats(d.ref);
      if (!isRunningJob(job.typeName) || !isOutgoingMigration(job.stats)) return false;
      if (d.role !== 'source') {
        d.role = 'source';
        const state = await client.getState(d.ref);
        d.postcopy = state.reasonName === 'postcopy';
      }
      if (!d.polling) this.startPolling(client, d);
      return true;
    } catch (err) {
      this.options.logger.debug({ host: this.hostName, domain: d.ref.name, err: errorMessage(err) }, 'cannot read job statistics');
      return false;
    }
  }

  private startPolling(client: LibvirtClient, d: Domain): void {
    d.finished = false;
    d.polls = 0;
    const tick = async (): Promise<void> => {
      d.polling = null;
      if (this.client !== client || this.stopped) return;
      const more = await this.pollJob(client, d);
      if (more && this.client === client && !this.stopped) d.polling = setTimeout(() => void tick(), this.options.jobPollIntervalMs);
    };
    d.polling = setTimeout(() => void tick(), 0);
  }

  private stopPolling(d: Domain): void {
    if (d.polling) clearTimeout(d.polling);
    d.polling = null;
  }

  /** One poll; false once the job has ended. */
  private async pollJob(client: LibvirtClient, d: Domain): Promise<boolean> {
    let job;
    try {
      job = await client.getJobStats(d.ref);
    } catch (err) {
      if (client.isClosed) return false;
      this.options.onError(this.hostName, reasonOf(err));
      // The domain went away (its migration completed): the lifecycle event says the rest.
      if (err instanceof LivemigError && /no domain|not found|not running/i.test(err.message)) return false;
      this.options.logger.warn({ host: this.hostName, domain: d.ref.name, err: errorMessage(err) }, 'cannot read job statistics');
      return true;
    }
    d.polls++;
    if (isRunningJob(job.typeName)) {
      if (!isOutgoingMigration(job.stats)) return true;
      const info = jobStatsInfo(job.typeName, job.stats, d.postcopy);
      if (info) {
        d.info = info;
        this.emitAll(d, [{ kind: 'status', info, what: 'job stats (poll time)' }]);
      }
      return true;
    }
    this.options.logger.debug({ host: this.hostName, domain: d.ref.name, type: job.typeName, polls: d.polls }, 'migration job ended');
    if (!d.finished) setTimeout(() => void this.readCompleted(client, d), COMPLETED_EVENT_GRACE_MS).unref();
    return false;
  }

  /** The job ended without its job-completed event (a failure, a cancel, an event lost): its completed statistics. */
  private async readCompleted(client: LibvirtClient, d: Domain): Promise<void> {
    if (d.finished || client.isClosed || this.stopped) return;
    try {
      const job = await client.getJobStats(d.ref, { completed: true, keep: true });
      const info = isOutgoingMigration(job.stats) ? jobStatsInfo(job.typeName, job.stats, d.postcopy) : null;
      if (d.finished) return;
      if (!info) {
        // libvirt 9.0 keeps no statistics of a cancelled or failed migration: the domain's state tells.
        await this.settleWithoutStatistics(client, d, job.typeName);
        return;
      }
      d.finished = true;
      d.info = info;
      this.emitAll(d, [{ kind: 'status', info, what: 'completed job stats' }]);
    } catch (err) {
      this.options.logger.debug({ host: this.hostName, domain: d.ref.name, err: errorMessage(err) }, 'no completed job statistics');
    }
  }

  /**
   * A migration job that ended leaving no statistics, on a domain that still runs here: it did not
   * complete (a completed source stops). Cancelled when libvirt says so in the state's reason.
   */
  private async settleWithoutStatistics(client: LibvirtClient, d: Domain, type: string): Promise<void> {
    let state;
    try {
      state = await client.getState(d.ref);
    } catch (err) {
      this.options.logger.debug({ host: this.hostName, domain: d.ref.name, type, err: errorMessage(err) }, 'the ended job left no statistics and the domain is gone');
      return;
    }
    if (d.finished || state.stateName === 'shutoff') return;
    const cancelled = state.reasonName === 'migration-canceled';
    const errorDesc = cancelled
      ? 'libvirt: the migration was cancelled (the domain runs here, reason migration-canceled)'
      : `libvirt: the migration job ended without completing and libvirt kept no statistics of it (a cancel or a failure: libvirt 9.0 keeps neither); the domain still runs here (${state.stateName}, ${state.reasonName})`;
    const info: MigrationInfo = { status: cancelled ? 'cancelled' : 'failed', incoming: false, origin: 'libvirt', errorDesc };
    d.finished = true;
    d.info = info;
    this.emitAll(d, [{ kind: 'status', info, what: `domain state ${state.stateName} ${state.reasonName} after its job ended` }]);
  }

  // --- observations ----------------------------------------------------------------------------

  private vmName(d: Domain): string | null {
    return this.options.vmOf(d.description ?? bare(d.ref));
  }

  private refOf(vm: string): MonitorRef {
    return { vm, host: this.hostName, monitor: libvirtMonitorId(this.hostName) };
  }

  private now(): { wallMs: number; monoMs: number } {
    return { wallMs: this.options.clock.wallMs(), monoMs: this.options.clock.monoMs() };
  }

  /** libvirt's events carry no time stamp: `at` is when the exporter received the report. */
  private emitAll(d: Domain, reports: LibvirtReport[], at = this.now()): void {
    const vm = this.vmName(d);
    if (vm === null || reports.length === 0) return;
    const base = { ref: this.refOf(vm), ...at, origin: 'libvirt' as const };
    for (const r of reports) {
      const what = { what: r.what };
      if (r.kind === 'status') this.options.onObservation({ ...base, ...what, kind: 'qmp-status', info: r.info, ...(r.runState ? { runState: r.runState } : {}) });
      else if (r.kind === 'event') this.options.onObservation({ ...base, ...what, kind: 'qmp-event', event: r.event, data: r.data });
      else this.options.onObservation({ ...base, ...what, kind: 'monitor-gone', reason: r.reason });
    }
  }
}

function newDomain(ref: DomainRef): Domain {
  return { ref, description: null, role: null, postcopy: false, polling: null, polls: 0, finished: false, interrupted: false, departing: null, info: null };
}

/** A domain whose XML could not be read: its name and UUID from the list. */
function bare(ref: DomainRef): DomainDescription {
  return { name: ref.name, uuid: ref.uuid, nova: null, interfaces: [] };
}

function reasonOf(err: unknown): SourceErrorReason {
  if (!(err instanceof LivemigError)) return 'protocol';
  switch (err.code) {
    case 'LME_LIBVIRT_TIMEOUT':
    case 'LME_LIBVIRT_KEEPALIVE':
      return 'timeout';
    case 'LME_LIBVIRT_CALL':
      return 'command';
    case 'LME_LIBVIRT_CONNECT':
    case 'LME_LIBVIRT_AUTH':
    case 'LME_LIBVIRT_CLOSED':
      return 'connect';
    default:
      return 'protocol';
  }
}
