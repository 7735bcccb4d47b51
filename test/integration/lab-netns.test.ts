import { execFileSync, spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { LivemigError } from '../../src/errors.js';
import { DEFAULT_PREFIX, LabNetwork, parseNetnsList, removeStaleLabNetworks, staleLabNamespaces } from '../../src/lab/netns.js';
import { measureThroughput } from '../../src/lab/throughput.js';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';

const MB = 1e6;
const MiB = 1024 * 1024;
/** TCP payload at 1 Gbit/s of frames: 1e9 / 8 x 1448 / 1514 = 119.6 MB/s (lab-notes measured 119.3). */
const GBIT_PAYLOAD = (1e9 / 8) * (1448 / 1514);

function netnsList(): string[] {
  return parseNetnsList(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }));
}

/** Other processes on the machine may own namespaces; only the lab's are compared. */
function labNamespaces(): string[] {
  return netnsList()
    .filter((name) => name.startsWith(`${DEFAULT_PREFIX}-`))
    .sort();
}

function links(ns: string): string[] {
  return JSON.parse(execFileSync('ip', ['-n', ns, '-j', 'link', 'show'], { encoding: 'utf8' })).map((link: { ifname: string }) => link.ifname);
}

describe('lab network names (pure)', () => {
  it('reads `ip netns list` with and without ids', () => {
    expect(parseNetnsList('lmenet-1-ab-src (id: 2)\nother\n\n')).toEqual(['lmenet-1-ab-src', 'other']);
  });

  it('finds the namespaces of dead lab runs only', () => {
    const names = ['lmenet-10-abc-src', 'lmenet-10-abc-lan', 'lmenet-20-def-dst', 'lmenet-x-1-src', 'lme-lab-10', 'other-10-abc-src'];
    expect(staleLabNamespaces(names, (pid) => pid === 20)).toEqual(['lmenet-10-abc-src', 'lmenet-10-abc-lan']);
  });
});

describe.runIf(requireEnvironment(missingTools('ip', 'tc'), needsRoot()))('lab network namespaces (real ip and tc)', () => {
  let network: LabNetwork | undefined;

  afterEach(async () => {
    await network?.destroy();
    network = undefined;
  });

  it('builds src, dst and lan with their devices, and removes them all: ip netns list before == after', async () => {
    const before = labNamespaces();
    network = await LabNetwork.create();
    const { src, dst, lan } = network.namespaces;
    expect(netnsList()).toEqual(expect.arrayContaining([src, dst, lan]));
    expect(links(src).sort()).toEqual(['br0', 'lo', 'mig0', 'tap0', 'uplink']);
    expect(links(dst).sort()).toEqual(['br0', 'lo', 'mig0', 'tap0', 'uplink']);
    expect(links(lan).sort()).toEqual(['br0', 'lo', 'to-dst', 'to-src']);
    // The taps and uplinks are ports of their host's bridge; the uplinks' peers, of the LAN's.
    const master = (ns: string, dev: string): string => JSON.parse(execFileSync('ip', ['-n', ns, '-j', 'link', 'show', dev], { encoding: 'utf8' }))[0].master;
    expect([master(src, 'tap0'), master(src, 'uplink'), master(lan, 'to-src'), master(lan, 'to-dst')]).toEqual(['br0', 'br0', 'br0', 'br0']);
    execFileSync('ip', ['netns', 'exec', src, 'ping', '-c', '1', '-W', '2', network.migrationAddress('dst')]);

    await network.destroy();
    network = undefined;
    expect(labNamespaces()).toEqual(before);
    for (const name of [src, dst, lan]) expect(netnsList()).not.toContain(name);
  });

  it('two networks at once get different names', async () => {
    network = await LabNetwork.create();
    const other = await LabNetwork.create();
    try {
      expect(Object.values(other.namespaces)).not.toContain(network.namespaces.src);
    } finally {
      await other.destroy();
    }
  });

  it('puts tbf at 1gbit on both ends of the migration link; a TCP copy runs at about 119 MB/s', async () => {
    network = await LabNetwork.create();
    for (const host of ['src', 'dst'] as const) {
      const qdisc = execFileSync('tc', ['-n', network.namespaces[host], 'qdisc', 'show', 'dev', 'mig0'], { encoding: 'utf8' });
      expect(qdisc).toMatch(/qdisc tbf \S+ root .*rate 1Gbit burst 262\d{3}b lat 50ms/);
    }
    const result = await measureThroughput({ network, bytes: 128 * MiB });
    console.log(`migration link at 1gbit: ${(result.bytesPerSecond / MB).toFixed(1)} MB/s (128 MiB in ${result.seconds.toFixed(3)} s)`);
    expect(result.bytesPerSecond).toBeLessThan(1e9 / 8);
    expect(result.bytesPerSecond).toBeGreaterThan(0.8 * GBIT_PAYLOAD);
  });

  it('takes another rate, and none at all', async () => {
    network = await LabNetwork.create({ rate: '100mbit' });
    const slow = await measureThroughput({ network, bytes: 16 * MiB });
    await network.destroy();
    network = await LabNetwork.create({ rate: null });
    expect(execFileSync('tc', ['-n', network.namespaces.src, 'qdisc', 'show', 'dev', 'mig0'], { encoding: 'utf8' })).not.toMatch(/tbf/);
    const fast = await measureThroughput({ network, bytes: 128 * MiB });
    console.log(`migration link at 100mbit: ${(slow.bytesPerSecond / MB).toFixed(2)} MB/s; unshaped: ${(fast.bytesPerSecond / MB).toFixed(0)} MB/s`);
    expect(slow.bytesPerSecond).toBeLessThan(1e8 / 8);
    expect(slow.bytesPerSecond).toBeGreaterThan(0.8 * GBIT_PAYLOAD / 10);
    expect(fast.bytesPerSecond).toBeGreaterThan(slow.bytesPerSecond);
  });

  it('a rate tc refuses fails with LME_LAB_NETWORK naming it, and leaves nothing behind', async () => {
    const before = labNamespaces();
    const err = await LabNetwork.create({ rate: 'fast' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LivemigError);
    expect((err as LivemigError).code).toBe('LME_LAB_NETWORK');
    expect((err as LivemigError).message).toMatch(/tc -n \S+ qdisc add dev mig0 root tbf rate fast/);
    expect(labNamespaces()).toEqual(before);
  });

  it('a missing ip binary is LME_LAB_TOOL_MISSING, before anything is made', async () => {
    const before = labNamespaces();
    const err = await LabNetwork.create({ ipBinary: '/nonexistent/ip' }).catch((e: unknown) => e);
    expect((err as LivemigError).code).toBe('LME_LAB_TOOL_MISSING');
    expect((err as LivemigError).message).toContain('/nonexistent/ip');
    expect((err as LivemigError).message).toContain('iproute2');
    expect(labNamespaces()).toEqual(before);
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`a process stopped by ${signal} removes its network on the way out`, async () => {
      const { child, namespaces } = await childWithNetwork();
      for (const name of namespaces) expect(netnsList()).toContain(name);
      const exit = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, sig) => resolve(sig)));
      child.kill(signal);
      expect(await exit).toBe(signal);
      for (const name of namespaces) expect(netnsList()).not.toContain(name);
    });
  }

  it('a killed process (SIGKILL) leaves its namespaces; removeStaleLabNetworks() removes them', async () => {
    const { child, namespaces } = await childWithNetwork();
    const exit = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exit;
    for (const name of namespaces) expect(netnsList()).toContain(name);
    const removed = await removeStaleLabNetworks();
    expect(removed).toEqual(expect.arrayContaining(namespaces));
    for (const name of namespaces) expect(netnsList()).not.toContain(name);
  });
});

/** A Node process that builds a lab network, prints its namespaces and waits to be signalled. */
async function childWithNetwork(): Promise<{ child: ReturnType<typeof spawn>; namespaces: string[] }> {
  const module = new URL('../../src/lab/netns.ts', import.meta.url).href;
  const program = `const { LabNetwork } = await import(${JSON.stringify(module)});
const network = await LabNetwork.create();
console.log(JSON.stringify(Object.values(network.namespaces)));
setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', program], { stdio: ['ignore', 'pipe', 'inherit'] });
  const namespaces = await new Promise<string[]>((resolve, reject) => {
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0] ?? '[]'));
    });
    child.once('exit', (code) => reject(new Error(`child exited ${code} before creating its network: ${out}`)));
  });
  return { child, namespaces };
}
