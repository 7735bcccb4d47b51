import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalHost } from '../../src/hosts/local.js';
import { NetdevSource } from '../../src/sources/netdev/source.js';

const dir = mkdtempSync(join(tmpdir(), 'lme-netdev-source-'));
const HEADER = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
`;
const line = (name: string, rxBytes: bigint | number, rxPackets: number, txBytes: bigint | number, txPackets: number) =>
  `${name.padStart(6)}: ${rxBytes} ${rxPackets} 0 0 0 0 0 0 ${txBytes} ${txPackets} 0 0 0 0 0 0\n`;

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('NetdevSource (files on this machine, read through LocalHost)', () => {
  it('keeps totals across a reset and a 32-bit wrap; a bad line and a dead host stop nothing else', async () => {
    const good = join(dir, 'good');
    const errors: { host: string; message: string }[] = [];
    let now = 0;
    const source = new NetdevSource({
      clock: { wallMs: () => now, monoMs: () => now },
      periodMs: 1000,
      migratingPeriodMs: 100,
      isMigrating: () => false,
      onError: (host, err) => errors.push({ host, message: err.message }),
    });
    source.setHosts([
      { host: new LocalHost('a'), interfaces: ['veth*'], netdevPath: good },
      { host: new LocalHost('gone'), interfaces: ['eth0'], netdevPath: join(dir, 'missing') },
    ]);
    source.stop(); // the test steps the reads itself
    const total = (name: string) => source.snapshot().find((s) => s.host === 'a' && s.interface === name);

    writeFileSync(good, HEADER + line('veth0', 1000, 10, 2n ** 32n - 100n, 50) + line('lo', 5, 1, 5, 1) + 'veth9: broken\n');
    now = 1000;
    await source.readNow('a');
    expect(total('veth0')).toEqual({ host: 'a', interface: 'veth0', receiveBytes: 1000n, transmitBytes: 2n ** 32n - 100n });
    expect(total('lo')).toBeUndefined(); // not a watched interface
    expect(errors[0]?.message).toMatch(/^interface counters from .*good on host a: line "veth9: broken": 1 counters, the header announces 16$/);

    // rx: bytes and packets went back (device re-created); tx: bytes wrapped at 2^32, packets went on.
    writeFileSync(good, HEADER + line('veth0', 300, 3, 50, 60));
    now = 2000;
    await source.readNow('a');
    expect(total('veth0')).toMatchObject({ receiveBytes: 1300n, transmitBytes: 2n ** 32n + 50n });
    expect(source.resets('a')).toBe(1);

    expect(await source.readNow('gone')).toBeNull();
    expect(source.health()).toEqual([
      { host: 'a', up: true },
      { host: 'gone', up: false },
    ]);
    expect(errors.some((e) => e.host === 'gone' && /ENOENT/.test(e.message))).toBe(true);
  });

  it('reads at most the cap of interfaces of one host; those past it are told once (issue 13, cardinality)', async () => {
    const many = join(dir, 'many');
    const refused: string[][] = [];
    const source = new NetdevSource({
      clock: { wallMs: () => 0, monoMs: () => 0 },
      periodMs: 1000,
      migratingPeriodMs: 100,
      isMigrating: () => false,
      maxInterfacesPerHost: 3,
      onRefused: (_host, names) => refused.push(names),
    });
    source.setHosts([{ host: new LocalHost('h'), interfaces: ['vnet*'], netdevPath: many }]);
    source.stop();
    writeFileSync(many, HEADER + [0, 1, 2, 3, 4].map((i) => line(`vnet${i}`, 1, 1, 1, 1)).join(''));
    await source.readNow('h');
    await source.readNow('h');
    expect(source.snapshot().map((s) => s.interface)).toEqual(['vnet0', 'vnet1', 'vnet2']);
    expect(refused).toEqual([['vnet3', 'vnet4']]);
  });
});
