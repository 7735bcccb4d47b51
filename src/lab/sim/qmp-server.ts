import { rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { QmpFramer } from '../../sources/qmp/framing.js';

/**
 * QMP over a unix socket, as QEMU speaks it (greeting, `qmp_capabilities`, `{"return"}` and
 * `{"error"}` replies carrying the command's id, events with time stamps), for the lab's
 * SIMULATED engine. Any number of clients; commands are answered by a handler.
 */

export type QmpReply = { return: unknown } | { error: { class: string; desc: string } };
export type QmpHandler = (command: string, args: Record<string, unknown>) => QmpReply;

export const SIM_QEMU_VERSION = { qemu: { major: 7, minor: 2, micro: 0 }, package: 'livemig-exporter lab SIMULATED' };

export function qmpError(desc: string, errorClass = 'GenericError'): QmpReply {
  return { error: { class: errorClass, desc } };
}

export class SimQmpServer {
  private readonly clients = new Set<Socket>();
  private server: Server | undefined;

  private constructor(
    readonly path: string,
    private readonly handler: QmpHandler,
  ) {}

  static async listen(path: string, handler: QmpHandler): Promise<SimQmpServer> {
    await rm(path, { force: true });
    const sim = new SimQmpServer(path, handler);
    const server = createServer((socket) => sim.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    sim.server = server;
    return sim;
  }

  /** Sends an event to every client that has negotiated capabilities. */
  emit(event: string, atMs: number, data?: Record<string, unknown>): void {
    const timestamp = { seconds: Math.floor(atMs / 1000), microseconds: Math.floor((atMs % 1000) * 1000) };
    const line = `${JSON.stringify({ timestamp, event, ...(data ? { data } : {}) })}\r\n`;
    for (const client of this.clients) if (negotiated.has(client)) client.write(line);
  }

  async close(): Promise<void> {
    for (const client of this.clients) client.destroy();
    this.clients.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await rm(this.path, { force: true });
  }

  private accept(socket: Socket): void {
    this.clients.add(socket);
    socket.on('close', () => this.clients.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.write(`${JSON.stringify({ QMP: { version: SIM_QEMU_VERSION, capabilities: ['oob'] } })}\r\n`);
    const framer = new QmpFramer(`unix:${this.path}`);
    socket.on('data', (chunk: Buffer) => {
      for (const frame of framer.push(chunk)) {
        if (frame.kind === 'error') {
          socket.write(`${JSON.stringify(qmpError('JSON parse error'))}\r\n`);
          continue;
        }
        socket.write(`${JSON.stringify(this.answer(socket, frame.message))}\r\n`);
      }
    });
  }

  private answer(socket: Socket, message: Record<string, unknown>): Record<string, unknown> {
    const id = 'id' in message ? { id: message.id } : {};
    const command = message.execute;
    if (typeof command !== 'string') return { ...qmpError("QMP input lacks member 'execute'"), ...id };
    if (command === 'qmp_capabilities') {
      if (negotiated.has(socket)) return { ...qmpError("Capabilities negotiation is already complete, command ignored", 'CommandNotFound'), ...id };
      negotiated.add(socket);
      return { return: {}, ...id };
    }
    if (!negotiated.has(socket)) {
      return { ...qmpError(`Expecting capabilities negotiation with 'qmp_capabilities'`, 'CommandNotFound'), ...id };
    }
    const args = message.arguments;
    const reply = this.handler(command, typeof args === 'object' && args !== null ? (args as Record<string, unknown>) : {});
    return { ...reply, ...id };
  }
}

const negotiated = new WeakSet<Socket>();
