import { EventEmitter } from 'node:events';
import { Backoff } from '../../backoff.js';
import { LivemigError, errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { QmpSession } from './client.js';
import { describeQmpEndpoint, isQemuGone, openQmpSession, type OpenQmpSessionOptions } from './transports.js';
import type { QmpEndpoint, QmpEvent } from '../../qemu/types.js';

export interface QmpMonitorEvents {
  up: [session: QmpSession];
  down: [reason: Error];
  event: [event: QmpEvent];
  /** The session skipped a line that is not QMP. */
  'protocol-error': [error: Error];
  /** An attempt to open a session failed (a peer that never greets, a refused connection ...). */
  failed: [reason: Error];
}

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface QmpMonitorOptions {
  endpoint: QmpEndpoint;
  /** Opens one session; defaults to openQmpSession with `sessionOptions`. */
  open?: (endpoint: QmpEndpoint) => Promise<QmpSession>;
  sessionOptions?: OpenQmpSessionOptions;
  backoff?: { baseMs: number; capMs: number };
  random?: () => number;
  timers?: Timers;
  logger?: Logger;
}

export const DEFAULT_MONITOR_BACKOFF = { baseMs: 500, capMs: 30_000 };
/**
 * A session must hold this long before the backoff starts again from its base: a peer that
 * greets and then drops the connection would otherwise be reconnected to at the base delay for ever.
 */
export const STABLE_SESSION_MS = 10_000;

const systemTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Keeps one QMP session to one monitor up, reconnecting with backoff and full jitter.
 * A QEMU going away is normal (the source of every migration ends that way): it is logged at
 * info once, and the retries that follow at debug. Any other failure is a warning, once per
 * distinct reason.
 */
export class QmpMonitor extends EventEmitter<QmpMonitorEvents> {
  readonly target: string;
  private session: QmpSession | undefined;
  private started = false;
  private stopped = false;
  private everUp = false;
  private retryTimer: unknown;
  private attempt: Promise<void> | undefined;
  private lastDownReason: Error | undefined;
  /** The last failure already logged at info/warn; repeats of it go to debug. */
  private loggedFailure: string | undefined;
  private reconnects = 0;
  private failedAttempts = 0;
  private stableTimer: unknown;
  private readonly backoff: Backoff;
  private readonly timers: Timers;
  private readonly open: (endpoint: QmpEndpoint) => Promise<QmpSession>;
  private readonly logger: Logger | undefined;

  constructor(private readonly options: QmpMonitorOptions) {
    super();
    this.target = describeQmpEndpoint(options.endpoint);
    this.backoff = new Backoff({ ...(options.backoff ?? DEFAULT_MONITOR_BACKOFF), random: options.random });
    this.timers = options.timers ?? systemTimers;
    this.open = options.open ?? ((endpoint) => openQmpSession(endpoint, { logger: options.logger, ...options.sessionOptions }));
    this.logger = options.logger?.child({ target: this.target });
  }

  get isUp(): boolean {
    return this.session !== undefined;
  }

  /** Sessions opened after the first one. */
  get reconnectCount(): number {
    return this.reconnects;
  }

  get failedAttemptCount(): number {
    return this.failedAttempts;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.connect();
  }

  /** Stops reconnecting and closes the session; resolves when nothing is left open. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timers.clearTimeout(this.retryTimer);
    this.timers.clearTimeout(this.stableTimer);
    await this.attempt;
    const session = this.session;
    this.session = undefined;
    if (session) {
      session.off('event', this.forwardEvent);
      session.off('close', this.handleSessionClosed);
      await session.close();
    }
  }

  /** Runs a command on the current session; rejects at once with LME_QMP_CONNECT while down. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T> {
    if (!this.session) {
      const why = this.lastDownReason ? errorMessage(this.lastDownReason) : 'not connected yet';
      return Promise.reject(new LivemigError('LME_QMP_CONNECT', [this.target, why], { cause: this.lastDownReason }));
    }
    return this.session.execute<T>(command, args, timeoutMs);
  }

  private connect(): void {
    this.retryTimer = undefined;
    this.attempt = this.open(this.options.endpoint).then(
      (session) => this.handleOpened(session),
      (err: unknown) => this.handleOpenFailed(err instanceof Error ? err : new Error(String(err))),
    );
  }

  private async handleOpened(session: QmpSession): Promise<void> {
    this.attempt = undefined;
    if (this.stopped) {
      await session.close();
      return;
    }
    if (this.everUp) this.reconnects++;
    this.everUp = true;
    this.session = session;
    this.stableTimer = this.timers.setTimeout(() => this.backoff.reset(), STABLE_SESSION_MS);
    this.loggedFailure = undefined;
    this.lastDownReason = undefined;
    session.on('event', this.forwardEvent);
    session.on('protocol-error', this.forwardProtocolError);
    session.on('close', this.handleSessionClosed);
    this.logger?.info({ reconnects: this.reconnects }, 'QMP monitor up');
    this.emit('up', session);
  }

  private handleOpenFailed(err: Error): void {
    this.attempt = undefined;
    this.failedAttempts++;
    this.lastDownReason = err;
    if (this.stopped) return;
    const delayMs = this.backoff.nextDelayMs();
    this.logFailure(err, delayMs);
    this.emit('failed', err);
    this.scheduleConnect(delayMs);
  }

  private readonly forwardEvent = (event: QmpEvent): void => {
    this.emit('event', event);
  };

  private readonly forwardProtocolError = (error: Error): void => {
    this.emit('protocol-error', error);
  };

  private readonly handleSessionClosed = (reason: Error): void => {
    const session = this.session;
    if (!session) return;
    session.off('event', this.forwardEvent);
    session.off('protocol-error', this.forwardProtocolError);
    session.off('close', this.handleSessionClosed);
    this.session = undefined;
    this.timers.clearTimeout(this.stableTimer);
    this.lastDownReason = reason;
    if (this.stopped) return;
    const gone = isQemuGone(reason);
    // Logged once here; the failed reconnects that follow a QEMU exit are the same story.
    this.loggedFailure = gone ? 'gone' : errorMessage(reason);
    const entry = { reason: errorMessage(reason) };
    if (gone) this.logger?.info(entry, 'QMP monitor down: QEMU went away');
    else this.logger?.warn(entry, 'QMP monitor down');
    this.emit('down', reason);
    this.scheduleConnect(this.backoff.nextDelayMs());
  };

  private logFailure(err: Error, retryInMs: number): void {
    const gone = isQemuGone(err);
    const key = gone ? 'gone' : errorMessage(err);
    const entry = { reason: errorMessage(err), retryInMs, attempts: this.backoff.attempts };
    if (key === this.loggedFailure) {
      this.logger?.debug(entry, 'QMP monitor still unreachable');
      return;
    }
    this.loggedFailure = key;
    if (gone) this.logger?.info(entry, 'QMP monitor unreachable: QEMU not running');
    else this.logger?.warn(entry, 'QMP monitor unreachable');
  }

  private scheduleConnect(delayMs: number): void {
    this.retryTimer = this.timers.setTimeout(() => this.connect(), delayMs);
  }
}
