import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { VmConfig } from '../../src/config/schema.js';
import { LivemigError } from '../../src/errors.js';
import type { Observation } from '../../src/observations.js';
import { QmpSource, type MonitorHandle } from '../../src/sources/qmp/source.js';
import type { QmpEndpoint, QmpEvent } from '../../src/qemu/types.js';

/** A monitor whose replies the test scripts; it records when each command was issued. */
class ScriptedMonitor extends EventEmitter implements MonitorHandle {
  isUp = false;
  reconnectCount = 0;
  status = 'none';
  calls: { command: string; at: number }[] = [];
  fail: Error | null = null;
  started = false;

  constructor(readonly endpoint: QmpEndpoint) {
    super();
  }
  async execute<T>(command: string): Promise<T> {
    this.calls.push({ command, at: Date.now() });
    if (this.fail) throw this.fail;
    if (command === 'query-status') return { status: this.status === 'none' ? 'running' : 'paused', running: true } as T;
    return (this.status === 'none' ? {} : { status: this.status, ram: { transferred: 1 } }) as T;
  }
  start(): void {
    this.started = true;
  }
  async stop(): Promise<void> {
    this.started = false;
  }
  goUp(): void {
    this.isUp = true;
    this.emit('up');
  }
  goDown(reason: Error): void {
    this.isUp = false;
    this.emit('down', reason);
  }
  polls(): number[] {
    return this.calls.filter((c) => c.command === 'query-migrate').map((c) => c.at);
  }
}

const vm = (name: string, ...paths: string[]): VmConfig => ({
  name,
  flavor: '',
  labels: {},
  pingAddress: null,
  monitors: paths.map((path, i) => ({ id: `h${i}/unix:${path}`, host: `h${i}`, endpoint: { kind: 'unix', path } })),
});

describe('QmpSource', () => {
  let monitors: ScriptedMonitor[];
  let observations: Observation[];
  let errors: string[];
  let source: QmpSource;

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    monitors = [];
    observations = [];
    errors = [];
    source = new QmpSource({
      clock: { wallMs: () => Date.now(), monoMs: () => Date.now() },
      logger: pino({ level: 'silent' }),
      idleIntervalMs: 5000,
      migratingIntervalMs: 100,
      commandTimeoutMs: 1000,
      random: () => 0,
      createMonitor: (endpoint) => {
        const m = new ScriptedMonitor(endpoint);
        monitors.push(m);
        return m;
      },
      onObservation: (o) => observations.push(o),
      onError: (host, reason) => errors.push(`${host}:${reason}`),
    });
  });
  afterEach(async () => {
    await source.stop();
    vi.useRealTimers();
  });

  it('polls idle VMs slowly and every monitor of a migrating VM at the fast interval', async () => {
    await source.setVms([vm('a', '/a0', '/a1')]);
    const [src, dst] = monitors as [ScriptedMonitor, ScriptedMonitor];
    src.goUp();
    dst.goUp();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(src.polls().length).toBeGreaterThanOrEqual(4);
    expect(src.polls().length).toBeLessThanOrEqual(6);

    src.status = 'active';
    await vi.advanceTimersByTimeAsync(5_000);
    const before = dst.polls().length;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(source.isMigrating('a')).toBe(true);
    // 10 Hz on both sides, the destination included.
    expect(dst.polls().length - before).toBeGreaterThanOrEqual(9);
    expect(dst.polls().length - before).toBeLessThanOrEqual(11);

    src.status = 'completed';
    await vi.advanceTimersByTimeAsync(200);
    const settled = src.polls().length;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(source.isMigrating('a')).toBe(false);
    expect(src.polls().length - settled).toBeLessThanOrEqual(2);
  });

  it('counts a line that is not QMP as a protocol error, and a lost connection by its cause (issue 13, item 5)', async () => {
    await source.setVms([vm('a', '/a0')]);
    const [m] = monitors as [ScriptedMonitor];
    m.goUp();
    await vi.advanceTimersByTimeAsync(1);
    m.emit('protocol-error', new LivemigError('LME_QMP_PROTOCOL', ['unix:/a0', 'not JSON']));
    m.goDown(new LivemigError('LME_QMP_TIMEOUT', ['query-migrate', 'unix:/a0', 1000]));
    expect(errors).toEqual(['h0:protocol', 'h0:timeout']);
  });

  it('a monitor that cannot open (a peer that never greets) or that flaps is not up until a poll answers (issue 13, item 4)', async () => {
    await source.setVms([vm('a', '/a0')]);
    const [m] = monitors as [ScriptedMonitor];
    m.emit('failed', new LivemigError('LME_QMP_TIMEOUT', ['qmp_capabilities', 'unix:/a0', 1000]));
    expect(errors).toEqual(['h0:timeout']);
    expect(source.hostHealth().get('h0')).toBe(false);
    // It greets, and drops before a poll answers: still not up.
    m.fail = new LivemigError('LME_QMP_CLOSED', ['unix:/a0', 'end of stream']);
    m.goUp();
    m.goDown(new LivemigError('LME_QMP_CLOSED', ['unix:/a0', 'end of stream']));
    expect(source.hostHealth().get('h0')).toBe(false);
    // A poll that answers makes it up.
    m.fail = null;
    m.goUp();
    await vi.advanceTimersByTimeAsync(1);
    expect(source.hostHealth().get('h0')).toBe(true);
    // A QEMU that is not there is normal (a source after its migration): up, not counted.
    m.emit('failed', Object.assign(new LivemigError('LME_QMP_CONNECT', ['unix:/a0', 'ENOENT']), { cause: Object.assign(new Error('x'), { code: 'ENOENT' }) }));
    expect(source.hostHealth().get('h0')).toBe(true);
  });

  it('tells the tracker once that a QEMU is not running, also for a monitor never up since the start (issue 13, item 2)', async () => {
    await source.setVms([vm('a', '/a0')]);
    const [m] = monitors as [ScriptedMonitor];
    const absent = () => Object.assign(new LivemigError('LME_QMP_CONNECT', ['unix:/a0', 'ENOENT']), { cause: Object.assign(new Error('connect ENOENT'), { code: 'ENOENT' }) });
    m.emit('failed', absent());
    m.emit('failed', absent());
    expect(observations.filter((o) => o.kind === 'monitor-gone').map((o) => o.kind === 'monitor-gone' && o.reason)).toEqual(['QEMU not running: cannot connect to QMP monitor unix:/a0: ENOENT']);
    expect(errors).toEqual([]);
    // Up again, then gone again: told again.
    m.goUp();
    await vi.advanceTimersByTimeAsync(1);
    m.emit('failed', absent());
    expect(observations.filter((o) => o.kind === 'monitor-gone')).toHaveLength(2);
  });

  it('refuses a reply with a negative figure: counted, and no observation (issue 13, item 6)', async () => {
    await source.setVms([vm('a', '/a0')]);
    const [m] = monitors as [ScriptedMonitor];
    m.execute = async <T>() => ({ status: 'active', ram: { transferred: -123456789 } }) as T;
    m.goUp();
    await vi.advanceTimersByTimeAsync(1);
    expect(errors).toContain('h0:reply');
    expect(observations.filter((o) => o.kind === 'qmp-status')).toEqual([]);
  });

  it('polls at once on a MIGRATION event and passes events on with QEMU’s time stamp', async () => {
    await source.setVms([vm('a', '/a0')]);
    const [m] = monitors as [ScriptedMonitor];
    m.goUp();
    await vi.advanceTimersByTimeAsync(1);
    const polled = m.polls().length;
    m.status = 'setup';
    const event: QmpEvent = { event: 'MIGRATION', data: { status: 'setup' }, timestamp: { seconds: 1795639395, microseconds: 356316 } };
    m.emit('event', event);
    await vi.advanceTimersByTimeAsync(1);
    expect(m.polls().length).toBe(polled + 1);
    const seen = observations.find((o) => o.kind === 'qmp-event');
    expect(seen).toMatchObject({ kind: 'qmp-event', event: 'MIGRATION', data: { status: 'setup' }, wallMs: 1795639395356.316, ref: { vm: 'a', host: 'h0' } });
    expect(source.isMigrating('a')).toBe(true);
  });

  it('turns replies into observations with the run state around a migration', async () => {
    await source.setVms([vm('a', '/a0')]);
    const [m] = monitors as [ScriptedMonitor];
    m.status = 'active';
    m.goUp();
    await vi.advanceTimersByTimeAsync(1);
    const status = observations.find((o) => o.kind === 'qmp-status');
    expect(status).toMatchObject({ info: { status: 'active', ram: { transferred: 1 } }, runState: 'paused' });
    expect([...source.snapshot()][0]).toMatchObject({ up: true, info: { status: 'active' }, lastProblem: 'none' });
  });

  it('reports a monitor that goes away as monitor-gone; an absent QEMU keeps the host healthy', async () => {
    await source.setVms([vm('a', '/a0')]);
    const [m] = monitors as [ScriptedMonitor];
    m.goUp();
    await vi.advanceTimersByTimeAsync(1);
    m.goDown(new LivemigError('LME_QMP_CONNECT', ['unix:/a0', 'ENOENT'], { cause: Object.assign(new Error('no such file'), { code: 'ENOENT' }) }));
    expect(observations.at(-1)).toMatchObject({ kind: 'monitor-gone', ref: { vm: 'a' } });
    expect(source.hostHealth().get('h0')).toBe(true);
    expect(errors).toEqual([]);
  });

  it('counts failed polls by reason and marks the host unhealthy', async () => {
    await source.setVms([vm('a', '/a0')]);
    const [m] = monitors as [ScriptedMonitor];
    m.goUp();
    m.fail = new LivemigError('LME_QMP_TIMEOUT', ['query-migrate', 'unix:/a0', 1000]);
    await vi.advanceTimersByTimeAsync(1);
    expect(errors).toEqual(['h0:timeout']);
    expect(source.hostHealth().get('h0')).toBe(false);
    m.fail = null;
    await vi.advanceTimersByTimeAsync(5_000);
    expect(source.hostHealth().get('h0')).toBe(true);
  });

  it('keeps the state of monitors that stay when the VM list changes', async () => {
    await source.setVms([vm('a', '/a0'), vm('b', '/b0')]);
    const [a] = monitors as [ScriptedMonitor, ScriptedMonitor];
    a.goUp();
    await vi.advanceTimersByTimeAsync(1);
    await source.setVms([vm('a', '/a0')]);
    expect(monitors).toHaveLength(2);
    expect(monitors[1]?.started).toBe(false);
    expect([...source.snapshot()].map((s) => s.ref.vm)).toEqual(['a']);
    expect([...source.snapshot()][0]?.up).toBe(true);
  });
});
