import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { normalizeMac, parseTcpdumpLine, tcpdumpArgs, type CapturedFrame } from '../../src/sources/frames/tcpdump-line.js';

/** Real tcpdump 4.99.3 output, made by test/fixtures/tcpdump/capture.sh (see its header). */
const fixture = (name: string) => readFileSync(new URL(`../fixtures/tcpdump/${name}`, import.meta.url), 'utf8').split('\n');
const frameLines = fixture('frames.txt').filter((l) => /^\d/.test(l));
const VM = '52:54:00:4c:4d:01';
const HOST = '52:54:00:4c:4d:fe';
const BCAST = 'ff:ff:ff:ff:ff:ff';

function frameOf(line: string): CapturedFrame {
  const parsed = parseTcpdumpLine(line);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.frame;
}

/** The stamp's microseconds as ms, by integer arithmetic (not the parser's). */
const stampMs = (line: string) => Number(line.slice(0, line.indexOf(' ')).replace('.', '')) / 1000;

// frames.txt, in the order capture.sh sends them: [kind, ethertype, vlan, destination].
const EXPECTED: [CapturedFrame['kind'], number, number | null, string][] = [
  ['rarp', 0x8035, null, BCAST], // QEMU's self-announce: Reverse Request who-is VM tell VM
  ['garp', 0x0806, null, BCAST], // Request who-has 198.19.0.10 tell 198.19.0.10
  ['garp', 0x0806, null, BCAST], // the same, target MAC all ones: "(ff:ff:ff:ff:ff:ff)"
  ['garp', 0x0806, null, BCAST], // Reply 198.19.0.10 is-at VM, broadcast (arping -A)
  ['garp', 0x0806, null, BCAST], // the same, target MAC its own
  ['guest', 0x0800, null, HOST], // ICMP echo reply
  ['guest', 0x86dd, null, '33:33:00:00:00:01'], // ICMPv6 neighbour advertisement
  ['guest', 0x0806, null, BCAST], // Request who-has 198.19.0.1 tell 198.19.0.10
  ['guest', 0x0806, null, HOST], // a reply to one asker
  ['rarp', 0x8035, 100, BCAST],
  ['garp', 0x0806, 100, BCAST],
  ['guest', 0x0800, 100, HOST],
  ['garp', 0x0806, 100, BCAST], // "vlan 100, p 5, DEI, ethertype ARP"
  ['garp', 0x0806, 200, BCAST], // QinQ: the outer tag's id, the innermost ethertype
  ['guest', 0x88b5, null, BCAST], // an ethertype tcpdump does not know (a hex dump follows)
];

describe('parseTcpdumpLine on captured frames', () => {
  it('reads every frame of frames.txt: kind, MACs, inner ethertype, VLAN and time', () => {
    expect(frameLines.map((l) => {
      const f = frameOf(l);
      return [f.kind, f.ethertype, f.vlan, f.destinationMac];
    })).toEqual(EXPECTED);
    for (const line of frameLines) {
      const frame = frameOf(line);
      expect(frame.sourceMac).toBe(VM);
      expect(frame.atMs).toBeCloseTo(stampMs(line), 3);
    }
  });

  it('reads filtered.txt (tcpdumpArgs\' filter, with another MAC sending the same frames and one to the VM): the VM\'s and the one to it, no unknown ethertype', () => {
    const lines = fixture('filtered.txt').filter((l) => l !== '');
    const frames = lines.map(frameOf);
    const fromVm = frames.filter((f) => f.sourceMac === VM);
    expect(fromVm.map((f) => [f.kind, f.ethertype, f.vlan, f.destinationMac])).toEqual(EXPECTED.slice(0, -1));
    expect(frames.filter((f) => f.sourceMac !== VM).map((f) => [f.sourceMac, f.destinationMac, f.ethertype])).toEqual([['52:54:00:4c:4d:02', VM, 0x0800]]);
  });

  it('keeps the sub-ms fraction of the stamp, and reads --nano stamps', () => {
    const rest = ` ${VM} > ${BCAST}, ethertype Reverse ARP (0x8035), length 60: Reverse Request who-is ${VM} tell ${VM}, length 46`;
    expect(frameOf(`1700000000.000001${rest}`).atMs).toBe(1700000000000.001);
    expect(frameOf(`1796213793.736490${rest}`).atMs).toBeCloseTo(1796213793736.49, 3);
    expect(frameOf(`1700000000.123456789${rest}`).atMs).toBeCloseTo(1700000000123.4568, 3);
  });

  it('reads the (Broadcast) target of a request printed without -n, and upper-case MACs', () => {
    const line = `1796213793.738556 52:54:00:4C:4D:01 > FF:FF:FF:FF:FF:FF, ethertype ARP (0x0806), length 60: Request who-has 198.19.0.10 (Broadcast) tell 198.19.0.10, length 46`;
    expect(frameOf(line)).toMatchObject({ kind: 'garp', sourceMac: VM, destinationMac: BCAST, vlan: null, ethertype: 0x0806 });
  });
});

describe('parseTcpdumpLine on lines that are not frames', () => {
  it('refuses every line of not-frames.txt, the hex dump lines and the blank line tcpdump ends with, quoting them', () => {
    const lines = [...fixture('not-frames.txt'), ...fixture('frames.txt').filter((l) => !/^\d/.test(l))];
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines) {
      const parsed = parseTcpdumpLine(line);
      expect(parsed.ok, line).toBe(false);
      if (!parsed.ok) expect(parsed.reason).toContain(JSON.stringify(line.slice(0, 80)).slice(0, -1));
    }
    expect(parseTcpdumpLine('\t0x0000:  6c6f 6361 6c20 6578  local.ex')).toEqual({
      ok: false,
      reason: 'a continuation line (tcpdump\'s hex dump of the frame before), not a frame: "\\t0x0000:  6c6f 6361 6c20 6578  local.ex"',
    });
  });

  it('names an unreadable VLAN tag, and cuts what it quotes to 80 chars', () => {
    const head = `1796213793.756502 ${VM} > ${BCAST}, ethertype 802.1Q (0x8100), length 60: `;
    expect(parseTcpdumpLine(`${head}garbage`)).toEqual({ ok: false, reason: 'unreadable VLAN tag: "garbage"' });
    const parsed = parseTcpdumpLine(`garbage ${'x'.repeat(200)}`);
    expect(parsed).toEqual({ ok: false, reason: `not a tcpdump -e -n -tt Ethernet frame line: "garbage ${'x'.repeat(72)}…"` });
  });

  it('refuses a line far longer than tcpdump prints', () => {
    const parsed = parseTcpdumpLine(`${frameLines[0]}${' x'.repeat(5000)}`);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(/^line of 10\d{3} chars, longer than tcpdump prints: "1796/);
  });

  it('never throws, on arbitrary strings or on mutated captured lines', () => {
    fc.assert(fc.property(fc.string({ maxLength: 400, unit: 'binary' }), (s) => {
      const parsed = parseTcpdumpLine(s);
      expect(typeof parsed.ok).toBe('boolean');
    }));
    const mutated = fc
      .tuple(fc.constantFrom(...frameLines), fc.nat(300), fc.nat(20), fc.string({ maxLength: 20 }))
      .map(([line, at, cut, insert]) => line.slice(0, at) + insert + line.slice(at + cut));
    fc.assert(fc.property(mutated, (line) => {
      const parsed = parseTcpdumpLine(line);
      if (parsed.ok) {
        expect(['rarp', 'garp', 'guest']).toContain(parsed.frame.kind);
        expect(Number.isFinite(parsed.frame.atMs)).toBe(true);
      } else {
        expect(parsed.reason.length).toBeLessThan(200);
      }
    }), { numRuns: 2000 });
  });
});

describe('normalizeMac', () => {
  it.each([
    ['52:54:00:4c:4d:01', VM],
    ['52:54:00:4C:4D:01', VM],
    ['52-54-00-4C-4D-01', VM],
    ['52:54:00:4c:4d', null],
    ['52:54:00-4c:4d:01', null],
    ['52:54:00:4c:4d:0g', null],
    [' 52:54:00:4c:4d:01', null],
    ['5254.004c.4d01', null],
    ['', null],
  ])('%j -> %j', (text, mac) => {
    expect(normalizeMac(text)).toBe(mac);
  });
});

describe('tcpdumpArgs', () => {
  it('prints the MAC\'s RARP, ARP, IPv4, IPv6 and VLAN frames unbuffered, headers only, at most N', () => {
    expect(tcpdumpArgs('tap3f2a1b4c-5d', 'FA-16-3E-12-34-56', 2000)).toEqual([
      '-i', 'tap3f2a1b4c-5d', '-l', '-n', '-e', '-tt', '-s', '128', '-c', '2000', '--immediate-mode',
      'ether host fa:16:3e:12:34:56 and (rarp or arp or ip or ip6 or vlan)',
    ]);
  });

  it.each([
    ['-w/tmp/x', VM, 1, /^device: not a Linux interface name: "-w\/tmp\/x"$/],
    ['-i', VM, 1, /^device: /],
    ['', VM, 1, /^device: /],
    ['a-name-of-16-chr', VM, 1, /^device: /],
    ['tap 0', VM, 1, /^device: /],
    ['tap0/1', VM, 1, /^device: /],
    ['tap0', '52:54:00:4c:4d', 1, /^mac: not a MAC address: "52:54:00:4c:4d"$/],
    ['tap0', `${VM} or ether`, 1, /^mac: /],
    ['tap0', VM, 0, /^maxFrames: not a positive integer: 0$/],
    ['tap0', VM, 1.5, /^maxFrames: /],
    ['tap0', VM, Number.NaN, /^maxFrames: /],
    ['tap0', VM, Number.POSITIVE_INFINITY, /^maxFrames: /],
  ])('refuses device %j, mac %j, maxFrames %s with a RangeError naming it', (device, mac, max, message) => {
    expect(() => tcpdumpArgs(device, mac, max)).toThrow(RangeError);
    expect(() => tcpdumpArgs(device, mac, max)).toThrow(message);
  });

  it('takes names up to 15 chars, with dots, colons and inner dashes', () => {
    for (const device of ['a', 'eth0.100', 'eth0:1', 'br_ex-0', 'a-name-of-15-ch']) {
      expect(tcpdumpArgs(device, VM, 1)[1]).toBe(device);
    }
  });

  it.runIf(requireEnvironment(missingTools('tcpdump'), needsRoot()))('its filter compiles in this tcpdump (tcpdump -d on lo)', () => {
    const program = execFileSync('tcpdump', ['-d', '-i', 'lo', tcpdumpArgs('lo', VM, 1).at(-1) as string], { encoding: 'utf8' });
    expect(program).toMatch(/ret\s+#262144|ret\s+#128/);
  });
});

