import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { NovaEnricher } from '../../src/enrichers/nova/nova-enricher.js';
import { destinationOfUri, NovaMigrations } from '../../src/enrichers/nova/nova-migrations.js';
import type { NovaMigration } from '../../src/records/record.js';
import { novaRecord } from '../../src/enrichers/nova/nova-record.js';
import { migrationRecordSchema } from '../../src/records/record-schema.js';
import { MigrationStore } from '../../src/records/store.js';
import { parseLibvirtLine } from '../../src/sources/logs/libvirt-parse.js';
import { parseNovaLine } from '../../src/sources/logs/nova-parse.js';
import type { LogEvent } from '../../src/sources/logs/source.js';
import { parseTimeZone } from '../../src/config/timezone.js';
import { recordEnded } from '../helpers/records.js';
import { FakeClock } from './tracker-scenarios.js';

const UUID = '0b5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f';
const UTC = parseTimeZone('UTC');
const logger = pino({ level: 'silent' });

/** The nova events of a fixture as the log source hands them on, tagged with the host that logged them. */
function events(fixture: string, host: string, zone = UTC): LogEvent[] {
  const text = readFileSync(new URL(`../fixtures/logs/${fixture}`, import.meta.url), 'utf8');
  return text
    .split('\n')
    .map((l) => parseNovaLine(l, zone))
    .flatMap((p) => (p.kind === 'event' ? [{ source: 'nova-compute' as const, host, path: `/var/log/nova/${fixture}`, line: p }] : []));
}

function byTime(...lists: LogEvent[][]): LogEvent[] {
  const t = (e: LogEvent) => (e.source === 'nova-compute' ? e.line.timeMs : e.timeMs);
  return lists.flat().sort((a, b) => t(a) - t(b));
}

function run(evs: LogEvent[], lingerMs = 30_000): { closed: NovaMigration[]; machine: NovaMigrations } {
  const closed: NovaMigration[] = [];
  const machine = new NovaMigrations((u) => (u === UUID ? 'web-1' : undefined), (m) => closed.push(m), lingerMs);
  for (const e of evs) machine.observe(e);
  return { closed, machine };
}

const at = (iso: string) => Date.parse(iso);

describe('nova migrations from the 2026.1 source and destination logs', () => {
  const evs = byTime(events('nova-compute.33.0-2026.1.src.log', 'compute-1'), events('nova-compute.33.0-2026.1.dst.log', 'compute-2'));

  it('one migration: hosts from who logged what, phase times, progress bytes, result', () => {
    const { closed, machine } = run(evs);
    // Told at the success line; the Stopped line 15 s later still lands in the same migration.
    expect(closed).toHaveLength(1);
    expect(machine.current()).toHaveLength(1);
    machine.expire(at('2026-03-10T12:36:00Z'), 3_600_000);
    expect(closed).toHaveLength(1);
    expect(machine.current()).toEqual([]);
    const f = closed[0]!.figures;
    expect(f).toMatchObject({
      instanceUuid: UUID,
      requestId: 'req-6f0e2a1b-3c4d-4e5f-8a9b-0c1d2e3f4a5b',
      sourceHost: 'compute-1',
      destinationHost: 'compute-2',
      destinationName: 'compute-2',
      result: 'completed',
      failure: null,
      memoryProcessedBeforePostcopy: 2147483648,
    });
    expect(f.startedAt).toEqual({ value: at('2026-03-10T12:34:51.700Z'), evidence: 'nova-compute log on compute-1, line at 2026-03-10T12:34:51.700Z: monitoring-started' });
    expect(f.preLiveMigrationSeconds?.value).toBe(1.5);
    expect(f.postcopyAt?.value).toBe(at('2026-03-10T12:35:02.760Z'));
    expect(f.resumedAt).toEqual({ value: at('2026-03-10T12:35:02.800Z'), evidence: expect.stringContaining('on compute-2') });
    expect(f.completedAt?.value).toBe(at('2026-03-10T12:35:09.300Z')); // the lifecycle event came first
    expect(f.endedAt?.value).toBe(at('2026-03-10T12:35:10.900Z'));
    expect(f.completionTimeoutAt?.value).toBe(at('2026-03-10T12:35:02.250Z'));
    expect(f.downtimeSteps).toEqual([{ downtimeMs: 50, afterSeconds: 0, at: at('2026-03-10T12:34:52.220Z') }]);
    expect(f.progress).toMatchObject({ memoryProcessed: 4617089843, memoryRemaining: 85899345, memoryTotal: 4294967296, diskProcessed: 0, diskTotal: 0 });
    expect(f.progress?.at.value).toBe(at('2026-03-10T12:35:07.800Z'));
  });

  it('a record from the logs alone: times, bytes and mode from the lines, each figure naming its line', () => {
    const { closed, machine } = run(evs);
    machine.expire(at('2026-03-10T12:36:00Z'), 3_600_000);
    const r = novaRecord('web-1', { flavor: 'm' }, closed[0]!.figures)!;
    expect(migrationRecordSchema.safeParse(r).success).toBe(true);
    expect(r).toMatchObject({
      id: `web-1@${at('2026-03-10T12:34:51.700Z')}`,
      vm: 'web-1',
      labels: { flavor: 'm' },
      source: { host: 'compute-1', monitor: 'nova-compute log' },
      destination: { host: 'compute-2', monitor: 'nova-compute log' },
      result: 'completed',
      // The completion timeout (a force-complete) came before the switch, and 2 GiB of 4 GiB
      // were processed by then: not one full pass
      mode: 'postcopy',
      durationSeconds: { value: 17.6 },
    });
    expect(r.endedAt?.evidence).toContain('lifecycle Migration completed');
    expect(r.bytes.transferred).toEqual({ value: 4617089843, evidence: expect.stringContaining('memory + disk bytes processed; a lower bound') });
    expect(r.qemu.downtimeMs).toBeNull();
  });
});

describe('nova migrations of older releases and failures', () => {
  it.each([
    ['nova-compute.18.0-rocky.src.log', '2018-09-10T14:00:00Z'],
    ['nova-compute.20.0-train.hybrid.src.log', '2019-12-02T08:00:00Z'],
    ['nova-compute.33.0-2026.1.hybrid.src.log', '2026-03-10T13:00:00Z'],
  ])('%s: nova switched to post-copy with no force-complete before it, so after a full pass: hybrid from the logs alone', (fixture, later) => {
    const { closed, machine } = run(events(fixture, 'compute-1'));
    machine.expire(at(later), 3_600_000);
    expect(closed).toHaveLength(1);
    const record = novaRecord('web-1', {}, closed[0]!.figures)!;
    expect(record.postcopyAt?.evidence).toContain('nova-compute log on compute-1');
    expect(record.mode).toBe('hybrid');
  });

  it('a failure naming the destination\'s libvirt URI gives the destination', () => {
    const line = '2019-12-02 07:45:09.120 1123 ERROR nova.virt.libvirt.driver [req-6f0e2a1b-3c4d-4e5f-8a9b-0c1d2e3f4a5b 8f3e9a7c2b1d4e6f8a9b0c1d2e3f4a5b 4a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d - default default] [instance: 0b5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f] Live Migration failure: operation failed: Failed to connect to remote libvirt URI qemu+tcp://compute-2/system: Cannot recv data: Connection reset by peer';
    const parsed = parseNovaLine(line, UTC);
    expect(parsed.kind).toBe('event');
    const evs = [...events('nova-compute.20.0-train.src.log', 'compute-1').slice(0, 2), { source: 'nova-compute' as const, host: 'compute-1', path: '/var/log/nova/nova-compute.log', line: parsed as Extract<typeof parsed, { kind: 'event' }> }];
    const { closed } = run(evs);
    expect(closed[0]!.figures).toMatchObject({ result: 'failed', destinationName: 'compute-2' });
    expect(novaRecord('web-1', {}, closed[0]!.figures)?.destination?.host).toBe('compute-2');
  });

  it.each([
    ['Failed to connect to remote libvirt URI qemu+tcp://compute-2/system: x', 'compute-2'],
    ['unable to connect to server at qemu+ssh://nova@10.0.0.7/system?keyfile=k', '10.0.0.7'],
    ['Failed to connect to remote libvirt URI qemu+tls://[fd00::7]:16514/system', '[fd00::7]'],
    ['operation failed: migration job: unexpectedly failed', null],
    ['cannot open qemu:///system', null],
  ])('destinationOfUri(%j) is %j', (reason, host) => {
    expect(destinationOfUri(reason)).toBe(host);
  });

  it('Juno: failure logged twice (driver, manager) and a traceback: one failed migration with the reason', () => {
    const { closed, machine } = run(events('nova-compute.2014.2-juno.src.log', 'compute-1'));
    machine.expire(at('2014-11-03T09:00:00Z'), 3_600_000);
    expect(closed).toHaveLength(1);
    expect(closed[0]!.figures).toMatchObject({ result: 'failed', failure: 'operation failed: migration job: unexpectedly failed', sourceHost: 'compute-1' });
    expect(closed[0]!.figures.resultEvidence).toContain('failure');
  });

  it('Liberty: cancelled after the completion timeout', () => {
    const { closed, machine } = run(events('nova-compute.12.0-liberty.src.log', 'compute-1'));
    machine.expire(at('2015-11-20T10:00:00Z'), 3_600_000);
    expect(closed.map((m) => m.figures.result)).toEqual(['cancelled']);
    expect(closed[0]!.figures.completionTimeoutAt?.value).toBe(at('2015-11-20T09:33:00.500Z'));
  });

  it('Icehouse: success without progress lines; the start is the first source line', () => {
    const { closed, machine } = run(byTime(events('nova-compute.2014.1-icehouse.src.log', 'compute-1'), events('nova-compute.2014.1-icehouse.dst.log', 'compute-2')));
    machine.expire(at('2014-05-12T11:00:00Z'), 3_600_000);
    expect(closed).toHaveLength(1);
    expect(closed[0]!.figures).toMatchObject({ result: 'completed', destinationHost: 'compute-2', sourceHost: 'compute-1', progress: null });
    expect(closed[0]!.figures.startedAt?.value).toBe(at('2014-05-12T10:00:05.404Z'));
  });

  it('lifecycle lines alone (a reboot) open no migration; lines of unknown instances are ignored', () => {
    const line = (msg: string, uuid = UUID) => parseNovaLine(`2026-03-10 12:00:00.000 1 INFO nova.compute.manager [-] [instance: ${uuid}] ${msg}`, UTC);
    const ev = (p: ReturnType<typeof line>): LogEvent => {
      if (p.kind !== 'event') throw new Error('not an event');
      return { source: 'nova-compute', host: 'compute-1', path: '/x', line: p };
    };
    const { closed, machine } = run([ev(line('VM Stopped (Lifecycle Event)')), ev(line('VM Started (Lifecycle Event)')), ev(line('Migration operation has completed', '11111111-2222-4333-8444-555555555555'))]);
    machine.expire(at('2026-03-10T13:00:00Z'), 60_000);
    expect(closed).toEqual([]);
    expect(machine.current()).toEqual([]);
  });

  it('a migration whose end nova never logged closes as failed after the stale timeout', () => {
    const evs = events('nova-compute.33.0-2026.1.src.log', 'compute-1').slice(0, 5);
    const { closed, machine } = run(evs);
    machine.expire(at('2026-03-10T12:40:00Z'), 3_600_000);
    expect(closed).toEqual([]);
    machine.expire(at('2026-03-10T13:40:00Z'), 3_600_000);
    expect(closed.map((m) => [m.figures.result, m.figures.resultEvidence])).toEqual([['failed', expect.stringContaining('stale_migration_timeout')]]);
  });

  it('libvirt per-domain logs (stamped in UTC) add the destination QEMU start and the source QEMU stop to nova lines written in UTC+1', () => {
    const cet = parseTimeZone('+01:00');
    const libvirt = (fixture: string, host: string): LogEvent[] => {
      const lines = readFileSync(new URL(`../fixtures/logs/${fixture}`, import.meta.url), 'utf8').split('\n').map(parseLibvirtLine);
      const start = lines.find((l) => l.kind === 'starting');
      const shut = lines.find((l) => l.kind === 'shutdown');
      const out: LogEvent[] = [];
      if (fixture.includes('dst') && start?.kind === 'starting') out.push({ source: 'libvirt-qemu', host, path: fixture, event: 'qemu-incoming', timeMs: start.timeMs, instanceUuid: UUID, incoming: 'defer' });
      if (shut?.kind === 'shutdown') out.push({ source: 'libvirt-qemu', host, path: fixture, event: 'qemu-shutdown', timeMs: shut.timeMs, instanceUuid: UUID, reason: shut.reason });
      return out;
    };
    const evs = byTime(
      events('nova-compute.33.0-2026.1.src.log', 'compute-1', cet),
      events('nova-compute.33.0-2026.1.dst.log', 'compute-2', cet),
      libvirt('libvirt-qemu.instance-0000002a.dst.log', 'compute-2'),
      libvirt('libvirt-qemu.instance-0000002a.src.log', 'compute-1'),
    );
    const { closed, machine } = run(evs);
    machine.expire(at('2026-03-10T12:36:00Z'), 3_600_000);
    expect(closed[0]!.figures.startedAt?.value).toBe(at('2026-03-10T11:34:51.700Z'));
    expect(closed[0]!.figures.destinationQemuStartedAt?.value).toBe(at('2026-03-10T11:34:51.912Z'));
    expect(closed[0]!.figures.sourceQemuStoppedAt?.value).toBe(at('2026-03-10T11:35:09.402Z'));
  });
});

describe('NovaEnricher: into the records', () => {
  function setup(migrating = false) {
    const clock = new FakeClock(at('2026-03-10T12:36:00Z'));
    const store = new MigrationStore({ maxRecords: 100, maxAgeMs: 365 * 86_400_000, clock });
    const made: string[] = [];
    const attribution = new NovaEnricher({
      clock,
      store,
      logger,
      labelsOf: () => ({ flavor: 'm' }),
      isMigrating: () => migrating,
      patch: (id, section) => store.patch(id, section),
      closeUnstored: (r) => store.add(r) && made.push(r.id) > 0,
    });
    const { closed, machine } = run(byTime(events('nova-compute.33.0-2026.1.src.log', 'compute-1'), events('nova-compute.33.0-2026.1.dst.log', 'compute-2')));
    machine.expire(at('2026-03-10T12:36:00Z'), 3_600_000);
    return { clock, store, made, attribution, nova: closed[0]! };
  }

  it('a record the QMP tracker closed for the same time gets the nova section; both sets of figures stay', () => {
    const { store, attribution, nova, made } = setup();
    const qmp = recordEnded('web-1', at('2026-03-10T12:34:51.900Z'), at('2026-03-10T12:35:09.250Z'), { qemu: { downtimeMs: { value: 42, evidence: 'qmp:source query-migrate downtime' }, setupTimeMs: null, totalTimeMs: null, postcopyRequests: null, passes: null, passesBeforePostcopy: null, errorDesc: null } });
    store.add(qmp);
    attribution.novaClosed(nova, 20_000);
    const r = store.get(qmp.id)!;
    expect(r.nova?.sourceHost).toBe('compute-1');
    expect(r.qemu.downtimeMs?.evidence).toContain('qmp:');
    expect(r.nova?.postcopyAt?.evidence).toContain('nova-compute log on compute-1');
    expect(store.size).toBe(1);
    expect(made).toEqual([]);
  });

  it('a tracker record that closes while nova waits gets it too', () => {
    const { store, attribution, nova, clock } = setup();
    attribution.novaClosed(nova, 20_000);
    clock.advance(5_000);
    attribution.tick();
    const qmp = recordEnded('web-1', at('2026-03-10T12:34:51.900Z'), at('2026-03-10T12:35:09.250Z'));
    store.add(qmp);
    attribution.closed(qmp);
    expect(store.get(qmp.id)?.nova?.result).toBe('completed');
    clock.advance(60_000);
    attribution.tick();
    expect(store.size).toBe(1);
  });

  it('without a tracker record: a record from the logs alone after the grace, not before', () => {
    const { store, attribution, nova, clock, made } = setup();
    attribution.novaClosed(nova, 20_000);
    clock.advance(19_000);
    attribution.tick();
    expect(store.size).toBe(0);
    clock.advance(2_000);
    attribution.tick();
    expect(made).toEqual([`web-1@${at('2026-03-10T12:34:51.700Z')}`]);
    expect(store.get(made[0]!)?.source.monitor).toBe('nova-compute log');
  });

  it('while the tracker still has the VM migrating, it waits', () => {
    const { store, attribution, nova, clock } = setup(true);
    attribution.novaClosed(nova, 2_000);
    clock.advance(10_000);
    attribution.tick();
    clock.advance(10_000);
    attribution.tick();
    expect(store.size).toBe(0);
  });

  it("the destination's lines read after the source's closing line still reach the record the tracker closed", () => {
    const clock = new FakeClock(at('2026-03-10T12:36:00Z'));
    const store = new MigrationStore({ maxRecords: 100, maxAgeMs: 365 * 86_400_000, clock });
    const enricher = new NovaEnricher({
      clock,
      store,
      logger,
      labelsOf: () => ({}),
      isMigrating: () => false,
      patch: (id, section) => store.patch(id, section),
      closeUnstored: (r) => store.add(r),
    });
    const qmp = recordEnded('web-1', at('2026-03-10T12:34:51.900Z'), at('2026-03-10T12:35:09.250Z'));
    store.add(qmp);
    const machine = new NovaMigrations((u) => (u === UUID ? 'web-1' : undefined), (m) => enricher.novaClosed(m, 20_000));
    // Each host's log is read on its own: here the source's whole log first, its success line included.
    for (const e of [...events('nova-compute.33.0-2026.1.src.log', 'compute-1'), ...events('nova-compute.33.0-2026.1.dst.log', 'compute-2')]) machine.observe(e);
    expect(store.get(qmp.id)?.nova).toMatchObject({ sourceHost: 'compute-1', destinationHost: 'compute-2', result: 'completed' });
    expect(store.size).toBe(1);
  });
});
