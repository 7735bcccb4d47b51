import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, it, expect } from 'vitest';
import { QmpCommandError, QmpStreamClient, type QmpSession } from '../../src/sources/qmp/client.js';
import { QmpMonitor } from '../../src/sources/qmp/monitor.js';
import { openQmpSession } from '../../src/sources/qmp/transports.js';
import type { QmpEndpoint, QmpEvent } from '../../src/qemu/types.js';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { rejection } from '../helpers/rejection.js';

const QEMU = 'qemu-system-x86_64';

type UnixEndpoint = Extract<QmpEndpoint, { kind: 'unix' }>;

interface RunningQemu {
  child: ChildProcess;
  exited: Promise<void>;
  /** The two unix monitors: one for the code under test, one playing the orchestrator. */
  unixA: UnixEndpoint;
  unixB: UnixEndpoint;
}

const workDir = mkdtempSync(join(tmpdir(), 'lme-qmp-qemu-'));
const started = new Set<ChildProcess>();
const openSessions = new Set<QmpSession>();

/** A real QEMU with no guest: `-machine none` accepts several -qmp monitors and runs stop/cont. */
function startQemu(name: string, extraQmp: string[] = []): RunningQemu {
  const unixA: UnixEndpoint = { kind: 'unix', path: join(workDir, `${name}-a.qmp`) };
  const unixB: UnixEndpoint = { kind: 'unix', path: join(workDir, `${name}-b.qmp`) };
  const args = ['-machine', 'none', '-nodefaults', '-display', 'none'];
  for (const monitor of [`unix:${unixA.path},server=on,wait=off`, `unix:${unixB.path},server=on,wait=off`, ...extraQmp]) {
    args.push('-qmp', monitor);
  }
  const child = spawn(QEMU, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  started.add(child);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      started.delete(child);
      resolve();
    }),
  );
  return { child, exited, unixA, unixB };
}

async function kill(qemu: RunningQemu): Promise<void> {
  if (qemu.child.exitCode === null && qemu.child.signalCode === null) process.kill(qemu.child.pid!, 'SIGKILL');
  await qemu.exited;
}

/** Opens a session as soon as QEMU has created its socket. */
async function openWhenReady(endpoint: QmpEndpoint, timeoutMs = 10_000): Promise<QmpSession> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const session = await openQmpSession(endpoint, { connectTimeoutMs: 2000 });
      openSessions.add(session);
      return session;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

async function tcpEndpointOf(session: QmpSession): Promise<QmpEndpoint> {
  const chardevs = await session.execute<{ filename: string }[]>('query-chardev');
  for (const { filename } of chardevs) {
    const match = /tcp:([\d.]+):(\d+),server/.exec(filename);
    if (match) return { kind: 'tcp', host: match[1]!, port: Number(match[2]) };
  }
  throw new Error(`no tcp monitor in ${JSON.stringify(chardevs)}`);
}

function nextEvent(session: QmpSession, name: string): Promise<QmpEvent> {
  return new Promise((resolve) => {
    const listener = (event: QmpEvent): void => {
      if (event.event !== name) return;
      session.off('event', listener);
      resolve(event);
    };
    session.on('event', listener);
  });
}


afterEach(async () => {
  for (const session of openSessions) await session.close();
  openSessions.clear();
});

afterAll(() => {
  for (const child of started) if (child.pid) process.kill(child.pid, 'SIGKILL');
  rmSync(workDir, { recursive: true, force: true });
});

describe.runIf(requireEnvironment(missingTools(QEMU), needsRoot()))('QMP against a real QEMU', () => {
  let qemu: RunningQemu;
  let orchestrator: QmpSession;
  const endpoints: Record<'unix' | 'tcp', QmpEndpoint> = {} as Record<'unix' | 'tcp', QmpEndpoint>;

  beforeAll(async () => {
    qemu = startQemu('shared', ['tcp:127.0.0.1:0,server=on,wait=off']);
    orchestrator = await openWhenReady(qemu.unixB);
    openSessions.delete(orchestrator);
    endpoints.unix = qemu.unixA;
    endpoints.tcp = await tcpEndpointOf(orchestrator);
  });

  afterAll(async () => {
    await orchestrator?.close();
    if (qemu) await kill(qemu);
  });

  describe.each(['unix', 'tcp'] as const)('over %s', (kind) => {
    it('reads the greeting and negotiates capabilities', async () => {
      const session = await openWhenReady(endpoints[kind]);
      expect(session).toBeInstanceOf(QmpStreamClient);
      expect((session as QmpStreamClient).greeting?.QMP.version.qemu.major).toBeGreaterThanOrEqual(7);
      // Before qmp_capabilities QEMU answers every other command with CommandNotFound.
      expect(await session.execute('query-status')).toMatchObject({ running: expect.any(Boolean) });
    });

    it('matches several commands in flight to their own replies', async () => {
      const session = await openWhenReady(endpoints[kind]);
      const [status, version, name, migrate, commands] = await Promise.all([
        session.execute<{ status: string }>('query-status'),
        session.execute<{ qemu: { major: number } }>('query-version'),
        session.execute<Record<string, unknown>>('query-name'),
        session.execute<Record<string, unknown>>('query-migrate'),
        session.execute<{ name: string }[]>('query-commands'),
      ]);
      expect(status.status).toMatch(/running|paused/);
      expect(version.qemu.major).toBeGreaterThanOrEqual(7);
      expect(name).toEqual({});
      expect(migrate).toEqual({});
      expect(commands.map((c) => c.name)).toContain('query-migrate');
    });

    it('emits STOP and RESUME from the orchestrator while its own queries run', async () => {
      const session = await openWhenReady(endpoints[kind]);
      const events: string[] = [];
      session.on('event', (event) => events.push(event.event));
      const queries: Promise<unknown>[] = [];
      const stopped = nextEvent(session, 'STOP');
      const resumed = nextEvent(session, 'RESUME');
      for (let i = 0; i < 20; i++) queries.push(session.execute('query-migrate'));
      await orchestrator.execute('stop');
      for (let i = 0; i < 20; i++) queries.push(session.execute('query-status'));
      await orchestrator.execute('cont');
      for (let i = 0; i < 20; i++) queries.push(session.execute('query-migrate'));
      const replies = await Promise.all(queries);
      await Promise.all([stopped, resumed]);
      expect(events).toEqual(['STOP', 'RESUME']);
      expect(replies.slice(0, 20)).toEqual(Array(20).fill({}));
      expect(replies.slice(40)).toEqual(Array(20).fill({}));
      for (const reply of replies.slice(20, 40)) expect(reply).toHaveProperty('status');
    });

    it('takes an event between a command and its reply as an event, not as the reply', async () => {
      const session = await openWhenReady(endpoints[kind]);
      const events: string[] = [];
      session.on('event', (event) => events.push(event.event));
      // QEMU 7.2 sends STOP while it runs `stop`, before the reply (and RESUME likewise for `cont`):
      // the event sits between command and reply on the wire.
      expect(await session.execute('stop')).toEqual({});
      expect(events).toEqual(['STOP']);
      expect(await session.execute('cont')).toEqual({});
      expect(events).toEqual(['STOP', 'RESUME']);
    });

    it("rejects QEMU's error reply with its class and desc", async () => {
      const session = await openWhenReady(endpoints[kind]);
      const err = await rejection(session.execute('no-such-command'));
      expect(err).toBeInstanceOf(QmpCommandError);
      expect(err.message).toContain('CommandNotFound: The command no-such-command has not been found');
      expect(await session.execute('query-migrate')).toEqual({});
    });
  });
});

describe.runIf(requireEnvironment(missingTools(QEMU), needsRoot()))('QMP when QEMU dies', () => {
  it("emits 'close' and rejects pending commands with LME_QMP_CLOSED when QEMU is killed", async () => {
    const qemu = startQemu('killed');
    const session = await openWhenReady(qemu.unixA);
    const closed = new Promise<Error>((resolve) => session.on('close', resolve));
    // A frozen QEMU reads no command, so this one is still pending when QEMU dies.
    process.kill(qemu.child.pid!, 'SIGSTOP');
    const pending = rejection(session.execute('query-status'));
    await kill(qemu);
    const err = await pending;
    expect(err.code).toBe('LME_QMP_CLOSED');
    expect(err.message).toContain(qemu.unixA.path);
    expect((await closed).message).toBe(err.message);
  });

  it('QmpMonitor comes back after QEMU is restarted on the same socket path, without warnings', async () => {
    const logLines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => logLines.push(JSON.parse(line) as { level: number; msg: string }) });
    let qemu = startQemu('restarted');
    // Wait for the socket through the second monitor, so the first attempt finds QEMU up.
    await (await openWhenReady(qemu.unixB)).close();
    const monitor = new QmpMonitor({ endpoint: qemu.unixA, backoff: { baseMs: 20, capMs: 200 }, logger });
    const ups: QmpSession[] = [];
    const downs: Error[] = [];
    let onUp = (): void => {};
    monitor.on('up', (session) => {
      ups.push(session);
      onUp();
    });
    monitor.on('down', (reason) => downs.push(reason));
    const waitUp = (count: number): Promise<void> =>
      new Promise((resolve) => {
        onUp = () => ups.length >= count && resolve();
        onUp();
      });
    try {
      monitor.start();
      await waitUp(1);
      expect(await monitor.execute('query-migrate')).toEqual({});

      await kill(qemu);
      await expect.poll(() => downs.length).toBe(1);
      await expect(monitor.execute('query-migrate')).rejects.toMatchObject({ code: 'LME_QMP_CONNECT' });
      // Let it fail to reconnect a few times, as while a migrated-away QEMU is gone.
      await expect.poll(() => monitor.failedAttemptCount, { timeout: 5000 }).toBeGreaterThanOrEqual(3);

      qemu = startQemu('restarted');
      await waitUp(2);
      expect(await monitor.execute('query-status')).toHaveProperty('status');
      expect(monitor.reconnectCount).toBe(1);
      expect(logLines.filter((line) => line.level >= 40)).toEqual([]);
      expect(logLines.filter((line) => line.level === 30).map((line) => line.msg)).toEqual([
        'QMP monitor up',
        'QMP monitor down: QEMU went away',
        'QMP monitor up',
      ]);
    } finally {
      await monitor.stop();
      await kill(qemu);
    }
  });
});

describe.runIf(requireEnvironment(needsRoot()))('QMP command timeout', () => {
  let server: Server | undefined;
  const sockets = new Set<Socket>();

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
  });

  it('rejects only the command that got no reply (simulated fault: QEMU has no reliably slow command)', async () => {
    // SIMULATED: a monitor that greets, negotiates and then never answers. A real QEMU cannot be
    // made to hold a reply back on demand, so this fault is played by a unix socket server.
    const path = join(workDir, 'silent.qmp');
    server = createServer((socket) => {
      sockets.add(socket);
      socket.write('{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "simulated"}, "capabilities": []}}\r\n');
      socket.on('data', (chunk) => {
        for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
          const request = JSON.parse(line) as { execute: string; id: unknown };
          if (request.execute === 'qmp_capabilities') socket.write(`{"return": {}, "id": ${JSON.stringify(request.id)}}\r\n`);
          if (request.execute === 'query-status') socket.write(`{"return": {"status": "running"}, "id": ${JSON.stringify(request.id)}}\r\n`);
        }
      });
    });
    await new Promise<void>((resolve) => server!.listen(path, resolve));
    const session = await openWhenReady({ kind: 'unix', path });
    const slow = rejection(session.execute('query-migrate', undefined, 100));
    expect(await session.execute('query-status')).toEqual({ status: 'running' });
    const err = await slow;
    expect(err.code).toBe('LME_QMP_TIMEOUT');
    expect(err.message).toBe(`QMP command query-migrate on unix:${path} got no reply within 100 ms`);
    expect(await session.execute('query-status')).toEqual({ status: 'running' });
  });
});
