/**
 * libvirt's events and job statistics in the tracker's terms, on packets captured from a real
 * libvirt-driven hybrid migration between two libvirt 9.0 daemons (test/integration/lab-libvirt.test.ts,
 * test/fixtures/libvirt/README.md), then through the tracker: one record with libvirt's figures.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { libvirtMonitorId, type MonitorRef } from '../../src/observations.js';
import { decodeDomainEvent, type DomainEvent } from '../../src/sources/libvirt/events.js';
import { eventReports, jobStatsInfo, type DomainRole, type LibvirtReport } from '../../src/sources/libvirt/migration-reports.js';
import { jobTypeName } from '../../src/sources/libvirt/names.js';
import { decodePacket } from '../../src/sources/libvirt/packet.js';
import { typedParamsObject } from '../../src/sources/libvirt/typed-params.js';
import { read } from '../../src/sources/libvirt/wire.js';
import { decodeXdr } from '../../src/sources/libvirt/xdr.js';
import { capturedPacket } from '../helpers/libvirt-fixtures.js';
import { A, poll, reply, rig, SAMPLE_T0, type Draft } from './tracker-scenarios.js';

const event = (name: string): DomainEvent => {
  const { header, body } = decodePacket(capturedPacket(name));
  const decoded = decodeDomainEvent(header.procedure, body);
  if (!decoded) throw new Error(`${name} is not an event`);
  return decoded;
};

const runningJob = () => {
  const { body } = decodePacket(capturedPacket('domain-get-job-stats.migration-running.reply'));
  const { type, params } = decodeXdr('remote_domain_get_job_stats_ret', body, read.jobStats);
  return { typeName: jobTypeName(type), stats: typedParamsObject(params) };
};

describe('job statistics of a real migration as a query-migrate reply', () => {
  it('a running job (polled 1 s in): active, the memory figures under QEMU names, mbps from bytes/s, the expected downtime', () => {
    const { typeName, stats } = runningJob();
    expect(typeName).toBe('unbounded');
    expect(jobStatsInfo(typeName, stats, false)).toEqual({
      status: 'active',
      incoming: false,
      origin: 'libvirt',
      totalTimeMs: 968,
      setupTimeMs: 1,
      expectedDowntimeMs: 300,
      ram: {
        transferred: 20_145_277,
        remaining: 245_854_208,
        total: 269_090_816,
        duplicate: 766,
        normal: 4907,
        'normal-bytes': 20_099_072,
        'dirty-pages-rate': 0,
        mbps: (33_244_574 * 8) / 1e6,
        'dirty-sync-count': 1,
        'postcopy-requests': 0,
        'page-size': 4096,
      },
      disk: { total: 0, processed: 0, remaining: 0 },
    });
    expect(jobStatsInfo(typeName, stats, true)?.status).toBe('postcopy-active');
  });

  it("job-completed: completed, with libvirt's measured downtime and the totals", () => {
    const reports = eventReports(event('event.job-completed.migration'), 'source');
    expect(reports).toHaveLength(1);
    const [completed] = reports as [Extract<LibvirtReport, { kind: 'status' }>];
    expect(completed.what).toBe('job-completed event');
    expect(completed.info).toMatchObject({ status: 'completed', downtimeMs: 9, totalTimeMs: 6047, setupTimeMs: 1, ram: { transferred: 238_852_192, 'dirty-sync-count': 3, 'postcopy-requests': 546 } });
    expect(completed.info.expectedDowntimeMs).toBeUndefined();
  });

  it('a job that is not a migration (a save) gives no report; nor does no job at all', () => {
    expect(eventReports(event('event.job-completed.save'), 'source')).toEqual([]);
    expect(jobStatsInfo('none', {}, false)).toBeNull();
  });

  it('failed and cancelled jobs carry their status and libvirt error text', () => {
    expect(jobStatsInfo('failed', { operation: 5, errmsg: 'operation failed: migration out job: unexpectedly failed' }, false)).toMatchObject({
      status: 'failed',
      errorDesc: 'operation failed: migration out job: unexpectedly failed',
    });
    expect(jobStatsInfo('cancelled', { operation: 5 }, false)?.status).toBe('cancelled');
  });

  it('never throws and never invents a figure, whatever the statistics (property)', () => {
    const value = fc.oneof(fc.double(), fc.integer(), fc.boolean(), fc.string());
    fc.assert(
      fc.property(fc.constantFrom('none', 'bounded', 'unbounded', 'completed', 'failed', 'cancelled', 'unknown-9'), fc.dictionary(fc.string(), value), fc.boolean(), (type, stats, postcopy) => {
        const info = jobStatsInfo(type, stats, postcopy);
        if (info === null) return;
        for (const v of Object.values(info.ram ?? {})) expect(typeof v).toBe('number');
      }),
    );
  });
});

describe('lifecycle events of a real migration as the phases', () => {
  const cases: [string, DomainRole, string[]][] = [
    ['event.lifecycle.started-migrated', 'destination', ['status active (incoming, inmigrate)']],
    ['event.lifecycle.suspended-postcopy', 'source', ['MIGRATION postcopy-active']],
    ['event.lifecycle.resumed-postcopy', 'destination', ['RESUME', 'MIGRATION postcopy-active']],
    ['event.lifecycle.resumed-migrated', 'destination', ['RESUME', 'MIGRATION completed']],
    ['event.lifecycle.stopped-migrated', 'source', ['gone']],
    ['event.lifecycle.suspended-paused', null, []],
    ['event.lifecycle.resumed-unpaused', null, []],
  ];
  const summary = (r: LibvirtReport): string => {
    if (r.kind === 'gone') return 'gone';
    if (r.kind === 'status') return `status ${r.info.status}${r.info.incoming ? ` (incoming, ${r.runState})` : ''}`;
    return r.event === 'MIGRATION' ? `MIGRATION ${r.data.status}` : r.event;
  };
  for (const [name, role, expected] of cases) {
    it(`${name.replace('event.lifecycle.', '')} (${role ?? 'no role'}): ${expected.join(', ') || 'nothing'}`, () => {
      const reports = eventReports(event(name), role);
      expect(reports.map(summary)).toEqual(expected);
      const [kind, detail] = name.replace('event.lifecycle.', '').split('-') as [string, string];
      for (const r of reports) expect(r.what).toBe(`lifecycle event ${kind} ${detail}`);
    });
  }

  it('an incoming domain that stops before it ran the guest: its side failed', () => {
    const stopped = { ...(event('event.lifecycle.stopped-migrated') as Extract<DomainEvent, { kind: 'lifecycle' }>), detail: 'failed' };
    expect(eventReports(stopped, 'destination').map(summary)).toEqual(['MIGRATION failed', 'gone']);
    expect(eventReports(stopped, 'source').map(summary)).toEqual(['gone']);
  });
});

describe('the tracker on libvirt reports', () => {
  const SRC: MonitorRef = { vm: 'vm1', host: 'hostA', monitor: libvirtMonitorId('hostA') };
  const DST: MonitorRef = { vm: 'vm1', host: 'hostB', monitor: libvirtMonitorId('hostB') };
  const at = (offsetMs: number) => SAMPLE_T0 + offsetMs;
  const drafts = (ref: MonitorRef, wallMs: number, reports: LibvirtReport[]): Draft[] =>
    reports.map((r): Draft => {
      const base = { ref, wallMs, origin: 'libvirt' as const, what: r.what };
      if (r.kind === 'status') return { ...base, kind: 'qmp-status', info: r.info, ...(r.runState ? { runState: r.runState } : {}) };
      if (r.kind === 'event') return { ...base, kind: 'qmp-event', event: r.event, data: r.data };
      return { ...base, kind: 'monitor-gone', reason: r.reason };
    });
  const iteration = (n: number): LibvirtReport[] => [{ kind: 'event', event: 'MIGRATION_PASS', data: { pass: n }, what: `migration-iteration event ${n}` }];
  const polled = (postcopy: boolean): LibvirtReport[] => {
    const { typeName, stats } = runningJob();
    return [{ kind: 'status', info: jobStatsInfo(typeName, stats, postcopy)!, what: 'job stats (poll time)' }];
  };

  /** The order the real migration's events came in (docs/libvirt-migration-on-one-machine.md), the source's job polled at 2 Hz. */
  const migration = (): Draft[] => [
    ...drafts(DST, at(-50), eventReports(event('event.lifecycle.started-migrated'), 'destination')),
    ...drafts(SRC, at(0), iteration(1)),
    ...drafts(SRC, at(10), polled(false)),
    ...drafts(SRC, at(500), polled(false)),
    ...drafts(SRC, at(3000), iteration(2)),
    ...drafts(SRC, at(4990), polled(false)),
    ...drafts(SRC, at(5000), [{ kind: 'event', event: 'STOP', data: {}, what: 'lifecycle event suspended migrated' }]),
    ...drafts(SRC, at(5005), eventReports(event('event.lifecycle.suspended-postcopy'), 'source')),
    ...drafts(DST, at(5020), eventReports(event('event.lifecycle.resumed-postcopy'), 'destination')),
    ...drafts(SRC, at(5100), iteration(3)),
    ...drafts(DST, at(5600), eventReports(event('event.lifecycle.resumed-migrated'), 'destination')),
    ...drafts(SRC, at(6800), eventReports(event('event.job-completed.migration'), 'source')),
    ...drafts(SRC, at(6801), [{ kind: 'gone', reason: 'libvirt: domain stopped migrated', what: 'lifecycle event stopped migrated' }]),
  ];

  it("one record with libvirt's figures and evidence, hybrid after two passes", () => {
    const t = rig();
    t.feed(migration());
    const records = t.store.all();
    expect(records).toHaveLength(1);
    const r = records[0]!;
    expect(r).toMatchObject({
      result: 'completed',
      resultEvidence: 'libvirt:source job-completed event',
      mode: 'hybrid',
      source: { host: 'hostA', monitor: 'libvirt:hostA' },
      destination: { host: 'hostB', monitor: 'libvirt:hostB' },
      startedAt: { value: at(0), evidence: 'libvirt:source migration-iteration event 1' },
      stoppedAt: { value: at(5000), evidence: 'libvirt:source lifecycle event suspended migrated' },
      postcopyAt: { value: at(5005), evidence: 'libvirt:source lifecycle event suspended postcopy' },
      resumedAt: { value: at(5020), evidence: 'libvirt:destination lifecycle event resumed postcopy' },
      durationSeconds: { value: 6.047, evidence: 'libvirt:source job stats time_elapsed' },
    });
    expect(r.bytes.transferred).toEqual({ value: 238_852_192, evidence: 'libvirt:source job stats memory_processed' });
    expect(r.qemu.downtimeMs).toEqual({ value: 9, evidence: 'libvirt:source job stats downtime' });
    expect(r.qemu.passesBeforePostcopy).toEqual({ value: 2, evidence: 'libvirt:source migration-iteration events (highest before the switch-over)' });
    expect(r.bytes.precopy?.evidence).toBe("derived: memory_processed of the last pre-copy job stats before the switch (libvirt's job statistics have no pre-copy/post-copy split)");
  });

  it('a QMP monitor on the source host beside libvirt: still one record (the same QEMU)', () => {
    const t = rig();
    const qmpOnSource: MonitorRef = { ...A, host: 'hostA' };
    const qmp: Draft[] = [poll(qmpOnSource, at(20), reply('src.active')), poll(qmpOnSource, at(5010), reply('src.postcopy-active'))];
    t.feed([...migration(), ...qmp].sort((a, b) => a.wallMs - b.wallMs));
    const records = t.store.all();
    expect(records.map((r) => `${r.source.monitor} -> ${r.destination?.monitor}`)).toEqual(['libvirt:hostA -> libvirt:hostB']);
    expect(records[0]!.result).toBe('completed');
  });
});
