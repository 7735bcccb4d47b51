import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bytesBetween, inferPostcopyFromReverseTraffic, interfaceFigures, type DirectionPoint } from '../../src/enrichers/interfaces/interface-figures.js';
import { parseProcNetDev } from '../../src/sources/netdev/parse.js';

/** A capture (test/fixtures/netdev/README.md): the source's statuses and the mig0 reads. */
function capture(name: string): { statuses: Map<string, number>; points: DirectionPoint[] } {
  const text = readFileSync(new URL(`../fixtures/netdev/${name}`, import.meta.url), 'utf8');
  const [head, ...blocks] = text.split(/^# (?=\d)/m);
  const statuses = new Map((head ?? '').replace('# statuses ', '').trim().split(' ').map((s) => [s.split('@')[0] as string, Number(s.split('@')[1])]));
  const points = blocks.map((block) => {
    const wallMs = Number(block.slice(0, block.indexOf('\n')));
    const mig = parseProcNetDev(block.slice(block.indexOf('\n') + 1)).interfaces.find((i) => i.interface === 'mig0');
    if (!mig) throw new Error(`no mig0 in block ${wallMs}`);
    return { wallMs, forwardBytes: Number(mig.transmitBytes), reverseBytes: Number(mig.receiveBytes), reversePackets: Number(mig.receivePackets) };
  });
  return { statuses, points };
}

const during = (c: ReturnType<typeof capture>) =>
  c.points.filter((p) => p.wallMs >= (c.statuses.get('setup') ?? 0) - 150 && p.wallMs <= (c.statuses.get('completed') ?? Infinity) + 150);

describe('inferPostcopyFromReverseTraffic on real captures', () => {
  it('finds the switch of a hybrid migration within one read period of QEMU\'s postcopy-active', () => {
    const c = capture('hybrid-migration.src-mig0.100ms.txt');
    const switchAt = c.statuses.get('postcopy-active') as number;
    const inferred = inferPostcopyFromReverseTraffic(during(c));
    expect(inferred).not.toBeNull();
    expect(Math.abs((inferred as number) - switchAt)).toBeLessThan(150);
  });

  it('finds nothing in a pre-copy migration (bare acknowledgements only)', () => {
    expect(inferPostcopyFromReverseTraffic(during(capture('precopy-migration.src-mig0.100ms.txt')))).toBeNull();
  });

  it('puts the switch of a migration in post-copy from the start at its start', () => {
    const c = capture('postcopy-migration.src-mig0.100ms.txt');
    const inferred = inferPostcopyFromReverseTraffic(during(c));
    expect(Math.abs((inferred ?? NaN) - (c.statuses.get('postcopy-active') as number))).toBeLessThan(150);
  });

  it('ignores intervals without migration traffic', () => {
    const idle = Array.from({ length: 10 }, (_, i) => ({ wallMs: i * 100, forwardBytes: 0, reverseBytes: i * 90, reversePackets: i }));
    expect(inferPostcopyFromReverseTraffic(idle)).toBeNull();
  });
});

describe('interface figures', () => {
  const read = (wallMs: number, rx: bigint, tx: bigint, extra?: [string, bigint, bigint]) => ({
    wallMs,
    interfaces: new Map([
      ['mig0', { receiveBytes: rx, transmitBytes: tx }],
      ...(extra ? [[extra[0], { receiveBytes: extra[1], transmitBytes: extra[2] }] as const] : []),
    ]),
  });

  it('sums the watched interfaces between the two reads; one that appeared counts from 0', () => {
    expect(bytesBetween(read(0, 100n, 1000n), read(1000, 150n, 5000n, ['mig1', 7n, 9n]))).toEqual({ receive: 57n, transmit: 4009n, interfaces: ['mig0', 'mig1'] });
  });

  it('gives each direction with evidence, and null for a side without both reads', () => {
    const f = interfaceFigures(
      { host: 'src', before: read(1_000, 10n, 0n), after: read(5_000, 20n, 400_000_000n) },
      { host: 'dst', before: read(1_100, 0n, 5n), after: null },
    );
    expect(f.sourceTransmitBytes?.value).toBe(400_000_000);
    expect(f.sourceReceiveBytes?.value).toBe(10);
    expect(f.sourceTransmitBytes?.evidence).toBe('netdev:src mig0 tx between reads at 1970-01-01T00:00:01.000Z and 1970-01-01T00:00:05.000Z');
    expect(f.throughputBytesPerSecond?.value).toBe(100_000_000);
    expect(f.destinationReceiveBytes).toBeNull();
    expect(f.destinationTransmitBytes).toBeNull();
    expect(f.postcopyInferredAt).toBeNull();
  });
});
