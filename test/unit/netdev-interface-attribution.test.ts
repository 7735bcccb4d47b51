import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InterfaceEnricher } from '../../src/enrichers/interfaces/interface-enricher.js';
import type { MigrationRecord } from '../../src/records/record.js';
import type { InterfaceSample } from '../../src/sources/netdev/source.js';
import { parseProcNetDev } from '../../src/sources/netdev/parse.js';
import { fig, recordEnded } from '../helpers/records.js';

/** The real hybrid capture (test/fixtures/netdev/README.md) as the source host's reads. */
function hybridReads(host: string): { statuses: Map<string, number>; samples: InterfaceSample[] } {
  const text = readFileSync(new URL('../fixtures/netdev/hybrid-migration.src-mig0.100ms.txt', import.meta.url), 'utf8');
  const [head, ...blocks] = text.split(/^# (?=\d)/m);
  const statuses = new Map((head ?? '').replace('# statuses ', '').trim().split(' ').map((s) => [s.split('@')[0] as string, Number(s.split('@')[1])]));
  const samples = blocks.map((block) => {
    const wallMs = Number(block.slice(0, block.indexOf('\n')));
    const interfaces = new Map(
      parseProcNetDev(block.slice(block.indexOf('\n') + 1))
        .interfaces.filter((i) => i.interface === 'mig0')
        .map((i) => [i.interface, { receiveBytes: i.receiveBytes ?? 0n, transmitBytes: i.transmitBytes ?? 0n, receivePackets: i.receivePackets, transmitPackets: i.transmitPackets }]),
    );
    return { host, wallMs, monoMs: wallMs, interfaces };
  });
  return { statuses, samples };
}

function run(record: (statuses: Map<string, number>) => MigrationRecord): MigrationRecord[] {
  const { statuses, samples } = hybridReads('hostA');
  let now = 0;
  const out: MigrationRecord[] = [];
  const r = record(statuses);
  const attribution = new InterfaceEnricher({
    clock: { wallMs: () => now, monoMs: () => now },
    watched: (host) => host === 'hostA',
    settleMs: 2_000,
    patch: (id, section) => out.push({ ...r, ...section, id }),
  });
  for (const s of samples) {
    now = s.wallMs;
    attribution.sample(s);
    if (s.wallMs >= r.startedAt.value && s.wallMs - 110 < r.startedAt.value) attribution.started(r.vm);
  }
  attribution.closed(r);
  return out;
}

describe('InterfaceEnricher on the real hybrid capture', () => {
  it('fills postcopyAt from the reverse traffic when no monitor of the source answered, and says so', () => {
    const [record] = run((st) =>
      recordEnded('vm1', st.get('setup') as number, st.get('completed') as number, {
        statuses: [{ status: 'completed', at: st.get('completed') as number, side: 'destination' }],
      }),
    );
    const { statuses } = hybridReads('hostA');
    expect(record?.postcopyAt?.evidence).toMatch(/^netdev:hostA inferred from reverse traffic .*no QMP monitor of the source was reachable$/);
    expect(Math.abs((record?.postcopyAt?.value ?? NaN) - (statuses.get('postcopy-active') as number))).toBeLessThan(150);
    expect(record?.interfaces?.sourceTransmitBytes?.value).toBeGreaterThan(540e6);
  });

  it("keeps QEMU's own switch time when the source's monitor reported, with the inference beside it", () => {
    const [record] = run((st) =>
      recordEnded('vm1', st.get('setup') as number, st.get('completed') as number, {
        postcopyAt: fig(st.get('postcopy-active') as number, 'qmp:source event MIGRATION postcopy-active'),
        statuses: [{ status: 'setup', at: st.get('setup') as number, side: 'source' }],
      }),
    );
    expect(record?.postcopyAt?.evidence).toBe('qmp:source event MIGRATION postcopy-active');
    expect(record?.interfaces?.postcopyInferredAt?.value).toBeGreaterThan(record?.startedAt.value ?? Infinity);
  });

  it('gives null destination figures when the destination host is not watched', () => {
    const out = run((st) => recordEnded('vm1', st.get('setup') as number, st.get('completed') as number, { destination: { host: 'hostB', monitor: 'b' } }));
    expect(out).toHaveLength(1);
    expect(out[0]?.interfaces?.destinationReceiveBytes).toBeNull();
  });
});
