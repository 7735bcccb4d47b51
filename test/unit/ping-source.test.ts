import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { LivemigError } from '../../src/errors.js';
import { findOutages, outageDurationMs } from '../../src/enrichers/ping/outages.js';
import type { PingObservation } from '../../src/observations.js';
import { PingSource, type PingSourceOptions } from '../../src/sources/ping/source.js';
import type { PingTarget } from '../../src/sources/ping/types.js';

const BLACKHOLE = new URL('../fixtures/fping/blackhole-1.5s.5.1.stdout.txt', import.meta.url).pathname;
/** Fixture facts: the capture's first stamp, and when its blackholes went in and out (README). */
const CAPTURE_START_MS = 1795645800830;
const BLACKHOLE_MS = 1795645803543 - 1795645802033;

const dir = mkdtempSync(join(tmpdir(), 'lme-ping-source-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fakeFping(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

const target = (address: string, labels: Record<string, string> = {}): PingTarget => ({ address, vm: `vm-${address}`, labels });

describe('PingSource', () => {
  const sources: PingSource[] = [];
  afterEach(async () => {
    await Promise.all(sources.splice(0).map((s) => s.stop()));
  });

  function source(options: Partial<PingSourceOptions>) {
    let now = CAPTURE_START_MS;
    const seen = { observations: [] as PingObservation[], errors: [] as LivemigError[], rtts: [] as [string, number][] };
    const s = new PingSource({
      clock: { wallMs: () => now, monoMs: () => performance.now() },
      logger: pino({ level: 'silent' }),
      onObservation: (o) => seen.observations.push(o),
      onRtt: (t, rtt) => seen.rtts.push([t.address, rtt]),
      onError: (e) => seen.errors.push(e),
      random: () => 0,
      restartBackoff: { baseMs: 20, capMs: 100 },
      ...options,
    });
    sources.push(s);
    const of = (address: string) => seen.observations.filter((o) => o.target === address);
    return { s, seen, of, setNow: (ms: number) => (now = ms) };
  }

  it('replays a real 1.5 s blackhole: in-order observations, counters, outages within one period', async () => {
    const fping = fakeFping('replay', `cat '${BLACKHOLE}'; exec sleep 30`);
    const { s, seen, of, setNow } = source({ fpingPath: fping, periodMs: 100, timeoutMs: 1000 });
    await s.setTargets([target('198.18.1.1'), target('198.18.1.2'), target('198.18.1.3')]);
    await vi.waitFor(() => expect(of('198.18.1.1')).toHaveLength(45), { timeout: 5000 });
    // 198.18.1.2 was blackholed on the sending side: fping printed nothing for 12..27, and its
    // later replies wait until the sweep, past those probes' deadline, settles them.
    expect(of('198.18.1.2')).toHaveLength(12);
    setNow(1795645805700);
    await vi.waitFor(() => expect(of('198.18.1.2')).toHaveLength(45), { timeout: 5000 });

    for (const address of ['198.18.1.1', '198.18.1.2', '198.18.1.3']) {
      expect(of(address).map((o) => o.sequence)).toEqual(Array.from({ length: 45 }, (_, i) => i));
      expect(of(address).every((o) => o.vm === `vm-${address}`)).toBe(true);
    }
    const lost = (address: string) => of(address).filter((o) => o.rttMs === null).map((o) => o.sequence);
    expect(lost('198.18.1.1')).toEqual([]);
    expect(lost('198.18.1.2')).toEqual(Array.from({ length: 16 }, (_, i) => 12 + i));
    expect(lost('198.18.1.3')).toEqual(Array.from({ length: 15 }, (_, i) => 12 + i));
    for (const address of ['198.18.1.2', '198.18.1.3']) {
      const outages = findOutages(of(address));
      expect(outages).toHaveLength(1);
      expect(Math.abs(outageDurationMs(outages[0]!)! - BLACKHOLE_MS)).toBeLessThan(100);
    }

    const counters = Object.fromEntries(s.snapshot().map((t) => [t.target.address, t.counters]));
    expect(counters).toEqual({
      '198.18.1.1': { sent: 45, received: 45, duplicates: 0, icmpErrors: 0 },
      '198.18.1.2': { sent: 45, received: 29, duplicates: 0, icmpErrors: 0 },
      '198.18.1.3': { sent: 45, received: 30, duplicates: 0, icmpErrors: 0 },
    });
    expect(seen.rtts).toHaveLength(45 + 29 + 30);
    expect(s.snapshot().map((t) => t.currentOutageSeconds)).toEqual([0, 0, 0]);
    expect(s.health()).toEqual({ up: true, processes: 1, processesUp: 1, restarts: 0 });
    expect(seen.errors).toEqual([]);
  });

  it('shows the current outage as soon as the loss is known, from the send of the first lost probe', async () => {
    // Up to the `timed out` of 198.18.1.3's probe 17, before it answers again.
    const fping = fakeFping('partial', `head -n 58 '${BLACKHOLE}'; exec sleep 30`);
    const { s, of, setNow } = source({ fpingPath: fping, periodMs: 100, timeoutMs: 1000 });
    await s.setTargets([target('198.18.1.1'), target('198.18.1.2'), target('198.18.1.3')]);
    await vi.waitFor(() => expect(of('198.18.1.3')).toHaveLength(18), { timeout: 5000 });
    setNow(1795645803600);
    const outage = (address: string) => s.snapshot().find((t) => t.target.address === address)!.currentOutageSeconds;
    expect(outage('198.18.1.1')).toBe(0);
    expect(outage('198.18.1.3')).toBeCloseTo(1795645803.6 - 1795645802.0504, 2);
    // The unsent probes of 198.18.1.2 count as lost only past send + timeout + grace (2 s).
    expect(outage('198.18.1.2')).toBe(0);
    setNow(1795645804100);
    await vi.waitFor(() => expect(outage('198.18.1.2')).toBeCloseTo(1795645804.1 - 1795645802.0404, 1), { timeout: 5000 });
  });

  it('setTargets restarts only the fping that gains or loses a target; labels change in place', async () => {
    const fping = fakeFping('idle', 'exec sleep 30');
    const { s } = source({ fpingPath: fping, maxTargetsPerProcess: 2 });
    const pids = () => Object.fromEntries(s.processes().map((p) => [p.shard, p.pid]));
    await s.setTargets([target('198.18.1.1'), target('198.18.1.2'), target('198.18.1.3')]);
    await vi.waitFor(() => expect(s.health().processesUp).toBe(2));
    const first = pids();

    await s.setTargets([target('198.18.1.1'), target('198.18.1.2'), target('198.18.1.3'), target('198.18.1.4')]);
    const second = pids();
    expect(second[0]).toBe(first[0]);
    expect(second[1]).not.toBe(first[1]);
    expect(s.processes().map((p) => p.targets)).toEqual([
      ['198.18.1.1', '198.18.1.2'],
      ['198.18.1.3', '198.18.1.4'],
    ]);

    await s.setTargets([target('198.18.1.1'), target('198.18.1.3'), target('198.18.1.4', { rack: 'r2' })]);
    const third = pids();
    expect(third[0]).not.toBe(second[0]);
    expect(third[1]).toBe(second[1]);
    expect(s.snapshot().find((t) => t.target.address === '198.18.1.4')!.target.labels).toEqual({ rack: 'r2' });
    expect(s.snapshot().map((t) => t.target.address).sort()).toEqual(['198.18.1.1', '198.18.1.3', '198.18.1.4']);
  });

  it.each([
    [[target('-f/etc/shadow')], 'ping target "-f/etc/shadow": not an IP address or host name'],
    [[target('198.18.1.1; rm -rf /')], 'ping target "198.18.1.1; rm -rf /": not an IP address or host name'],
    [[target('198.18.1.1'), target('198.18.1.1')], 'ping target 198.18.1.1: listed more than once'],
  ])('refuses %j and keeps the previous targets', async (targets, message) => {
    const fping = fakeFping('idle2', 'exec sleep 30');
    const { s } = source({ fpingPath: fping });
    await s.setTargets([target('198.18.1.9')]);
    await expect(s.setTargets(targets)).rejects.toMatchObject({ code: 'LME_PING_TARGET', message });
    expect(s.snapshot().map((t) => t.target.address)).toEqual(['198.18.1.9']);
  });

  it('an fping that exits is reported and restarted; the source is down meanwhile', async () => {
    const fping = fakeFping('crash', `echo "fping: cannot bind source address : Cannot assign requested address" >&2; exit 4`);
    const { s, seen } = source({ fpingPath: fping, restartBackoff: { baseMs: 1000, capMs: 1000 }, random: () => 0.5 });
    await s.setTargets([target('198.18.1.1')]);
    await vi.waitFor(() => expect(seen.errors).toHaveLength(1));
    expect(seen.errors[0]!.message).toBe('fping ' + fping + ' exited (code 4): fping: cannot bind source address : Cannot assign requested address');
    expect(s.health()).toEqual({ up: false, processes: 1, processesUp: 0, restarts: 1 });
    expect(s.snapshot()[0]!.processUp).toBe(false);
  });

  it.each([5, 10_001, 99.5])('refuses a period of %s ms', (periodMs) => {
    expect(() => source({ periodMs })).toThrow(/LME_PING_OPTION|ping option periodMs/);
  });
});
