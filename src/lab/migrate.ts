import { systemClock, type Clock } from '../clock.js';
import { errorMessage, livemigError } from '../errors.js';
import type { QmpSession } from '../sources/qmp/client.js';
import { isQemuGone } from '../sources/qmp/transports.js';
import type { QmpEvent } from '../qemu/types.js';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * Plays libvirt/nova for ONE QEMU-level migration over QMP, and records what it saw so tests
 * can hold the exporter's record against it. Modes: 'precopy'; 'hybrid', libvirt's "one
 * pre-copy pass, then post-copy" (switch once MIGRATION_PASS reaches 2); 'postcopy', switch
 * right after `migrate`.
 */

export const MIGRATION_MODES = ['precopy', 'hybrid', 'postcopy'] as const;
export type MigrationMode = (typeof MIGRATION_MODES)[number];

export interface MigrationPlan {
  mode: MigrationMode;
  /**
   * `migrate` URI for the source, also the destination's `migrate-incoming` URI.
   * With a destination, `tcp:HOST:0` lets QEMU pick the port; prepare() reads it back.
   */
  uri: string;
  /** Bytes per second, pre-copy (`max-bandwidth`). */
  maxBandwidth: number;
  /** Bytes per second in post-copy (`max-postcopy-bandwidth`); default maxBandwidth. */
  maxPostcopyBandwidth?: number;
  /** QEMU's `downtime-limit` in ms (its default: 300). Pre-copy converges below bandwidth x this. */
  downtimeLimitMs?: number;
  /**
   * The destination's `postcopy-blocktime` capability (query-migrate postcopy-blocktime). Off by
   * default: with it on, the lab's Linux guest (QEMU 7.2, TCG) stopped answering for seconds
   * after the post-copy in about half the runs on a busy 2-core host, and never without it
   * (docs/outage-causes.md, "The lab").
   */
  postcopyBlocktime?: boolean;
}

/** A `query-migrate` reply as QEMU sent it. */
export interface QueryMigrateReply {
  status?: string;
  ram?: Record<string, number>;
  'error-desc'?: string;
  'socket-address'?: { type?: string; host?: string; port?: string }[];
  [field: string]: unknown;
}

export interface StatusChange {
  status: string;
  /** QEMU's time stamp of the MIGRATION event, ms since the epoch. */
  qemuWallMs: number;
  /** Orchestrator's monotonic clock when the event arrived. */
  monoMs: number;
}

export interface SideObservation {
  /** MIGRATION events in arrival order. */
  statuses: StatusChange[];
  /** Every QMP event during the migration (MIGRATION, MIGRATION_PASS, STOP, RESUME ...). */
  events: QmpEvent[];
  /** Last status seen, from events or query-migrate; 'gone' when the monitor closed first. */
  finalStatus: string;
  /** The last query-migrate reply, taken after the final status (absent when gone). */
  final?: QueryMigrateReply;
  gone: boolean;
}

export interface MigrationOutcome {
  mode: MigrationMode;
  /** The URI the source migrated to (with the port the destination got). */
  uri: string;
  source: SideObservation & { passes: number[] };
  destination?: SideObservation;
  /** When `migrate-start-postcopy` was sent (monotonic ms), and after which pass. */
  postcopyRequested?: { monoMs: number; afterPass: number };
  startedMonoMs: number;
  endedMonoMs: number;
}

export interface MigrationSides {
  source: QmpSession;
  /** Absent for migrations that never reach one (a URI nobody listens on). */
  destination?: QmpSession;
}

/** Statuses a migration rests in; a destination never reports 'cancelled' (it fails, then exits). */
export const FINAL_STATUSES: readonly string[] = ['completed', 'failed', 'cancelled', 'postcopy-paused'];
/** How long the destination may take to report once the source failed or was cancelled. */
export const DESTINATION_GRACE_MS = 2_000;
const POLL_MS = 200;
const SETTLE_ATTEMPTS = 25;
const SETTLE_DELAY_MS = 20;

export class MigrationDriver {
  private readonly source: SideWatch;
  private readonly destination: SideWatch | undefined;
  private uri: string;
  private startedMonoMs: number | undefined;
  private switchTask: Promise<void> | undefined;
  private postcopyRequested: MigrationOutcome['postcopyRequested'];

  constructor(
    sides: MigrationSides,
    private readonly plan: MigrationPlan,
    private readonly clock: Clock = systemClock,
  ) {
    checkPlan(plan);
    this.uri = plan.uri;
    this.source = new SideWatch(sides.source, clock);
    this.destination = sides.destination && new SideWatch(sides.destination, clock);
  }

  /** Capabilities on both sides, limits on the source, `migrate-incoming`. Returns the URI to migrate to. */
  async prepare(): Promise<string> {
    const capabilities = [
      { capability: 'events', state: true },
      { capability: 'postcopy-ram', state: this.plan.mode !== 'precopy' },
    ];
    const parameters: Record<string, number> = {
      'max-bandwidth': this.plan.maxBandwidth,
      'max-postcopy-bandwidth': this.plan.maxPostcopyBandwidth ?? this.plan.maxBandwidth,
    };
    if (this.plan.downtimeLimitMs !== undefined) parameters['downtime-limit'] = this.plan.downtimeLimitMs;
    await this.source.session.execute('migrate-set-capabilities', { capabilities });
    await this.source.session.execute('migrate-set-parameters', parameters);
    if (this.destination) {
      const blocktime = this.plan.postcopyBlocktime && this.plan.mode !== 'precopy' ? [{ capability: 'postcopy-blocktime', state: true }] : [];
      await this.destination.session.execute('migrate-set-capabilities', { capabilities: [...capabilities, ...blocktime] });
      await this.destination.session.execute('migrate-incoming', { uri: this.plan.uri });
      this.uri = withListeningPort(this.plan.uri, await this.destination.query());
    }
    return this.uri;
  }

  /** Sends `migrate`; in post-copy modes, arranges the switch. */
  async start(): Promise<void> {
    this.startedMonoMs = this.clock.monoMs();
    await this.source.session.execute('migrate', { uri: this.uri });
    if (this.plan.mode === 'postcopy') await this.requestPostcopy(0);
    if (this.plan.mode === 'hybrid') {
      this.switchTask = this.switchAfterFirstPass();
      this.switchTask.catch(() => undefined); // finish() reports it
    }
  }

  /** `migrate_cancel` on the source. */
  async cancel(): Promise<void> {
    await cancelMigration(this.source.session);
  }

  /** Waits until a side reports one of the statuses (or its monitor closes); returns the status. */
  waitForStatus(side: 'source' | 'destination', statuses: readonly string[], timeoutMs: number): Promise<string> {
    return this.watch(side).waitFor(statuses, this.clock.monoMs() + timeoutMs, this.uri);
  }

  /**
   * Waits for a QMP event on a side, e.g. RESUME on the destination: the guest runs there, which
   * the destination's MIGRATION "postcopy-active" does not yet mean.
   */
  async waitForEvent(side: 'source' | 'destination', eventName: string, timeoutMs: number): Promise<QmpEvent> {
    const watch = this.watch(side);
    const find = (): QmpEvent | undefined => watch.events.find((event) => event.event === eventName);
    await watch.waitUntil(() => find() !== undefined, this.clock.monoMs() + timeoutMs);
    const event = find();
    if (!event) throw livemigError('LME_LAB_MIGRATION', this.uri, `no ${eventName} event from ${watch.session.target} within ${timeoutMs} ms`);
    return event;
  }

  /** Waits for the final status on both sides, queries them once more and stops watching. */
  async finish(timeoutMs: number): Promise<MigrationOutcome> {
    if (this.startedMonoMs === undefined) throw livemigError('LME_LAB_MIGRATION', this.uri, 'finish() before start()');
    const deadline = this.clock.monoMs() + timeoutMs;
    try {
      const sourceStatus = await this.source.waitFor(FINAL_STATUSES, deadline, this.uri);
      await this.switchTask;
      if (this.destination) {
        const destinationDeadline =
          sourceStatus === 'completed' ? deadline : Math.min(deadline, this.clock.monoMs() + DESTINATION_GRACE_MS);
        await this.destination.waitFor(FINAL_STATUSES, destinationDeadline, this.uri).catch(() => undefined);
      }
      const endedMonoMs = this.clock.monoMs();
      const [source, destination] = await Promise.all([this.source.conclude(), this.destination?.conclude()]);
      return {
        mode: this.plan.mode,
        uri: this.uri,
        source: { ...source, passes: this.source.passes() },
        ...(destination && { destination }),
        ...(this.postcopyRequested && { postcopyRequested: this.postcopyRequested }),
        startedMonoMs: this.startedMonoMs,
        endedMonoMs,
      };
    } finally {
      this.dispose();
    }
  }

  /** Stops listening to both monitors (finish() does it). The sessions stay open. */
  dispose(): void {
    this.source.detach();
    this.destination?.detach();
  }

  private watch(side: 'source' | 'destination'): SideWatch {
    const watch = side === 'source' ? this.source : this.destination;
    if (!watch) throw livemigError('LME_LAB_MIGRATION', this.uri, 'this migration has no destination monitor');
    return watch;
  }

  private async switchAfterFirstPass(): Promise<void> {
    const firstPassDone = (): boolean =>
      Math.max(0, ...this.source.passes()) >= 2 || (this.source.lastReply?.ram?.['dirty-sync-count'] ?? 0) >= 2;
    const ended = (): boolean => FINAL_STATUSES.includes(this.source.status);
    await this.source.waitUntil(() => firstPassDone() || ended(), Infinity);
    // Not when pre-copy converged first, the monitor went away or the driver was disposed.
    if (firstPassDone() && !ended() && !this.source.gone) await this.requestPostcopy(Math.max(0, ...this.source.passes()));
  }

  private async requestPostcopy(afterPass: number): Promise<void> {
    this.postcopyRequested = { monoMs: this.clock.monoMs(), afterPass };
    await this.source.session.execute('migrate-start-postcopy');
  }
}

/** prepare(), start() and finish() in one go. */
export async function migrateOnce(sides: MigrationSides, plan: MigrationPlan, timeoutMs: number, clock?: Clock): Promise<MigrationOutcome> {
  const driver = new MigrationDriver(sides, plan, clock);
  try {
    await driver.prepare();
    await driver.start();
  } catch (err) {
    driver.dispose();
    throw err;
  }
  return driver.finish(timeoutMs);
}

export async function cancelMigration(source: QmpSession): Promise<void> {
  await source.execute('migrate_cancel');
}

function checkPlan(plan: MigrationPlan): void {
  const bad = (detail: string): never => {
    throw livemigError('LME_LAB_MIGRATION', plan.uri, detail);
  };
  if (!MIGRATION_MODES.includes(plan.mode)) bad(`mode ${String(plan.mode)} is not one of ${MIGRATION_MODES.join(', ')}`);
  if (!/^(tcp|unix|exec|fd|rdma):/.test(plan.uri)) bad('uri must be a QEMU migration URI such as tcp:127.0.0.1:4444');
  for (const [field, value] of [
    ['maxBandwidth', plan.maxBandwidth],
    ['maxPostcopyBandwidth', plan.maxPostcopyBandwidth],
    ['downtimeLimitMs', plan.downtimeLimitMs],
  ] as const) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value <= 0)) bad(`${field} ${value} is not a positive whole number`);
  }
}

/** `tcp:HOST:0` becomes `tcp:HOST:PORT` with the port the destination reports listening on. */
export function withListeningPort(uri: string, reply: QueryMigrateReply): string {
  const match = /^tcp:(.+):0$/.exec(uri);
  if (!match) return uri;
  const port = reply['socket-address']?.find((address) => address.port !== undefined)?.port;
  if (!port) throw livemigError('LME_LAB_MIGRATION', uri, `destination reports no listening port: ${JSON.stringify(reply)}`);
  return `tcp:${match[1]}:${port}`;
}

/**
 * QEMU 7.2 emits MIGRATION "completed" (and answers query-migrate with it) a moment before it
 * computes the totals: for a few ms the source's reply says completed with total-time 0.
 */
function settled(reply: QueryMigrateReply): boolean {
  return !(reply.status === 'completed' && reply.ram !== undefined && !reply['total-time']);
}


/** One monitor's view: its events, its last status, and waits on them. */
class SideWatch {
  status = 'none';
  lastReply: QueryMigrateReply | undefined;
  gone = false;
  private detached = false;
  readonly events: QmpEvent[] = [];
  readonly statuses: StatusChange[] = [];
  private wakers: (() => void)[] = [];
  private readonly onEvent = (event: QmpEvent): void => this.record(event);
  private readonly onClose = (): void => {
    this.gone = true;
    this.wake();
  };

  constructor(
    readonly session: QmpSession,
    private readonly clock: Clock,
  ) {
    session.on('event', this.onEvent);
    session.on('close', this.onClose);
  }

  passes(): number[] {
    return this.events.filter((e) => e.event === 'MIGRATION_PASS').map((e) => Number(e.data?.pass));
  }

  async query(): Promise<QueryMigrateReply> {
    const reply = await this.session.execute<QueryMigrateReply>('query-migrate');
    this.lastReply = reply;
    if (reply.status) this.status = reply.status;
    return reply;
  }

  /** Resolves with the status once it is one of `statuses`, or 'gone'. */
  async waitFor(statuses: readonly string[], deadlineMonoMs: number, uri: string): Promise<string> {
    const status = await this.waitUntil(() => statuses.includes(this.status), deadlineMonoMs);
    if (status === 'timeout') {
      throw livemigError('LME_LAB_MIGRATION', uri, `${this.session.target} still "${this.status}", waited for ${statuses.join('|')}`);
    }
    return status;
  }

  /**
   * Waits for `done()`, re-checking on every event and, as a backstop for missed events,
   * on a query-migrate every POLL_MS. Returns the status, 'gone', or 'timeout' (also once detached).
   */
  async waitUntil(done: () => boolean, deadlineMonoMs: number): Promise<string> {
    for (;;) {
      if (done()) return this.status;
      if (this.gone) return 'gone';
      const left = deadlineMonoMs - this.clock.monoMs();
      if (left <= 0 || this.detached) return 'timeout';
      const woken = await this.sleep(Math.min(POLL_MS, left));
      if (!woken && !this.gone) await this.query().catch((err: unknown) => this.noteQueryFailure(err));
    }
  }

  async conclude(): Promise<SideObservation> {
    for (let attempt = 1; !this.gone; attempt++) {
      const reply = await this.query().catch((err: unknown) => this.noteQueryFailure(err));
      if (!reply || settled(reply) || attempt >= SETTLE_ATTEMPTS) break;
      await delay(SETTLE_DELAY_MS);
    }
    return {
      statuses: [...this.statuses],
      events: [...this.events],
      finalStatus: this.gone ? 'gone' : this.status,
      ...(!this.gone && this.lastReply && { final: this.lastReply }),
      gone: this.gone,
    };
  }

  detach(): void {
    this.detached = true;
    this.session.off('event', this.onEvent);
    this.session.off('close', this.onClose);
    this.wake();
  }

  private record(event: QmpEvent): void {
    this.events.push(event);
    const status = event.data?.status;
    if (event.event === 'MIGRATION' && typeof status === 'string') {
      this.status = status;
      this.statuses.push({
        status,
        qemuWallMs: event.timestamp.seconds * 1000 + event.timestamp.microseconds / 1000,
        monoMs: this.clock.monoMs(),
      });
    }
    this.wake();
  }

  private noteQueryFailure(err: unknown): undefined {
    if (isQemuGone(err)) {
      this.gone = true;
      return undefined;
    }
    throw livemigError('LME_LAB_MIGRATION', this.session.target, `query-migrate failed: ${errorMessage(err)}`);
  }

  /** Resolves true when woken by an event or close, false when the time ran out. */
  private sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakers = this.wakers.filter((w) => w !== waker);
        resolve(false);
      }, ms);
      const waker = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.wakers.push(waker);
    });
  }

  private wake(): void {
    const wakers = this.wakers;
    this.wakers = [];
    for (const waker of wakers) waker();
  }
}
