import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../src/clock.js';
import type { LivemigError } from '../../src/errors.js';
import { findOutages, outageDurationMs } from '../../src/enrichers/ping/outages.js';
import type { PingObservation } from '../../src/observations.js';
import { PingSource, type PingSourceOptions } from '../../src/sources/ping/source.js';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { TestNetns } from '../helpers/netns.js';

/**
 * Real fping 5.1 in a `probe` namespace, pinging addresses on the loopback of a `targets`
 * namespace across a veth pair:
 *
 *   probe: p0 198.18.0.1/30 ===== t0 198.18.0.2/30 :targets, lo 198.18.1.1 ... 198.18.1.8
 *
 * Outages of known length are blackhole routes, on either side:
 * - send side, in `probe`: fping's sendto fails and fping prints nothing for those probes;
 * - reply side, in `targets` (policy routing sends the target's replies to a table where the
 *   blackhole goes): the probes go out and fping prints `timed out` for each.
 */
const RUN = requireEnvironment(missingTools('fping', 'ip', 'setpriv'), needsRoot());
const PROBE_ADDRESS = '198.18.0.1';
const addr = (n: number) => `198.18.1.${n}`;
const replyTable = (n: number) => String(100 + n);

interface Dark {
  n: number;
  side: 'send' | 'reply';
  ms: number;
}
const DARK: Dark[] = [
  { n: 2, side: 'send', ms: 300 },
  { n: 3, side: 'send', ms: 1000 },
  { n: 4, side: 'send', ms: 2500 },
  { n: 5, side: 'reply', ms: 300 },
  { n: 6, side: 'reply', ms: 1000 },
  { n: 7, side: 'reply', ms: 2500 },
];
const LIT = [1, 8];

describe.runIf(RUN)('ping source on real fping in network namespaces', () => {
  const lab = new TestNetns('lmeping');
  let probe = '';
  let targets = '';
  const sources: PingSource[] = [];

  beforeAll(async () => {
    await TestNetns.removeStale('lmeping');
    try {
      probe = await lab.namespace('probe');
      targets = await lab.namespace('targets');
      await lab.veth({ ns: probe, dev: 'p0' }, { ns: targets, dev: 't0' });
      await lab.address(probe, `${PROBE_ADDRESS}/30`, 'p0');
      await lab.address(targets, '198.18.0.2/30', 't0');
      await lab.route(probe, '198.18.1.0/24', 'via', '198.18.0.2');
      for (let n = 1; n <= 8; n++) {
        await lab.address(targets, `${addr(n)}/32`, 'lo');
        await lab.rule(targets, 'from', addr(n), 'lookup', replyTable(n), 'pref', '100');
      }
    } catch (err) {
      await lab.cleanup();
      throw err;
    }
  });

  afterEach(async () => {
    await Promise.all(sources.splice(0).map((s) => s.stop()));
  });

  afterAll(async () => {
    await lab.cleanup();
  });

  function start(options: Partial<PingSourceOptions>) {
    const observations: PingObservation[] = [];
    const errors: LivemigError[] = [];
    const source = new PingSource({
      clock: systemClock,
      logger: pino({ level: 'silent' }),
      netns: probe,
      onObservation: (o) => observations.push(o),
      onError: (e) => errors.push(e),
      ...options,
    });
    sources.push(source);
    const of = (address: string) => observations.filter((o) => o.target === address);
    return { source, observations, errors, of };
  }

  const darken = (d: Dark) => (d.side === 'send' ? lab.blackhole(probe, `${addr(d.n)}/32`) : lab.blackhole(targets, `${PROBE_ADDRESS}/32`, replyTable(d.n)));
  const lighten = (d: Dark) => (d.side === 'send' ? lab.unblackhole(probe, `${addr(d.n)}/32`) : lab.unblackhole(targets, `${PROBE_ADDRESS}/32`, replyTable(d.n)));
  const sleepUntil = (wallMs: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, wallMs - Date.now())));

  it.each([
    [100, 500],
    [10, 200],
  ])('measures blackholes of 0.3, 1 and 2.5 s within one period at %i ms (timeout %i ms); only the dark targets lose probes', async (periodMs, timeoutMs) => {
    const { source, of, errors } = start({ periodMs, timeoutMs });
    const all = [...LIT, ...DARK.map((d) => d.n)].sort((a, b) => a - b);
    await source.setTargets(all.map((n) => ({ address: addr(n), labels: {} })));
    await vi.waitFor(() => all.forEach((n) => expect(of(addr(n)).filter((o) => o.rttMs !== null).length).toBeGreaterThan(3)), { timeout: 5000 });

    // All blackholes go in together; each comes out after its own length.
    const truth = await Promise.all(
      DARK.map(async (d) => {
        const on = await darken(d);
        await sleepUntil(on.endMs + d.ms);
        const off = await lighten(d);
        return { d, on, off };
      }),
    );
    const lastOff = Math.max(...truth.map((t) => t.off.endMs));
    // Settled once each target has an answered probe sent well after its blackhole came out.
    await vi.waitFor(
      () => all.forEach((n) => expect(of(addr(n)).some((o) => o.rttMs !== null && o.sentWallMs > lastOff + 3 * periodMs)).toBe(true)),
      { timeout: timeoutMs + 2 * Math.max(1000, 2 * periodMs) + 2000, interval: 50 },
    );

    for (const n of LIT) expect(of(addr(n)).filter((o) => o.rttMs === null), `lit target ${addr(n)}`).toEqual([]);
    const rows = truth.map(({ d, on, off }) => {
      const outages = findOutages(of(addr(d.n)));
      expect(outages, `${d.side}-side ${d.ms} ms on ${addr(d.n)}`).toHaveLength(1);
      const measured = outageDurationMs(outages[0]!)!;
      // The route took effect somewhere inside each `ip` command.
      const shortest = off.startMs - on.endMs;
      const longest = off.endMs - on.startMs;
      expect(measured, `${d.side}-side ${d.ms} ms`).toBeGreaterThan(shortest - periodMs);
      expect(measured, `${d.side}-side ${d.ms} ms`).toBeLessThan(longest + periodMs);
      return { target: addr(d.n), side: d.side, truthMs: +((shortest + longest) / 2).toFixed(1), measuredMs: +measured.toFixed(1), lost: outages[0]!.lost };
    });
    console.log(`period ${periodMs} ms, timeout ${timeoutMs} ms:`);
    console.table(rows.map((r) => ({ ...r, errorMs: +(r.measuredMs - r.truthMs).toFixed(1) })));

    for (const n of all) {
      const sequences = of(addr(n)).map((o) => o.sequence);
      expect(sequences).toEqual(sequences.map((_, i) => i));
    }
    const counters = source.snapshot();
    for (const t of counters) {
      expect(t.counters.sent).toBe(of(t.target.address).length);
      expect(t.currentOutageSeconds).toBe(0);
    }
    expect(errors).toEqual([]);
  });

  it('an fping killed with SIGKILL is restarted; no target loses its counters, the other shard never notices', async () => {
    const { source, of, errors } = start({ periodMs: 100, timeoutMs: 500, maxTargetsPerProcess: 2, restartBackoff: { baseMs: 200, capMs: 1000 } });
    const all = [1, 2, 3, 4].map(addr);
    await source.setTargets(all.map((address) => ({ address, labels: {} })));
    await vi.waitFor(() => all.forEach((a) => expect(of(a).length).toBeGreaterThan(5)), { timeout: 5000 });
    const [killed, spared] = source.processes();
    expect(killed!.targets).toEqual([addr(1), addr(2)]);
    const before = new Map(source.snapshot().map((t) => [t.target.address, t.counters.sent]));

    process.kill(killed!.pid!, 'SIGKILL');
    await vi.waitFor(() => expect(errors.map((e) => e.message)).toContainEqual(expect.stringContaining('exited (signal SIGKILL)')));
    await vi.waitFor(() => expect(source.health()).toEqual({ up: true, processes: 2, processesUp: 2, restarts: 1 }), { timeout: 5000 });
    const restartedPid = source.processes()[0]!.pid;
    expect(restartedPid).not.toBe(killed!.pid);
    expect(source.processes()[1]!.pid).toBe(spared!.pid);
    await new Promise((resolve) => setTimeout(resolve, 1000));

    for (const t of source.snapshot()) {
      expect(t.counters.sent, t.target.address).toBeGreaterThan(before.get(t.target.address)! + 5);
      const sequences = of(t.target.address).map((o) => o.sequence);
      expect(sequences.every((s, i) => i === 0 || s > sequences[i - 1]!), `${t.target.address} sequences increase`).toBe(true);
    }
    // The spared shard's targets: every probe answered, sequences without a hole.
    for (const a of spared!.targets) {
      expect(of(a).filter((o) => o.rttMs === null)).toEqual([]);
      expect(of(a).map((o) => o.sequence)).toEqual(of(a).map((_, i) => i));
    }
  });

  it('adding and removing targets restarts only the fping they belong to; the others keep counting', async () => {
    const { source, of } = start({ periodMs: 100, timeoutMs: 500, maxTargetsPerProcess: 2 });
    const targetsOf = (ns: number[]) => ns.map((n) => ({ address: addr(n), labels: {} }));
    await source.setTargets(targetsOf([1, 2, 3, 4]));
    await vi.waitFor(() => [1, 2, 3, 4].forEach((n) => expect(of(addr(n)).length).toBeGreaterThan(3)), { timeout: 5000 });
    const [shard0, shard1] = source.processes();

    await source.setTargets(targetsOf([1, 2, 3, 4, 5]));
    expect(source.processes().map((p) => p.pid).slice(0, 2)).toEqual([shard0!.pid, shard1!.pid]);
    await source.setTargets(targetsOf([1, 3, 4, 5]));
    const after = source.processes();
    expect(after[0]!.pid).not.toBe(shard0!.pid);
    expect(after[1]!.pid).toBe(shard1!.pid);
    const sentAt = new Map(source.snapshot().map((t) => [t.target.address, t.counters.sent]));
    await new Promise((resolve) => setTimeout(resolve, 800));
    for (const t of source.snapshot()) expect(t.counters.sent, t.target.address).toBeGreaterThan(sentAt.get(t.target.address)! + 3);
    for (const n of [3, 4]) expect(of(addr(n)).filter((o) => o.rttMs === null)).toEqual([]);
  });

  it('without CAP_NET_RAW (a copy of fping, run as nobody): a clear error that says how to fix it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lme-fping-nocap-'));
    try {
      chmodSync(dir, 0o755);
      const fping = join(dir, 'fping');
      // A copy loses the file capability Debian's package gives /usr/bin/fping.
      copyFileSync(execFileSync('sh', ['-c', 'command -v fping'], { encoding: 'utf8' }).trim(), fping);
      chmodSync(fping, 0o755);
      const uid = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }));
      const gid = Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }));
      const { source, errors } = start({ fpingPath: fping, netns: undefined, user: { uid, gid }, restartBackoff: { baseMs: 5000, capMs: 5000 } });
      await source.setTargets([{ address: '127.0.0.1', labels: {} }]);
      await vi.waitFor(() => expect(errors).toHaveLength(1), { timeout: 5000 });
      expect(errors[0]!.code).toBe('LME_PING_PERMISSION');
      expect(errors[0]!.message).toBe(
        `fping ${fping} cannot open an ICMP socket (${fping}: can't create socket (must run as root?)): grant it CAP_NET_RAW with \`setcap cap_net_raw+ep ${fping}\`, or run the exporter as root`,
      );
      expect(source.health().up).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
