import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, it, expect } from 'vitest';
import { QmpCommandError, QmpStreamClient, classifyQmpMessage } from '../../src/sources/qmp/client.js';
import type { QmpEvent } from '../../src/qemu/types.js';
import { rejection } from '../helpers/rejection.js';

/*
 * Protocol corners real QEMU cannot be made to show on demand (replies without id, replies
 * after a timeout, a wrong greeting), played by a scripted QMP server on a unix socket.
 * The same behaviours against a real QEMU are in test/integration/qmp-qemu.test.ts.
 */

const GREETING = '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}';

interface Request {
  execute: string;
  id?: unknown;
  arguments?: unknown;
}

interface ScriptedServer {
  path: string;
  /** Every request received, in order. */
  requests: Request[];
  close(): Promise<void>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A QMP server: sends `greeting` (unless null), answers qmp_capabilities, hands other requests to `onRequest`. */
async function scriptedServer(onRequest: (request: Request, socket: Socket) => void, greeting: string | null = GREETING): Promise<ScriptedServer> {
  const dir = mkdtempSync(join(tmpdir(), 'lme-qmp-client-'));
  const path = join(dir, 'qmp.sock');
  const requests: Request[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    if (greeting !== null) socket.write(`${greeting}\r\n`);
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) !== -1) {
        const request = JSON.parse(buffered.slice(0, newline)) as Request;
        buffered = buffered.slice(newline + 1);
        requests.push(request);
        if (request.execute === 'qmp_capabilities') socket.write(`${JSON.stringify({ return: {}, id: request.id })}\r\n`);
        else onRequest(request, socket);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const scripted: ScriptedServer = {
    path,
    requests,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  cleanups.push(() => scripted.close());
  return scripted;
}

async function connect(server: ScriptedServer, options: Parameters<typeof QmpStreamClient.open>[2] = {}): Promise<QmpStreamClient> {
  const socket = createConnection({ path: server.path });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const client = await QmpStreamClient.open(socket, `unix:${server.path}`, options);
  cleanups.push(() => client.close());
  return client;
}

function reply(socket: Socket, message: Record<string, unknown>): void {
  socket.write(`${JSON.stringify(message)}\r\n`);
}

/** Polls a condition on real I/O progress (a request reaching the server), never a fixed sleep. */
async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setImmediate(resolve));
  }
}


describe('QmpStreamClient against a scripted QMP server', () => {
  it('negotiates capabilities after the greeting', async () => {
    const server = await scriptedServer(() => {});
    const client = await connect(server);
    expect(client.greeting?.QMP.version.qemu.major).toBe(7);
    expect(server.requests.map((r) => r.execute)).toEqual(['qmp_capabilities']);
  });

  it('matches replies by id even when they come out of order', async () => {
    const held: { request: Request; socket: Socket }[] = [];
    const server = await scriptedServer((request, socket) => {
      held.push({ request, socket });
      if (held.length === 2) for (const { request: r, socket: s } of held.reverse()) reply(s, { return: r.execute, id: r.id });
    });
    const client = await connect(server);
    const results = await Promise.all([client.execute('first'), client.execute('second')]);
    expect(results).toEqual(['first', 'second']);
  });

  it('gives a reply without id to the oldest waiting command', async () => {
    const server = await scriptedServer((request, socket) => reply(socket, { return: request.execute }));
    const client = await connect(server);
    expect(await Promise.all([client.execute('a'), client.execute('b'), client.execute('c')])).toEqual(['a', 'b', 'c']);
  });

  it('sends arguments and a fresh id with each command', async () => {
    const server = await scriptedServer((request, socket) => reply(socket, { return: {}, id: request.id }));
    const client = await connect(server);
    await client.execute('migrate-set-parameters', { 'max-bandwidth': 1024 });
    await client.execute('query-migrate');
    const [, first, second] = server.requests;
    expect(first).toMatchObject({ execute: 'migrate-set-parameters', arguments: { 'max-bandwidth': 1024 } });
    expect(second).not.toHaveProperty('arguments');
    expect(first?.id).not.toEqual(second?.id);
  });

  it('emits events that arrive between a command and its reply, and still resolves the command', async () => {
    const server = await scriptedServer((request, socket) => {
      reply(socket, { event: 'STOP', timestamp: { seconds: 1, microseconds: 2 } });
      reply(socket, { return: { status: 'paused' }, id: request.id });
    });
    const client = await connect(server);
    const events: QmpEvent[] = [];
    client.on('event', (event) => events.push(event));
    expect(await client.execute('stop')).toEqual({ status: 'paused' });
    expect(events).toEqual([{ event: 'STOP', timestamp: { seconds: 1, microseconds: 2 } }]);
  });

  it('rejects an error reply with LME_QMP_COMMAND carrying class and desc', async () => {
    const server = await scriptedServer((request, socket) =>
      reply(socket, { id: request.id, error: { class: 'CommandNotFound', desc: 'The command nope has not been found' } }),
    );
    const client = await connect(server);
    const err = await rejection(client.execute('nope'));
    expect(err).toBeInstanceOf(QmpCommandError);
    expect(err.code).toBe('LME_QMP_COMMAND');
    expect(err.message).toBe(`QMP command nope on unix:${server.path} failed: CommandNotFound: The command nope has not been found`);
    expect((err as QmpCommandError).qmpClass).toBe('CommandNotFound');
  });

  it('times out one command only; its late reply is not taken for the next command', async () => {
    let slow: { request: Request; socket: Socket } | undefined;
    const server = await scriptedServer((request, socket) => {
      if (request.execute === 'slow') slow = { request, socket };
      else reply(socket, { return: request.execute, id: request.id });
    });
    const client = await connect(server);
    const err = await rejection(client.execute('slow', undefined, 50));
    expect(err.code).toBe('LME_QMP_TIMEOUT');
    expect(err.message).toBe(`QMP command slow on unix:${server.path} got no reply within 50 ms`);
    const next = client.execute('fast');
    reply(slow!.socket, { return: 'late', id: slow!.request.id });
    expect(await next).toBe('fast');
  });

  it('does not give the late id-less reply of a timed-out command to the next command', async () => {
    const pendingSockets: Socket[] = [];
    const server = await scriptedServer((_request, socket) => pendingSockets.push(socket));
    const client = await connect(server);
    await rejection(client.execute('slow', undefined, 30));
    const next = client.execute('next');
    await until(() => pendingSockets.length === 2);
    reply(pendingSockets[0]!, { return: 'for slow' });
    reply(pendingSockets[0]!, { return: 'for next' });
    expect(await next).toBe('for next');
  });

  it('rejects every pending command with LME_QMP_CLOSED and emits close when the peer goes', async () => {
    const server = await scriptedServer(() => {});
    const client = await connect(server);
    const closed = new Promise<Error>((resolve) => client.on('close', resolve));
    const pending = [client.execute('a'), client.execute('b')].map(rejection);
    await until(() => server.requests.length === 3);
    await server.close();
    const errors = await Promise.all(pending);
    expect(errors.map((e) => e.code)).toEqual(['LME_QMP_CLOSED', 'LME_QMP_CLOSED']);
    expect((await closed).message).toBe(`QMP monitor unix:${server.path} closed the connection: end of stream`);
    expect((await rejection(client.execute('after'))).code).toBe('LME_QMP_CLOSED');
  });

  it('keeps working after a line that is not QMP', async () => {
    const server = await scriptedServer((request, socket) => {
      socket.write('this is not json\r\n');
      reply(socket, { return: 'ok', id: request.id });
    });
    const logLines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => logLines.push(line) });
    const client = await connect(server, { logger });
    const protocolErrors: string[] = [];
    client.on('protocol-error', (err) => protocolErrors.push(err.code));
    expect(await client.execute('x')).toBe('ok');
    // Told to whoever counts it (the QMP source: livemig_source_errors_total{reason="protocol"}).
    expect(protocolErrors).toEqual(['LME_QMP_PROTOCOL']);
    const warning = logLines.map((line) => JSON.parse(line) as { level: number; raw?: string }).find((entry) => entry.level === 40);
    expect(warning?.raw).toBe('this is not json');
  });

  it('refuses a peer whose first message is not the greeting', async () => {
    const server = await scriptedServer(() => {}, '{"return": {}}');
    const err = await rejection(connect(server));
    expect(err.code).toBe('LME_QMP_PROTOCOL');
    expect(err.message).toContain('expected the QMP greeting');
  });

  it('times out a peer that never greets', async () => {
    const server = await scriptedServer(() => {}, null);
    const err = await rejection(connect(server, { handshakeTimeoutMs: 50 }));
    expect(err.code).toBe('LME_QMP_TIMEOUT');
  });

  it('close() rejects pending commands and resolves once closed', async () => {
    const server = await scriptedServer(() => {});
    const client = await connect(server);
    const pending = rejection(client.execute('a'));
    await client.close();
    const err = await pending;
    expect(err.code).toBe('LME_QMP_CLOSED');
    expect(err.message).toContain('closed by the exporter');
    await client.close();
  });
});

describe('classifyQmpMessage', () => {
  it.each(['events.7.2.src.hybrid.json', 'events.7.2.dst.hybrid.json'])('reads every real event in %s', (file) => {
    const events = JSON.parse(readFileSync(new URL(`../fixtures/qmp/${file}`, import.meta.url), 'utf8')) as Record<string, unknown>[];
    for (const message of events) {
      expect(classifyQmpMessage(message)).toEqual({ kind: 'event', event: message });
    }
  });

  it('treats an event without timestamp as not QMP', () => {
    expect(classifyQmpMessage({ event: 'STOP' })).toEqual({ kind: 'unknown' });
  });
});
