import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { systemClock, type Clock } from '../../clock.js';
import { LivemigError, errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import { encodePacket, PacketSplitter, type Packet } from './packet.js';
import {
  KEEPALIVE_PROGRAM,
  KEEPALIVE_PROTOCOL_VERSION,
  KeepaliveProcedure,
  MessageStatus,
  MessageType,
  procedureName,
  REMOTE_PROGRAM,
  REMOTE_PROTOCOL_VERSION,
} from './protocol.js';
import { LibvirtCallError } from './remote-error.js';
import { readRemoteError } from './wire.js';
import { decodeXdr, XdrDecodeError, type XdrIn } from './xdr.js';

export const DEFAULT_CALL_TIMEOUT_MS = 10_000;

export interface RpcConnectionEvents {
  /** A remote-program message (type 2): a domain event, body still in XDR. */
  message: [procedure: number, body: Buffer];
  /** The connection ended; every waiting call was rejected with the same reason. Emitted once. */
  close: [reason: LivemigError];
}

export interface RpcConnectionOptions {
  callTimeoutMs?: number;
  logger?: Logger;
  clock?: Clock;
  /** Sees every whole packet, both ways, as bytes: for captures. */
  tap?: (direction: 'in' | 'out', packet: Buffer) => void;
}

export interface KeepaliveOptions {
  /** Quiet time after which a PING is sent. */
  intervalMs: number;
  /** PINGs left unanswered before the connection is declared dead. */
  count: number;
}

interface PendingCall {
  procedure: number;
  decode: (input: XdrIn) => unknown;
  resolve: (value: unknown) => void;
  reject: (reason: Error) => void;
  timer?: NodeJS.Timeout;
}

/**
 * libvirt's RPC over one byte stream: serial-matched calls with timeouts, keepalive answers,
 * events handed on as bytes. Whatever the daemon sends, nothing is thrown from a stream
 * callback: a packet that cannot be parsed closes the connection with LME_LIBVIRT_PROTOCOL.
 */
export class RpcConnection extends EventEmitter<RpcConnectionEvents> {
  private readonly splitter = new PacketSplitter();
  private readonly pending = new Map<number, PendingCall>();
  private nextSerial = 1;
  private closeReason: LivemigError | undefined;
  private closingByUs = false;
  private lastStreamError: Error | undefined;
  private readonly streamClosed: Promise<void>;
  private readonly callTimeoutMs: number;
  private readonly logger: Logger | undefined;
  private readonly clock: Clock;
  private readonly tap: RpcConnectionOptions['tap'];
  private lastReceivedMs: number;
  private unansweredPings = 0;
  private keepaliveTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: Duplex,
    readonly target: string,
    options: RpcConnectionOptions = {},
  ) {
    super();
    this.callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    this.tap = options.tap;
    this.lastReceivedMs = this.clock.monoMs();
    this.streamClosed = new Promise((resolve) => stream.once('close', resolve));
    stream.once('close', () => this.finish(this.closedReason()));
    stream.on('error', (err: Error) => {
      this.lastStreamError = err;
    });
    stream.on('data', (chunk: Buffer | string) => {
      try {
        this.receive(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
      } catch (err) {
        // A bug in decoding must not escape into the stream's emitter (and crash the process).
        this.fail('internal', errorMessage(err), err);
      }
    });
  }

  get isClosed(): boolean {
    return this.closeReason !== undefined;
  }

  /** Calls a remote-program procedure; resolves with the decoded reply, rejects with a LivemigError. */
  call<T>(procedure: number, args: Buffer, decode: (input: XdrIn) => T, timeoutMs?: number): Promise<T> {
    if (this.closeReason) return Promise.reject(this.closeReason);
    const serial = this.nextSerial++;
    return new Promise<T>((resolve, reject) => {
      const entry: PendingCall = { procedure, decode, resolve: resolve as (value: unknown) => void, reject };
      const limit = timeoutMs ?? this.callTimeoutMs;
      if (limit > 0 && Number.isFinite(limit)) {
        entry.timer = setTimeout(() => {
          this.pending.delete(serial);
          reject(new LivemigError('LME_LIBVIRT_TIMEOUT', [procedureName(procedure), this.target, limit]));
        }, limit);
      }
      this.pending.set(serial, entry);
      this.send(
        encodePacket(
          { program: REMOTE_PROGRAM, version: REMOTE_PROTOCOL_VERSION, procedure, type: MessageType.call, serial, status: MessageStatus.ok },
          args,
        ),
      );
    });
  }

  /** Sends a PING whenever nothing came for intervalMs; after `count` unanswered ones, closes. */
  startKeepalive({ intervalMs, count }: KeepaliveOptions): void {
    if (this.keepaliveTimer || this.closeReason) return;
    this.keepaliveTimer = setInterval(() => {
      if (this.clock.monoMs() - this.lastReceivedMs < intervalMs) return;
      if (this.unansweredPings >= count) {
        const quiet = Math.round(this.clock.monoMs() - this.lastReceivedMs);
        this.closeWith(new LivemigError('LME_LIBVIRT_KEEPALIVE', [this.target, quiet, count]));
        return;
      }
      this.unansweredPings++;
      this.sendKeepalive(KeepaliveProcedure.PING);
    }, intervalMs);
    this.keepaliveTimer.unref();
  }

  /** Closes the stream; resolves once it is closed. Safe to call more than once. */
  async close(): Promise<void> {
    if (!this.closeReason) {
      this.closingByUs = true;
      this.stream.destroy();
    }
    await this.streamClosed;
  }

  /** Closes the connection because of what the client found (a body that cannot be decoded ...). */
  fail(what: string, detail: string, cause?: unknown): void {
    this.closeWith(new LivemigError('LME_LIBVIRT_PROTOCOL', [this.target, what, detail], { cause }));
  }

  private closeWith(reason: LivemigError): void {
    if (this.closeReason) return;
    this.finish(reason);
    this.stream.destroy();
  }

  private send(packet: Buffer): void {
    this.tap?.('out', packet);
    this.stream.write(packet);
  }

  private sendKeepalive(procedure: number): void {
    this.send(
      encodePacket({
        program: KEEPALIVE_PROGRAM,
        version: KEEPALIVE_PROTOCOL_VERSION,
        procedure,
        type: MessageType.message,
        serial: 0,
        status: MessageStatus.ok,
      }),
    );
  }

  private receive(chunk: Buffer): void {
    if (this.closeReason) return;
    this.lastReceivedMs = this.clock.monoMs();
    this.unansweredPings = 0;
    for (const frame of this.splitter.push(chunk)) {
      if (this.closeReason) return;
      if (frame.kind === 'bad-length') {
        this.fail('bad length', `length word ${frame.length} is outside 28 to 33554436 bytes; first bytes ${frame.raw.toString('hex')}`);
        return;
      }
      this.tap?.('in', frame.packet.raw);
      this.dispatch(frame.packet);
    }
  }

  private dispatch(packet: Packet): void {
    const { program, version, type, procedure } = packet.header;
    if (program === KEEPALIVE_PROGRAM && version === KEEPALIVE_PROTOCOL_VERSION && type === MessageType.message) {
      if (procedure === KeepaliveProcedure.PING) this.sendKeepalive(KeepaliveProcedure.PONG);
      return;
    }
    if (program !== REMOTE_PROGRAM) {
      this.fail('unknown program', `program 0x${program.toString(16)}, ${describeHeader(packet)}`);
      return;
    }
    if (version !== REMOTE_PROTOCOL_VERSION) {
      this.fail('unknown version', `version ${version}, ${describeHeader(packet)}`);
      return;
    }
    if (type === MessageType.reply) this.settle(packet);
    else if (type === MessageType.message) this.emit('message', procedure, packet.body);
    else this.fail('unexpected message type', describeHeader(packet));
  }

  private settle(packet: Packet): void {
    const { serial, status, procedure } = packet.header;
    const entry = this.pending.get(serial);
    if (!entry) {
      this.logger?.debug({ target: this.target, serial, procedure }, 'libvirt reply to no waiting call (late reply after a timeout?)');
      return;
    }
    if (entry.procedure !== procedure) {
      this.fail('reply to another procedure', `serial ${serial} was ${procedureName(entry.procedure)}, reply says ${procedureName(procedure)}`);
      return;
    }
    const name = procedureName(procedure);
    try {
      if (status === MessageStatus.ok) {
        const value = decodeXdr(`${name} reply`, packet.body, entry.decode);
        this.take(serial)?.resolve(value);
      } else if (status === MessageStatus.error) {
        const remote = decodeXdr(`${name} error reply`, packet.body, readRemoteError);
        this.take(serial)?.reject(new LibvirtCallError(name, this.target, remote));
      } else {
        this.fail('unknown reply status', describeHeader(packet));
      }
    } catch (err) {
      if (!(err instanceof XdrDecodeError)) throw err;
      this.fail('truncated or malformed XDR', `${err.message}; ${packet.body.length}-byte body ${excerptHex(packet.body)}`, err);
    }
  }

  private take(serial: number): PendingCall | undefined {
    const entry = this.pending.get(serial);
    this.pending.delete(serial);
    if (entry) clearTimeout(entry.timer);
    return entry;
  }

  private closedReason(): LivemigError {
    let why: string;
    if (this.closingByUs) why = 'closed by the exporter';
    else if (this.lastStreamError) why = errorMessage(this.lastStreamError);
    else why = 'end of stream';
    if (!this.closingByUs && this.splitter.pendingBytes > 0) why += ` in the middle of a packet (${this.splitter.pendingBytes} bytes of it received)`;
    return new LivemigError('LME_LIBVIRT_CLOSED', [this.target, why], { cause: this.lastStreamError });
  }

  private finish(reason: LivemigError): void {
    if (this.closeReason) return;
    this.closeReason = reason;
    clearInterval(this.keepaliveTimer);
    for (const entry of this.pending.values()) {
      clearTimeout(entry.timer);
      entry.reject(reason);
    }
    this.pending.clear();
    this.emit('close', reason);
  }
}

function describeHeader(packet: Packet): string {
  const h = packet.header;
  return `procedure ${h.procedure}, type ${h.type}, serial ${h.serial}, status ${h.status}, ${packet.body.length}-byte body`;
}

function excerptHex(bytes: Buffer, max = 64): string {
  const hex = bytes.subarray(0, max).toString('hex');
  return bytes.length > max ? `${hex}…` : hex;
}
