import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { describe, it, expect } from 'vitest';
import { LivemigError } from '../../src/errors.js';
import type { QmpSession, QmpSessionEvents } from '../../src/sources/qmp/client.js';
import { QmpMonitor, STABLE_SESSION_MS, type Timers } from '../../src/sources/qmp/monitor.js';
import type { QmpEndpoint, QmpEvent } from '../../src/qemu/types.js';

const ENDPOINT: QmpEndpoint = { kind: 'unix', path: '/run/vm1.qmp' };
const TARGET = 'unix:/run/vm1.qmp';

class FakeSession extends EventEmitter<QmpSessionEvents> implements QmpSession {
  readonly target = TARGET;
  closed = false;
  async execute<T>(command: string): Promise<T> {
    return `ran ${command}` as T;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  /** QEMU went away. */
  drop(): void {
    this.emit('close', new LivemigError('LME_QMP_CLOSED', [TARGET, 'end of stream']));
  }
}

/** Timers stepped by the test: nothing waits on the wall clock. */
class ManualTimers implements Timers {
  scheduled: { callback: () => void; ms: number }[] = [];
  setTimeout(callback: () => void, ms: number): unknown {
    const entry = { callback, ms };
    this.scheduled.push(entry);
    return entry;
  }
  clearTimeout(handle: unknown): void {
    this.scheduled = this.scheduled.filter((entry) => entry !== handle);
  }
  /** Runs the one pending retry and returns the delay it had been given (the stable-session timer is not a retry). */
  fire(): number {
    const index = this.scheduled.findIndex((entry) => entry.ms !== STABLE_SESSION_MS);
    const next = index >= 0 ? this.scheduled.splice(index, 1)[0] : undefined;
    if (!next) throw new Error('no retry scheduled');
    next.callback();
    return next.ms;
  }
  /** The session has held for STABLE_SESSION_MS. */
  fireStable(): void {
    const index = this.scheduled.findIndex((entry) => entry.ms === STABLE_SESSION_MS);
    if (index < 0) throw new Error('no stable-session timer');
    this.scheduled.splice(index, 1)[0]!.callback();
  }
}

function errnoError(code: string): Error {
  const cause = Object.assign(new Error(`connect ${code} /run/vm1.qmp`), { code });
  return new LivemigError('LME_QMP_CONNECT', [TARGET, cause.message], { cause });
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function harness(outcomes: (FakeSession | Error)[]) {
  const timers = new ManualTimers();
  const logs: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line) as { level: number; msg: string }) });
  let opens = 0;
  const monitor = new QmpMonitor({
    endpoint: ENDPOINT,
    open: async () => {
      const outcome = outcomes[opens++];
      if (outcome === undefined) throw new Error('test ran out of outcomes');
      if (outcome instanceof Error) throw outcome;
      return outcome;
    },
    backoff: { baseMs: 100, capMs: 1000 },
    random: () => 0.5,
    timers,
    logger,
  });
  const seen: string[] = [];
  monitor.on('up', () => seen.push('up'));
  monitor.on('down', (reason) => seen.push(`down: ${reason.message}`));
  const levels = (level: number): string[] => logs.filter((entry) => entry.level === level).map((entry) => entry.msg);
  return { monitor, timers, seen, logs, levels, opens: () => opens };
}

const INFO = 30;
const WARN = 40;
const DEBUG = 20;

describe('QmpMonitor', () => {
  it('comes up and passes commands to the session', async () => {
    const { monitor, seen } = harness([new FakeSession()]);
    monitor.start();
    await settle();
    expect(seen).toEqual(['up']);
    expect(monitor.isUp).toBe(true);
    expect(await monitor.execute('query-migrate')).toBe('ran query-migrate');
    expect(monitor.reconnectCount).toBe(0);
  });

  it('rejects commands at once while down', async () => {
    const { monitor } = harness([errnoError('ENOENT')]);
    await expect(monitor.execute('query-migrate')).rejects.toMatchObject({ code: 'LME_QMP_CONNECT', message: `cannot connect to QMP monitor ${TARGET}: not connected yet` });
    monitor.start();
    await settle();
    await expect(monitor.execute('query-migrate')).rejects.toMatchObject({ code: 'LME_QMP_CONNECT' });
    await monitor.stop();
  });

  it('forwards events of the current session only', async () => {
    const first = new FakeSession();
    const { monitor, timers } = harness([first, new FakeSession()]);
    const events: QmpEvent[] = [];
    monitor.on('event', (event) => events.push(event));
    monitor.start();
    await settle();
    const stop: QmpEvent = { event: 'STOP', timestamp: { seconds: 1, microseconds: 0 } };
    first.emit('event', stop);
    first.drop();
    first.emit('event', { ...stop, event: 'LATE' });
    timers.fire();
    await settle();
    expect(events).toEqual([stop]);
    await monitor.stop();
  });

  it('treats a QEMU that exits as normal: one info line, quiet retries at capped backoff, then up again', async () => {
    const session = new FakeSession();
    const gone = Array.from({ length: 8 }, () => errnoError('ENOENT'));
    const { monitor, timers, seen, levels } = harness([session, ...gone, errnoError('ECONNREFUSED'), new FakeSession()]);
    monitor.start();
    await settle();
    session.drop();
    const delays: number[] = [];
    for (let i = 0; i < 10; i++) {
      delays.push(timers.fire());
      await settle();
    }
    expect(seen).toEqual(['up', `down: QMP monitor ${TARGET} closed the connection: end of stream`, 'up']);
    expect(delays).toEqual([50, 100, 200, 400, 500, 500, 500, 500, 500, 500]);
    expect(levels(WARN)).toEqual([]);
    expect(levels(INFO)).toEqual(['QMP monitor up', 'QMP monitor down: QEMU went away', 'QMP monitor up']);
    expect(levels(DEBUG)).toHaveLength(9);
    expect(monitor.reconnectCount).toBe(1);
    expect(monitor.failedAttemptCount).toBe(9);
    await monitor.stop();
  });

  it('resets the backoff once a session has held for a while', async () => {
    const first = new FakeSession();
    const second = new FakeSession();
    const { monitor, timers } = harness([first, errnoError('ENOENT'), errnoError('ENOENT'), second, new FakeSession()]);
    monitor.start();
    await settle();
    timers.fireStable();
    first.drop();
    expect([timers.fire(), await settle()][0]).toBe(50);
    expect([timers.fire(), await settle()][0]).toBe(100);
    expect([timers.fire(), await settle()][0]).toBe(200);
    timers.fireStable();
    second.drop();
    expect(timers.fire()).toBe(50);
    await settle();
    await monitor.stop();
  });

  it('keeps backing off from a peer that greets and drops the connection at once (issue 13, item 4)', async () => {
    const flapping = Array.from({ length: 6 }, () => new FakeSession());
    const { monitor, timers } = harness([...flapping, new FakeSession()]);
    monitor.start();
    await settle();
    const delays: number[] = [];
    for (const session of flapping.slice(0, 5)) {
      session.drop();
      delays.push(timers.fire());
      await settle();
    }
    // Each session dropped before it held: the delays grow to the cap, never back to the base.
    expect(delays).toEqual([50, 100, 200, 400, 500]);
    await monitor.stop();
  });

  it("tells of a failed attempt (a peer that never greets), so that its source is not shown up", async () => {
    const { monitor } = harness([new LivemigError('LME_QMP_TIMEOUT', ['qmp_capabilities', TARGET, 2000])]);
    const failures: string[] = [];
    monitor.on('failed', (reason) => failures.push((reason as LivemigError).code));
    monitor.start();
    await settle();
    expect(failures).toEqual(['LME_QMP_TIMEOUT']);
    await monitor.stop();
  });

  it('warns once per distinct failure that is not a QEMU exit', async () => {
    const { monitor, timers, levels } = harness([errnoError('EACCES'), errnoError('EACCES'), errnoError('EACCES'), errnoError('ENOENT'), new FakeSession()]);
    monitor.start();
    await settle();
    for (let i = 0; i < 4; i++) {
      timers.fire();
      await settle();
    }
    expect(levels(WARN)).toEqual(['QMP monitor unreachable']);
    expect(levels(INFO)).toEqual(['QMP monitor unreachable: QEMU not running', 'QMP monitor up']);
    expect(levels(DEBUG)).toHaveLength(2);
    expect(monitor.reconnectCount).toBe(0);
  });

  it('stop() closes the session and schedules nothing more', async () => {
    const session = new FakeSession();
    const { monitor, timers, seen } = harness([session]);
    monitor.start();
    await settle();
    await monitor.stop();
    expect(session.closed).toBe(true);
    expect(monitor.isUp).toBe(false);
    session.drop();
    expect(timers.scheduled).toEqual([]);
    expect(seen).toEqual(['up']);
  });

  it('stop() during a connect attempt closes the session it yields', async () => {
    const session = new FakeSession();
    const { monitor } = harness([session]);
    monitor.start();
    await monitor.stop();
    expect(session.closed).toBe(true);
    expect(monitor.isUp).toBe(false);
  });

  it('stop() cancels a scheduled retry', async () => {
    const { monitor, timers, opens } = harness([errnoError('ENOENT')]);
    monitor.start();
    await settle();
    expect(timers.scheduled).toHaveLength(1);
    await monitor.stop();
    expect(timers.scheduled).toEqual([]);
    expect(opens()).toBe(1);
  });
});
