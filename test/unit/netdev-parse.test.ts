import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { interfaceMatches, parseProcNetDev, parseSysStatistic } from '../../src/sources/netdev/parse.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/proc/net/${name}`, import.meta.url), 'utf8');

describe('parseProcNetDev', () => {
  it('reads the current layout (Linux 6.18)', () => {
    const parsed = parseProcNetDev(fixture('dev.linux-6.18.44'));
    expect(parsed.errors).toEqual([]);
    expect(parsed.interfaces.map((i) => i.interface)).toEqual(['lo', 'ifb0', 'ifb1', 'eth0']);
    expect(parsed.interfaces[0]).toEqual({
      interface: 'lo',
      receiveBytes: 130292426411n,
      receivePackets: 3023706n,
      transmitBytes: 130292426411n,
      transmitPackets: 3023706n,
    });
    expect(parsed.interfaces[3]).toMatchObject({ receiveBytes: 1205998660n, transmitBytes: 4225629n, transmitPackets: 27082n });
  });

  it('reads the 2.2 layout from its header, a counter glued to the colon included', () => {
    const parsed = parseProcNetDev(fixture('dev.linux-2.2-layout'));
    expect(parsed.errors).toEqual([]);
    expect(parsed.interfaces[1]).toEqual({ interface: 'eth0', receiveBytes: 4294967000n, receivePackets: 100200n, transmitBytes: 98765432n, transmitPackets: 40000n });
  });

  it('reads the 2.0 layout, which has packets but no bytes', () => {
    const parsed = parseProcNetDev(fixture('dev.linux-2.0-layout'));
    expect(parsed.errors).toEqual([]);
    expect(parsed.interfaces[1]).toEqual({ interface: 'eth0', receiveBytes: null, receivePackets: 100200n, transmitBytes: null, transmitPackets: 40000n });
  });

  it('skips a bad line with the line and the reason, and reads the others', () => {
    const text = fixture('dev.linux-6.18.44').replace('  ifb0:       0       0', '  ifb0:       0      x0').replace('  ifb1:', '  ifb1: 7');
    const parsed = parseProcNetDev(`${text}garbage line\n`);
    expect(parsed.interfaces.map((i) => i.interface)).toEqual(['lo', 'eth0']);
    expect(parsed.errors).toHaveLength(3);
    expect(parsed.errors[0]).toMatch(/ifb0.*"x0" is not a counter/);
    expect(parsed.errors[1]).toMatch(/ifb1.*17 counters, the header announces 16/);
    expect(parsed.errors[2]).toMatch(/garbage line.*not a header/);
  });

  it('handles names with dots, dashes and @ (VLANs, veths) and 64-bit values', () => {
    const line = `veth-mig.10: 18446744073709551615 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n`;
    const parsed = parseProcNetDev(line);
    expect(parsed.interfaces[0]).toMatchObject({ interface: 'veth-mig.10', receiveBytes: 18446744073709551615n, transmitBytes: 5n });
  });
});

describe('parseSysStatistic', () => {
  it('reads one counter file and refuses anything else, naming it', () => {
    expect(parseSysStatistic('123456789012\n')).toBe(123456789012n);
    expect(() => parseSysStatistic('-1\n')).toThrow(/"-1\\n" is not a counter/);
    expect(() => parseSysStatistic('')).toThrow(/not a counter/);
  });
});

describe('interfaceMatches', () => {
  it('matches names and globs', () => {
    expect(interfaceMatches(['veth-mig*', 'eth1'], 'veth-mig-src')).toBe(true);
    expect(interfaceMatches(['veth-mig*', 'eth1'], 'eth1')).toBe(true);
    expect(interfaceMatches(['veth-mig*', 'eth1'], 'eth10')).toBe(false);
    expect(interfaceMatches(['eth[01]', 'bond?'], 'eth0')).toBe(true);
    expect(interfaceMatches(['eth[!01]'], 'eth0')).toBe(false);
    expect(interfaceMatches(['eth[!01]'], 'eth2')).toBe(true);
    expect(interfaceMatches(['bond?'], 'bond10')).toBe(false);
    expect(interfaceMatches(['a.b'], 'axb')).toBe(false);
    expect(interfaceMatches([], 'lo')).toBe(false);
  });
});
