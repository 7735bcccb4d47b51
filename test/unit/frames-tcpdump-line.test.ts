import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeMac, parseTcpdumpLine, tcpdumpArgs } from '../../src/sources/frames/tcpdump-line.js';

/** Captured with tcpdump 4.99.3 -l -e -n -tt by test/fixtures/tcpdump/capture.sh. */
const fixture = (name: string) => readFileSync(new URL(`../fixtures/tcpdump/${name}`, import.meta.url), 'utf8').split('\n');
const frames = fixture('frames.txt').filter((l) => /^\d/.test(l));
const MAC = '52:54:00:4c:4d:01';

describe('tcpdump -e -n -tt lines', () => {
  it('reads every captured frame: kind, MACs, inner ethertype, VLAN and time', () => {
    const read = frames.map((l) => {
      const p = parseTcpdumpLine(l);
      if (!p.ok) throw new Error(p.reason);
      return [p.frame.kind, p.frame.ethertype.toString(16), p.frame.vlan, p.frame.destinationMac === 'ff:ff:ff:ff:ff:ff' ? 'broadcast' : p.frame.destinationMac];
    });
    expect(read).toEqual([
      ['rarp', '8035', null, 'broadcast'], // QEMU's self-announce
      ['garp', '806', null, 'broadcast'], // who-has ITSELF tell ITSELF
      ['garp', '806', null, 'broadcast'], // the same, with tcpdump's (ff:ff:ff:ff:ff:ff) target
      ['garp', '806', null, 'broadcast'], // a reply about itself, broadcast
      ['garp', '806', null, 'broadcast'],
      ['guest', '800', null, '52:54:00:4c:4d:fe'], // ICMP echo reply
      ['guest', '86dd', null, '33:33:00:00:00:01'], // ICMPv6 neighbour advertisement
      ['guest', '806', null, 'broadcast'], // the guest asking for its gateway
      ['guest', '806', null, '52:54:00:4c:4d:fe'], // a reply to one asker
      ['rarp', '8035', 100, 'broadcast'],
      ['garp', '806', 100, 'broadcast'],
      ['guest', '800', 100, '52:54:00:4c:4d:fe'],
      ['guest', '88b5', null, 'broadcast'], // an ethertype tcpdump does not know
    ]);
    const first = parseTcpdumpLine(frames[0] as string);
    expect(first).toMatchObject({ ok: true, frame: { sourceMac: MAC } });
    expect(first.ok && first.frame.atMs).toBeCloseTo(1796212338653.428, 3);
  });

  it('tells lines that are not frames, quoting them: hex dumps, banners, cut lines, garbage', () => {
    const lines = [...fixture('not-frames.txt'), ...fixture('frames.txt').filter((l) => /^\s/.test(l))];
    for (const line of lines) {
      const p = parseTcpdumpLine(line);
      expect(p.ok, line).toBe(false);
      if (!p.ok) expect(p.reason).toMatch(/^(not a tcpdump -e -n -tt frame line|802\.1Q frame without)/);
    }
    expect(parseTcpdumpLine('1796212338.672532 52:54:00:4c:4d:01 > ff:ff:ff:ff:ff:ff, ethertype 802.1Q (0x8100), length 60: garbage')).toEqual({
      ok: false,
      reason: '802.1Q frame without its vlan and inner ethertype: "garbage"',
    });
  });

  it('never throws, on any string or on a mutated real line', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => void parseTcpdumpLine(s)));
    fc.assert(
      fc.property(fc.constantFrom(...frames), fc.nat(200), fc.string({ maxLength: 20 }), (line, at, insert) => {
        const p = parseTcpdumpLine(line.slice(0, at) + insert + line.slice(at));
        if (p.ok) expect(['rarp', 'garp', 'guest']).toContain(p.frame.kind);
      }),
    );
  });
});

describe('the capture command', () => {
  it('takes only the MAC\'s frames of the kinds that tell where it is, unbuffered, capped', () => {
    expect(tcpdumpArgs('tap3f2a1b4c-5d', 'FA-16-3E-12-34-56', 2000)).toEqual([
      '-i', 'tap3f2a1b4c-5d', '-l', '-n', '-e', '-tt', '--immediate-mode', '-s', '128', '-c', '2000',
      'ether src fa:16:3e:12:34:56 and (rarp or arp or ip or ip6 or vlan)',
    ]);
  });

  it('refuses a bad device, MAC or cap, naming it', () => {
    expect(() => tcpdumpArgs('-w/tmp/x', MAC, 1)).toThrow(/device "-w\/tmp\/x" is not a network device name/);
    expect(() => tcpdumpArgs('a-device-name-too-long', MAC, 1)).toThrow(/is not a network device name/);
    expect(() => tcpdumpArgs('tap0', '52:54:00:4c:4d', 1)).toThrow(/mac "52:54:00:4c:4d" is not a MAC address/);
    expect(() => tcpdumpArgs('tap0', MAC, 0)).toThrow(/maxFrames 0 is not a positive whole number/);
    expect(normalizeMac(' 52-54-00-4C-4D-01 ')).toBe(MAC);
    expect(normalizeMac('52:54:00:4c:4d')).toBeNull();
  });

  it.runIf(process.getuid?.() === 0 && hasTcpdump())('the filter compiles in this tcpdump (tcpdump -d on lo)', () => {
    const args = tcpdumpArgs('lo', MAC, 1);
    const program = execFileSync('tcpdump', ['-d', '-i', 'lo', args.at(-1) as string], { encoding: 'utf8' });
    expect(program).toMatch(/ret/);
  });
});

function hasTcpdump(): boolean {
  try {
    execFileSync('tcpdump', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return process.env.CI === 'true';
  }
}
