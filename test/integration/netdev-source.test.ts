/**
 * The netdev source on a real network namespace (NetnsHost): /proc/net/dev and
 * /sys/class/net/IFACE/statistics read through `ip netns exec` agree, and the read period
 * follows the host's migrating state.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { NetnsHost } from '../../src/hosts/netns.js';
import { LabNetwork } from '../../src/lab/netns.js';
import { NetdevSource, readSysClassNet, type InterfaceSample } from '../../src/sources/netdev/source.js';
import { parseProcNetDev } from '../../src/sources/netdev/parse.js';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';

describe.runIf(requireEnvironment(missingTools('ip', 'ping'), needsRoot()))('netdev source in a real network namespace', () => {
  let network: LabNetwork;
  let host: NetnsHost;

  beforeAll(async () => {
    network = await LabNetwork.create({ rate: null });
    host = new NetnsHost('src', network.namespaces.src);
    execFileSync('ip', ['netns', 'exec', network.namespaces.src, 'ping', '-c', '3', '-i', '0.2', network.migrationAddress('dst')]);
  });

  afterAll(async () => {
    await network?.destroy();
  });

  it("reads that namespace's counters, the same from /proc/net/dev and from /sys/class/net", async () => {
    const proc = parseProcNetDev((await host.readFile('/proc/net/dev')).toString()).interfaces.find((i) => i.interface === 'mig0');
    const sys = (await readSysClassNet(host, '/sys/class/net', ['mig0', 'no-such-if', '../etc'])).interfaces;
    expect(sys.map((i) => i.interface)).toEqual(['mig0']);
    expect(proc?.transmitBytes).toBeGreaterThan(0n);
    expect(sys[0]).toEqual(proc);
    // The host's own namespace has no mig0: the read really happened inside the namespace.
    expect(parseProcNetDev(execFileSync('cat', ['/proc/net/dev'], { encoding: 'utf8' })).interfaces.map((i) => i.interface)).not.toContain('mig0');
  });

  it('reads every migrating_period while the host migrates, every period otherwise', async () => {
    let migrating = false;
    const samples: InterfaceSample[] = [];
    const source = new NetdevSource({
      clock: systemClock,
      periodMs: 1000,
      migratingPeriodMs: 100,
      isMigrating: () => migrating,
      onSample: (s) => samples.push(s),
    });
    source.setHosts([{ host, interfaces: ['mig0'], netdevPath: '/sys/class/net' }]);
    await new Promise((r) => setTimeout(r, 2100));
    const idle = samples.length;
    migrating = true;
    await new Promise((r) => setTimeout(r, 2100));
    const busy = samples.length - idle;
    source.stop();
    console.log(`reads in 2.1 s: ${idle} idle (period 1 s), ${busy} migrating (100 ms)`);
    expect(idle).toBeLessThanOrEqual(4);
    expect(busy).toBeGreaterThan(2 * idle);
    expect(samples.at(-1)?.interfaces.get('mig0')?.transmitBytes).toBeGreaterThan(0n);
    expect(source.health()).toEqual([{ host: 'src', up: true }]);
  });
});
