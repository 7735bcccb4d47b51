import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodePacket, PacketSplitter, type Packet } from '../../src/sources/libvirt/packet.js';
import { MessageStatus, MessageType, Procedure, REMOTE_PROGRAM } from '../../src/sources/libvirt/protocol.js';
import { XdrOut } from '../../src/sources/libvirt/xdr.js';
import { capturedPacket, withSerial } from './libvirt-fixtures.js';

export type Responder = (call: Packet) => Buffer | Buffer[] | null;

/** A reply built here (for the few procedures no capture holds): the call's header, type reply. */
export function replyTo(call: Packet, body: Buffer = Buffer.alloc(0), status: number = MessageStatus.ok): Buffer {
  return encodePacket({ ...call.header, type: MessageType.reply, status }, body);
}

/** A captured reply, given the serial of this call. */
export const captured =
  (name: string): Responder =>
  (call) =>
    withSerial(capturedPacket(name), call.header.serial);

/**
 * The daemon side of a unix socket that answers with packets captured from libvirt 9.0 (and a
 * few built ones), so that the client's handling of what a daemon sends (replies, errors,
 * garbage, silence) runs over a real socket. Not a model of libvirt: each test says what comes.
 */
export class ReplayDaemon {
  readonly calls: Packet[] = [];
  readonly received: Packet[] = [];
  private readonly responders = new Map<number, Responder>();
  private socket: Socket | undefined;
  private readonly connected: Promise<Socket>;

  private constructor(
    private readonly server: Server,
    private readonly dir: string,
    readonly path: string,
  ) {
    this.respond(Procedure.AUTH_LIST, captured('auth-list.reply'));
    this.respond(Procedure.CONNECT_SUPPORTS_FEATURE, (call) => replyTo(call, new XdrOut().int(1).bytes()));
    this.respond(Procedure.CONNECT_OPEN, (call) => replyTo(call));
    this.respond(Procedure.CONNECT_CLOSE, (call) => replyTo(call));
    this.respond(Procedure.CONNECT_GET_LIB_VERSION, captured('connect-get-lib-version.reply'));
    this.connected = new Promise((resolve) =>
      server.once('connection', (socket: Socket) => {
        this.socket = socket;
        const splitter = new PacketSplitter();
        socket.on('data', (chunk: Buffer) => {
          for (const frame of splitter.push(chunk)) if (frame.kind === 'packet') this.handle(frame.packet);
        });
        socket.on('error', () => undefined);
        resolve(socket);
      }),
    );
  }

  static async listen(): Promise<ReplayDaemon> {
    const dir = mkdtempSync(join(tmpdir(), 'lme-libvirt-replay-'));
    const path = join(dir, 'sock');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return new ReplayDaemon(server, dir, path);
  }

  /** How calls to this procedure are answered: one packet, several, or (null) none. */
  respond(procedure: number, responder: Responder): void {
    this.responders.set(procedure, responder);
  }

  /** Writes bytes to the client as they are (garbage, events, pieces of packets). */
  async send(bytes: Buffer): Promise<void> {
    const socket = await this.connected;
    await new Promise<void>((resolve, reject) => socket.write(bytes, (err) => (err ? reject(err) : resolve())));
  }

  /** An event message of the remote program with this body. */
  static message(procedure: number, body: Buffer): Buffer {
    return encodePacket({ program: REMOTE_PROGRAM, version: 1, procedure, type: MessageType.message, serial: 1, status: 0 }, body);
  }

  async hangUp(): Promise<void> {
    (await this.connected).destroy();
  }

  async close(): Promise<void> {
    this.socket?.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private handle(packet: Packet): void {
    this.received.push(packet);
    if (packet.header.program !== REMOTE_PROGRAM || packet.header.type !== MessageType.call) return;
    this.calls.push(packet);
    const answer = this.responders.get(packet.header.procedure)?.(packet);
    if (!answer) return;
    for (const raw of Array.isArray(answer) ? answer : [answer]) this.socket?.write(raw);
  }
}

