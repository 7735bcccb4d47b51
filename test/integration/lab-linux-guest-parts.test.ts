import { describe, expect, it } from 'vitest';
import { LivemigError } from '../../src/errors.js';
import { newcArchive, type CpioEntry } from '../../src/lab/guest/cpio.js';
import { dependencyMatching, parseControl } from '../../src/lab/guest/debian.js';
import { linuxGuestAppend } from '../../src/lab/guest/linux.js';
import { loadOrder, moduleDepends, parseModinfo, parseModulesBuiltin } from '../../src/lab/guest/kmod.js';
import { outages, parseFpingLine } from '../../src/lab/lan-probe.js';
import { linuxVmQemuOptions, macForAddress } from '../../src/lab/linux-vm.js';
import { labNetworkLayout, type LabNetwork } from '../../src/lab/netns.js';
import { qemuArgs } from '../../src/lab/qemu.js';

/**
 * The pure parts of the Linux guest and its ping path: no root, QEMU or network needed.
 * (Named lab-linux-guest-* to sit with the integration suite they serve.)
 */

interface CpioRecord {
  name: string;
  mode: number;
  rdev: [number, number];
  data: Buffer;
}

/** Reads a newc archive back (the test's own reader, to check the writer against the format). */
function readNewc(archive: Buffer): CpioRecord[] {
  const records: CpioRecord[] = [];
  let offset = 0;
  const align = (n: number): number => (n + 3) & ~3;
  for (;;) {
    const header = archive.toString('ascii', offset, offset + 110);
    expect(header.slice(0, 6)).toBe('070701');
    const field = (i: number): number => parseInt(header.slice(6 + i * 8, 14 + i * 8), 16);
    const nameBytes = field(11);
    const name = archive.toString('utf8', offset + 110, offset + 110 + nameBytes - 1);
    const dataStart = align(offset + 110 + nameBytes);
    const data = archive.subarray(dataStart, dataStart + field(6));
    offset = align(dataStart + field(6));
    if (name === 'TRAILER!!!') break;
    records.push({ name, mode: field(1), rdev: [field(9), field(10)], data });
  }
  expect(offset).toBe(archive.length);
  return records;
}

describe('newc cpio writer', () => {
  const entries: CpioEntry[] = [
    { type: 'dir', path: 'bin' },
    { type: 'file', path: 'bin/busybox', data: Buffer.from('abcde'), mode: 0o755 },
    { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    { type: 'dir', path: 'dev' },
    { type: 'char', path: 'dev/console', major: 5, minor: 1 },
    { type: 'file', path: 'init', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
  ];

  it('writes every entry with its type, mode, device and data, 4-byte aligned, then the trailer', () => {
    const records = readNewc(newcArchive(entries));
    expect(records.map((r) => [r.name, r.mode.toString(8)])).toEqual([
      ['bin', '40755'],
      ['bin/busybox', '100755'],
      ['bin/sh', '120777'],
      ['dev', '40755'],
      ['dev/console', '20600'],
      ['init', '100755'],
    ]);
    expect(records[1]?.data.toString()).toBe('abcde');
    expect(records[2]?.data.toString()).toBe('busybox');
    expect(records[4]?.rdev).toEqual([5, 1]);
  });

  it('gives the same bytes for the same entries', () => {
    expect(newcArchive(entries).equals(newcArchive(entries))).toBe(true);
  });

  it.each(['/init', 'bin/', 'a/../b', 'a//b', ''])('refuses the path %j', (path) => {
    expect(() => newcArchive([{ type: 'dir', path }])).toThrow(LivemigError);
  });

  it('refuses a path given twice', () => {
    expect(() => newcArchive([{ type: 'dir', path: 'x' }, { type: 'dir', path: 'x' }])).toThrow(/appears twice/);
  });
});

/** A minimal ELF64 relocatable with a .modinfo section, as a kernel module carries. */
function fakeModule(modinfo: string[]): Buffer {
  const shstrtab = Buffer.from('\0.modinfo\0.shstrtab\0');
  const info = Buffer.from(modinfo.map((entry) => `${entry}\0`).join(''));
  const infoOffset = 64;
  const strOffset = infoOffset + info.length;
  const shoff = strOffset + shstrtab.length;
  const elf = Buffer.alloc(shoff + 3 * 64);
  elf.writeUInt32LE(0x464c457f, 0);
  elf[4] = 2;
  elf[5] = 1;
  elf.writeBigUInt64LE(BigInt(shoff), 0x28);
  elf.writeUInt16LE(3, 0x3c);
  elf.writeUInt16LE(2, 0x3e);
  info.copy(elf, infoOffset);
  shstrtab.copy(elf, strOffset);
  const section = (index: number, name: number, offset: number, size: number): void => {
    const at = shoff + index * 64;
    elf.writeUInt32LE(name, at);
    elf.writeBigUInt64LE(BigInt(offset), at + 0x18);
    elf.writeBigUInt64LE(BigInt(size), at + 0x20);
  };
  section(1, 1, infoOffset, info.length);
  section(2, 10, strOffset, shstrtab.length);
  return elf;
}

describe('kernel modules without depmod', () => {
  it('reads depends= from .modinfo', () => {
    const info = parseModinfo(fakeModule(['license=GPL', 'depends=virtio_ring,virtio,net_failover', 'name=virtio_net']), 'virtio_net.ko');
    expect(moduleDepends(info)).toEqual(['virtio_ring', 'virtio', 'net_failover']);
    expect(moduleDepends(parseModinfo(fakeModule(['depends=']), 'failover.ko'))).toEqual([]);
  });

  it('names the file when it is not a module', () => {
    expect(() => parseModinfo(Buffer.from('not an elf at all, but long enough to have a header ........'), 'x.ko')).toThrow(/x\.ko.*no ELF header/);
  });

  it('orders dependencies first, each once, skipping built-ins', () => {
    const deps: Record<string, string[]> = {
      virtio_net: ['virtio_ring', 'virtio', 'net_failover'],
      virtio_pci: ['virtio_ring', 'virtio_pci_modern_dev', 'virtio'],
      net_failover: ['failover'],
      virtio: ['virtio_ring'],
    };
    const order = loadOrder(['virtio_pci', 'virtio-net'], (name) => deps[name] ?? []);
    expect(order).toEqual(['virtio_ring', 'virtio_pci_modern_dev', 'virtio', 'virtio_pci', 'failover', 'net_failover', 'virtio_net']);
    expect(loadOrder(['virtio_net'], (name) => deps[name] ?? [], new Set(['virtio_net']))).toEqual([]);
  });

  it('reports a dependency cycle', () => {
    expect(() => loadOrder(['a'], (name) => (name === 'a' ? ['b'] : ['a']))).toThrow(/a -> b -> a/);
  });

  it('reads modules.builtin', () => {
    expect(parseModulesBuiltin('kernel/drivers/virtio/virtio.ko\nkernel/net/packet/af-packet.ko\n')).toEqual(new Set(['virtio', 'af_packet']));
  });
});

describe('Debian package fields', () => {
  const show = 'Package: linux-image-cloud-amd64\nVersion: 6.1.192-2\nDepends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)\nDescription: Linux\n more text\n\nPackage: second\n';

  it('reads the first stanza', () => {
    const fields = parseControl(show);
    expect(fields.get('Version')).toBe('6.1.192-2');
    expect(fields.get('Description')).toBe('Linux\nmore text');
    expect(fields.has('Package') && fields.get('Package')).toBe('linux-image-cloud-amd64');
  });

  it('finds the kernel image a metapackage depends on', () => {
    const pkg = { name: 'linux-image-cloud-amd64', version: '6.1.192-2', depends: parseControl(show).get('Depends') ?? '' };
    expect(dependencyMatching(pkg, /^linux-image-\d/)).toBe('linux-image-6.1.0-56-cloud-amd64');
    expect(() => dependencyMatching({ ...pkg, depends: 'foo' }, /^linux-image-\d/)).toThrow(/linux-image-cloud-amd64 6\.1\.192-2/);
  });
});

describe('the guest command line and its QEMU options', () => {
  const guest = { address: '198.19.0.10/24', arpNotify: false, fillMiB: 32, dirtyMiB: 16 };

  it('carries the console and every lme.* parameter', () => {
    expect(linuxGuestAppend(guest)).toBe('console=ttyS0 loglevel=4 ipv6.disable=1 lme.addr=198.19.0.10/24 lme.arp_notify=0 lme.fill=32 lme.dirty=16');
  });

  it.each([
    [{ address: '198.19.0.10' }, /address "198\.19\.0\.10" is not IPv4 ADDRESS\/PREFIX/],
    [{ address: '198.19.0.300/24' }, /address/],
    [{ fillMiB: -1 }, /fillMiB -1/],
    [{ dirtyMiB: 1.5 }, /dirtyMiB 1\.5/],
  ])('refuses %j', (change, message) => {
    expect(() => linuxGuestAppend({ ...guest, ...change })).toThrow(message);
  });

  it('derives one MAC from the address, the same for source and destination', () => {
    expect(macForAddress('198.19.0.10/24')).toBe('52:54:00:13:00:0a');
    expect(() => macForAddress('fe80::1')).toThrow(/not IPv4/);
  });

  it('boots the kernel under TCG in the host namespace, on its tap, serial console on stdout', () => {
    const network = { layout: labNetworkLayout('lmenet-1-ab'), namespaces: labNetworkLayout('lmenet-1-ab').namespaces } as unknown as LabNetwork;
    const image = { kernel: '/c/vmlinuz', initrd: '/c/initrd.img', kernelRelease: 'r', packages: {}, modules: [] };
    const options = linuxVmQemuOptions({ name: 'vm-dst', image, guest, network, host: 'dst', memoryMiB: 128, qmpSockets: ['/t/q'], incoming: true });
    expect(options.netns).toBe('lmenet-1-ab-dst');
    const args = qemuArgs({ ...options, accel: 'tcg' });
    expect(args.join(' ')).toContain('-accel tcg -cpu qemu64');
    expect(args.join(' ')).toContain(`-kernel /c/vmlinuz -initrd /c/initrd.img -append ${linuxGuestAppend(guest)}`);
    expect(args.join(' ')).toContain('-chardev stdio,id=guestlog,signal=off -serial chardev:guestlog');
    expect(args.join(' ')).toContain('-incoming defer');
    expect(args.join(' ')).toContain('-netdev tap,id=lan0,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=lan0,mac=52:54:00:13:00:0a');
    expect(args).not.toContain('-bios');
    expect(() => linuxVmQemuOptions({ name: 'x', image, guest, network, host: 'src', memoryMiB: 128, qmpSockets: ['/t/q'], mac: '01:00:5e:00:00:01' })).toThrow(/not a unicast MAC/);
  });
});

describe('fping lines and outages', () => {
  const target = '198.19.0.10';

  it('reads replies and timeouts with their send times', () => {
    const reply = parseFpingLine('[1795639548.58637] 198.19.0.10 : [20], 64 bytes, 0.054 ms (0.063 avg, 0% loss)', target, 1000);
    expect(reply).toEqual({ seq: 20, printedMs: expect.closeTo(1795639548586.37, 2), sentMs: expect.closeTo(1795639548586.316, 2), rttMs: 0.054 });
    const lost = parseFpingLine('[1795639548.78639] 198.19.0.10 : [21], timed out (0.063 avg, 4% loss)', target, 1000);
    expect(lost).toEqual({ seq: 21, printedMs: expect.closeTo(1795639548786.39, 2), sentMs: expect.closeTo(1795639547786.39, 2) });
  });

  it('ignores other targets, duplicates and summaries', () => {
    expect(parseFpingLine('[1.5] 198.19.0.11 : [1], 64 bytes, 0.1 ms (0.1 avg, 0% loss)', target, 1000)).toBeUndefined();
    expect(parseFpingLine('[1.5] 198.19.0.10 : [1], 64 bytes, 0.1 ms (0.1 avg, 0% loss) (DUP!)', target, 1000)).toBeUndefined();
    expect(parseFpingLine('198.19.0.10 : xmt/rcv/%loss = 50/35/30%, outage(ms) = 1500', target, 1000)).toBeUndefined();
  });

  it('finds runs of consecutive losses, from the first lost send to the next answered send', () => {
    const probe = (seq: number, lost: boolean): { seq: number; printedMs: number; sentMs: number; rttMs?: number } =>
      lost ? { seq, printedMs: seq * 100 + 1000, sentMs: seq * 100 } : { seq, printedMs: seq * 100 + 1, sentMs: seq * 100, rttMs: 1 };
    const results = [probe(0, false), probe(2, true), probe(1, true), probe(3, false), probe(4, true)];
    expect(outages(results)).toEqual([
      { startMs: 100, endMs: 300, lost: 2, firstSeq: 1 },
      { startMs: 400, endMs: Number.NaN, lost: 1, firstSeq: 4 },
    ]);
  });
});
