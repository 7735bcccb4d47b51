import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { LivemigError, errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import { QmpFramer, excerpt, isPlainObject, type QmpFrame } from './framing.js';
import type { QmpEvent, QmpGreeting } from '../../qemu/types.js';

export interface QmpSessionEvents {
  /** An asynchronous QMP event (MIGRATION, STOP, RESUME ...). */
  event: [event: QmpEvent];
  /** The session ended; every pending command has been rejected. Emitted once. */
  close: [reason: Error];
  /** A line that is not QMP (LME_QMP_PROTOCOL), skipped; the session goes on. */
  'protocol-error': [error: LivemigError];
}

/** One live conversation with one QEMU monitor, whatever carries it (socket or virsh). */
export interface QmpSession {
  /** Names the monitor in logs and errors, e.g. "unix:/run/vm1.qmp" or "virsh:qemu:///system/vm1". */
  readonly target: string;
  /**
   * Runs a QMP command and resolves with its `return` value.
   * Rejects with LME_QMP_COMMAND (QEMU's error reply), LME_QMP_TIMEOUT or LME_QMP_CLOSED.
   * A timeoutMs of 0 or less waits for ever.
   */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  on<K extends keyof QmpSessionEvents>(eventName: K, listener: (...args: QmpSessionEvents[K]) => void): this;
  off<K extends keyof QmpSessionEvents>(eventName: K, listener: (...args: QmpSessionEvents[K]) => void): this;
  /** Ends the session; resolves once it is closed. Safe to call more than once. */
  close(): Promise<void>;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

/** QEMU answered a command with `{"error": {"class", "desc"}}`. */
export class QmpCommandError extends LivemigError {
  constructor(
    readonly command: string,
    target: string,
    readonly qmpClass: string,
    readonly qmpDesc: string,
  ) {
    super('LME_QMP_COMMAND', [command, target, `${qmpClass}: ${qmpDesc}`]);
  }
}

export type ClassifiedMessage =
  | { kind: 'greeting'; greeting: QmpGreeting }
  | { kind: 'event'; event: QmpEvent }
  | { kind: 'return'; id: unknown; value: unknown }
  | { kind: 'error'; id: unknown; errorClass: string; desc: string }
  | { kind: 'unknown' };

/** Tells QMP's four message kinds apart (qmp-spec.rst): greeting, event, success, error. */
export function classifyQmpMessage(message: Record<string, unknown>): ClassifiedMessage {
  if (isPlainObject(message.QMP)) return { kind: 'greeting', greeting: message as unknown as QmpGreeting };
  if (typeof message.event === 'string') {
    const timestamp = message.timestamp;
    if (!isPlainObject(timestamp) || typeof timestamp.seconds !== 'number' || typeof timestamp.microseconds !== 'number') {
      return { kind: 'unknown' };
    }
    const event: QmpEvent = {
      event: message.event,
      timestamp: { seconds: timestamp.seconds, microseconds: timestamp.microseconds },
    };
    if (isPlainObject(message.data)) event.data = message.data;
    return { kind: 'event', event };
  }
  if ('return' in message) return { kind: 'return', id: message.id, value: message.return };
  if (isPlainObject(message.error)) {
    const { class: errorClass, desc } = message.error;
    return {
      kind: 'error',
      id: message.id,
      errorClass: typeof errorClass === 'string' ? errorClass : 'unknown',
      desc: typeof desc === 'string' ? desc : JSON.stringify(message.error),
    };
  }
  return { kind: 'unknown' };
}

export interface QmpStreamOptions {
  /** Default per-command timeout. */
  commandTimeoutMs?: number;
  /** Time allowed for the greeting and for `qmp_capabilities`, each. */
  handshakeTimeoutMs?: number;
  maxLineBytes?: number;
  logger?: Logger;
}

interface PendingCommand {
  command: string;
  resolve: (value: unknown) => void;
  reject: (reason: Error) => void;
  timer?: NodeJS.Timeout;
}

/**
 * QMP over a byte stream (unix or tcp socket). Commands carry a numeric `id` and replies are
 * matched on it; a reply without id (QEMU omits it only when it could not parse the request)
 * goes to the oldest command still waiting, since in-band replies come in issue order.
 */
export class QmpStreamClient extends EventEmitter<QmpSessionEvents> implements QmpSession {
  private qemuGreeting: QmpGreeting | undefined;

  private readonly framer: QmpFramer;
  private readonly pending = new Map<number, PendingCommand>();
  /** Ids sent and not yet answered, in issue order, including commands that timed out. */
  private readonly unanswered: number[] = [];
  private nextId = 1;
  private closeReason: Error | undefined;
  private closingByUs = false;
  private lastStreamError: Error | undefined;
  private greetingWaiter: { resolve: (greeting: QmpGreeting) => void; reject: (reason: Error) => void } | undefined;
  private readonly closed: Promise<void>;
  private readonly commandTimeoutMs: number;
  private readonly logger: Logger | undefined;

  /** Reads the greeting, negotiates capabilities and resolves with a ready session. */
  static async open(stream: Duplex, target: string, options: QmpStreamOptions = {}): Promise<QmpStreamClient> {
    const client = new QmpStreamClient(stream, target, options);
    const handshakeTimeoutMs = options.handshakeTimeoutMs ?? client.commandTimeoutMs;
    try {
      client.qemuGreeting = await client.waitForGreeting(handshakeTimeoutMs);
      await client.execute('qmp_capabilities', undefined, handshakeTimeoutMs);
      return client;
    } catch (err) {
      await client.close();
      throw err;
    }
  }

  private constructor(
    private readonly stream: Duplex,
    readonly target: string,
    options: QmpStreamOptions,
  ) {
    super();
    this.framer = new QmpFramer(target, { maxLineBytes: options.maxLineBytes });
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.logger = options.logger;
    this.closed = new Promise((resolve) => {
      stream.once('close', () => {
        this.handleStreamClosed();
        resolve();
      });
    });
    stream.on('data', (chunk: Buffer | string) => this.handleFrames(this.framer.push(chunk)));
    stream.on('error', (err: Error) => {
      this.lastStreamError = err;
    });
  }

  /** What QEMU said on connect: its version and capabilities. */
  get greeting(): QmpGreeting | undefined {
    return this.qemuGreeting;
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T> {
    if (this.closeReason) return Promise.reject(this.closeReason);
    const id = this.nextId++;
    const request: Record<string, unknown> = { execute: command, id };
    if (args !== undefined) request.arguments = args;
    return new Promise<T>((resolve, reject) => {
      const entry: PendingCommand = { command, resolve: resolve as (value: unknown) => void, reject };
      const limit = timeoutMs ?? this.commandTimeoutMs;
      if (limit > 0 && Number.isFinite(limit)) {
        entry.timer = setTimeout(() => {
          // The command stays in `unanswered`: its late reply must not be taken for another's.
          this.pending.delete(id);
          reject(new LivemigError('LME_QMP_TIMEOUT', [command, this.target, limit]));
        }, limit);
      }
      this.pending.set(id, entry);
      this.unanswered.push(id);
      this.stream.write(`${JSON.stringify(request)}\n`);
    });
  }

  async close(): Promise<void> {
    if (!this.closeReason) {
      this.closingByUs = true;
      this.stream.destroy();
    }
    await this.closed;
  }

  private waitForGreeting(timeoutMs: number): Promise<QmpGreeting> {
    if (this.closeReason) return Promise.reject(this.closeReason);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.greetingWaiter = undefined;
        reject(new LivemigError('LME_QMP_TIMEOUT', ['(greeting)', this.target, timeoutMs]));
      }, timeoutMs);
      this.greetingWaiter = {
        resolve: (greeting) => {
          clearTimeout(timer);
          resolve(greeting);
        },
        reject: (reason) => {
          clearTimeout(timer);
          reject(reason);
        },
      };
    });
  }

  private handleFrames(frames: QmpFrame[]): void {
    for (const frame of frames) {
      if (frame.kind === 'error') {
        this.logger?.warn({ target: this.target, raw: frame.raw }, frame.error.message);
        this.emit('protocol-error', frame.error);
        continue;
      }
      this.handleMessage(frame.message);
    }
  }

  private handleMessage(message: Record<string, unknown>): void {
    const classified = classifyQmpMessage(message);
    const waiter = this.greetingWaiter;
    if (waiter) {
      this.greetingWaiter = undefined;
      if (classified.kind === 'greeting') waiter.resolve(classified.greeting);
      else waiter.reject(this.protocolError(`expected the QMP greeting, got ${excerpt(JSON.stringify(message))}`));
      return;
    }
    switch (classified.kind) {
      case 'event':
        this.emit('event', classified.event);
        return;
      case 'return':
        this.settle(classified.id, (entry) => entry.resolve(classified.value));
        return;
      case 'error':
        this.settle(classified.id, (entry) =>
          entry.reject(new QmpCommandError(entry.command, this.target, classified.errorClass, classified.desc)),
        );
        return;
      case 'greeting':
      case 'unknown':
        this.logger?.warn({ target: this.target, raw: excerpt(JSON.stringify(message)) }, 'unexpected QMP message ignored');
    }
  }

  private settle(id: unknown, apply: (entry: PendingCommand) => void): void {
    const replyTo = id === undefined ? this.unanswered.shift() : this.takeUnanswered(id);
    const entry = replyTo === undefined ? undefined : this.pending.get(replyTo);
    if (replyTo === undefined || !entry) {
      this.logger?.debug({ target: this.target, id }, 'QMP reply to no waiting command (late reply after a timeout?)');
      return;
    }
    this.pending.delete(replyTo);
    clearTimeout(entry.timer);
    apply(entry);
  }

  private takeUnanswered(id: unknown): number | undefined {
    const index = this.unanswered.findIndex((candidate) => candidate === id);
    if (index === -1) return undefined;
    return this.unanswered.splice(index, 1)[0];
  }

  private handleStreamClosed(): void {
    if (this.closeReason) return;
    this.handleFrames(this.framer.finish());
    const why = this.closingByUs
      ? 'closed by the exporter'
      : this.lastStreamError
        ? errorMessage(this.lastStreamError)
        : 'end of stream';
    const reason = new LivemigError('LME_QMP_CLOSED', [this.target, why], { cause: this.lastStreamError });
    this.closeReason = reason;
    this.greetingWaiter?.reject(reason);
    this.greetingWaiter = undefined;
    for (const entry of this.pending.values()) {
      clearTimeout(entry.timer);
      entry.reject(reason);
    }
    this.pending.clear();
    this.unanswered.length = 0;
    this.emit('close', reason);
  }

  private protocolError(detail: string): LivemigError {
    return new LivemigError('LME_QMP_PROTOCOL', [this.target, detail]);
  }
}
