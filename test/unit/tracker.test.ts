import { describe, expect, it } from 'vitest';
import type { ActiveMigration, MigrationRecord } from '../../src/records/record.js';
import { DESTINATION_GRACE_MS } from '../../src/tracker/outcome.js';
import {
  A,
  B,
  byTime,
  ev,
  gone,
  HYBRID,
  hybridDestinationEvents,
  hybridDestinationPolls,
  hybridSourceEvents,
  hybridSourcePolls,
  poll,
  reply,
  rig,
  runStateSample,
  SAMPLE_T0,
  shift,
  status,
  TIMEOUTS,
  VM,
  type Draft,
} from './tracker-scenarios.js';

function only(records: MigrationRecord[]): MigrationRecord {
  expect(records).toHaveLength(1);
  return records[0]!;
}

describe('MigrationTracker on the QEMU 7.2 hybrid samples', () => {
  it('events and polls of both sides: one record with every figure and its evidence', () => {
    const t = rig();
    t.feed(byTime(hybridSourceEvents(), hybridSourcePolls(), hybridDestinationEvents(), hybridDestinationPolls()));

    const r = only(t.store.all());
    expect(r.id).toBe(`${VM}@${Math.floor(SAMPLE_T0)}`);
    expect(r.labels).toEqual({ flavor: 'm1.small' });
    expect(r.source).toEqual({ host: 'hostA', monitor: A.monitor });
    expect(r.destination).toEqual({ host: 'hostB', monitor: B.monitor });
    expect(r.result).toBe('completed');
    expect(r.resultEvidence).toBe('qmp:source event MIGRATION completed');
    expect(r.mode).toBe('hybrid');
    expect(r.startedAt).toEqual({ value: SAMPLE_T0, evidence: 'qmp:source event MIGRATION setup' });
    expect(r.postcopyAt).toEqual({ value: HYBRID.postcopyAt, evidence: 'qmp:source event MIGRATION postcopy-active' });
    expect(r.stoppedAt).toEqual({ value: HYBRID.stoppedAt, evidence: 'qmp:source event STOP' });
    expect(r.resumedAt).toEqual({ value: HYBRID.resumedAt, evidence: 'qmp:destination event RESUME' });
    expect(r.endedAt).toEqual({ value: HYBRID.endedAt, evidence: 'qmp:source event MIGRATION completed' });
    expect(r.durationSeconds).toEqual({ value: 5.46, evidence: 'qmp:source query-migrate total-time' });
    expect(r.bytes).toEqual({
      transferred: { value: HYBRID.transferred, evidence: 'qmp:source query-migrate ram.transferred' },
      precopy: { value: HYBRID.precopy, evidence: 'qmp:source query-migrate ram.precopy-bytes' },
      postcopy: { value: HYBRID.postcopy, evidence: 'qmp:source query-migrate ram.postcopy-bytes' },
      downtime: { value: 0, evidence: 'qmp:source query-migrate ram.downtime-bytes' },
      disk: null,
    });
    expect(r.qemu).toEqual({
      downtimeMs: { value: 4, evidence: 'qmp:source query-migrate downtime' },
      setupTimeMs: { value: 4, evidence: 'qmp:source query-migrate setup-time' },
      totalTimeMs: { value: 5460, evidence: 'qmp:source query-migrate total-time' },
      postcopyRequests: { value: 38, evidence: 'qmp:source query-migrate ram.postcopy-requests' },
      passes: { value: 3, evidence: 'qmp:source query-migrate ram.dirty-sync-count' },
      passesBeforePostcopy: { value: 2, evidence: 'qmp:source event MIGRATION_PASS (highest before the switch-over)' },
      // The samples' destination had no postcopy-blocktime capability.
      postcopyBlocktimeMs: null,
      errorDesc: null,
    });
    expect(r.statuses.map((s) => `${s.side}:${s.status}`)).toEqual([
      'destination:setup',
      'source:setup',
      'destination:active',
      'source:active',
      'source:postcopy-active',
      'destination:postcopy-active',
      'destination:completed',
      'source:completed',
    ]);
    // QEMU's own time stamps, not the later poll times.
    expect(r.statuses.find((s) => s.side === 'source' && s.status === 'active')?.at).toBe(1795639395361.582);
    expect(r.resumedAfterRestart).toBe(false);
    expect(t.tracker.activeMigrations()).toEqual([]);
  });

  it('a post-copy reply polled at the switch, before its sync (constructed: count 2), does not make a hybrid post-copy (kill -9 campaign)', () => {
    const t = rig();
    const early = reply('src.postcopy-active');
    early.ram = { ...early.ram, 'dirty-sync-count': 2 };
    const polls = hybridSourcePolls().map((d) => (d.kind === 'qmp-status' && d.info.status === 'postcopy-active' ? { ...d, info: early } : d));
    t.feed(byTime(polls, hybridDestinationPolls()));
    const r = only(t.store.all());
    expect(r.mode).toBe('hybrid');
    expect(r.qemu.passesBeforePostcopy?.value).toBe(2);
  });

  it('polls only: start counted back from total-time, passes before the switch derived from dirty-sync-count', () => {
    const t = rig();
    t.feed(byTime(hybridSourcePolls(), hybridDestinationPolls()));
    const r = only(t.store.all());
    expect(r.result).toBe('completed');
    expect(r.mode).toBe('hybrid');
    // The setup reply says 'setup' with run state 'running': the source, opened at that poll.
    expect(r.startedAt).toEqual({ value: SAMPLE_T0 + 2, evidence: 'qmp:source query-migrate status setup (poll time)' });
    expect(r.postcopyAt).toEqual({ value: SAMPLE_T0 + 4550, evidence: 'qmp:source query-migrate status postcopy-active (poll time)' });
    expect(r.qemu.passesBeforePostcopy).toEqual({
      value: 2,
      evidence: 'derived: ram.dirty-sync-count of the final reply minus the sync QEMU makes at the switch',
    });
    expect(r.endedAt?.evidence).toBe('qmp:source query-migrate status completed (poll time)');
    expect(r.durationSeconds).toEqual({ value: 5.46, evidence: 'qmp:source query-migrate total-time' });
    expect(r.bytes.transferred?.value).toBe(HYBRID.transferred);
    expect(r.stoppedAt).toBeNull();
    expect(r.resumedAt).toEqual({ value: SAMPLE_T0 + 4600, evidence: 'qmp:destination query-status running (poll time)' });
  });

  it('polls only, setup missed: the start is the first reply time minus its total-time', () => {
    const t = rig();
    t.feed(byTime(hybridSourcePolls().slice(1), hybridDestinationPolls()));
    const r = only(t.store.all());
    expect(r.startedAt).toEqual({ value: SAMPLE_T0, evidence: 'qmp:source query-migrate total-time, counted back from the poll time' });
    expect(r.id).toBe(`${VM}@${Math.floor(SAMPLE_T0)}`);
  });

  it('events only: waits for the final reply, then closes without byte figures after the grace time', () => {
    const t = rig();
    t.feed(byTime(hybridSourceEvents(), hybridDestinationEvents()));
    expect(t.store.all()).toEqual([]);
    expect(t.tracker.activeMigrations().map((a) => a.phase)).toEqual(['postcopy']);

    t.clock.advance(TIMEOUTS.finalReplyMs);
    t.tracker.tick();
    const r = only(t.store.all());
    expect(r.result).toBe('completed');
    expect(r.mode).toBe('hybrid');
    expect(r.endedAt).toEqual({ value: HYBRID.endedAt, evidence: 'qmp:source event MIGRATION completed' });
    expect(r.bytes.transferred).toBeNull();
    expect(r.qemu.passes).toEqual({ value: 3, evidence: 'qmp:source event MIGRATION_PASS (highest)' });
    expect(r.durationSeconds?.evidence).toBe('exporter monotonic clock');
    expect(r.durationSeconds?.value).toBeCloseTo((HYBRID.endedAt - SAMPLE_T0) / 1000, 3);
  });

  it('the final reply arriving after the events closes at once, with its figures', () => {
    const t = rig();
    t.feed(byTime(hybridSourceEvents(), hybridDestinationEvents()));
    t.feed(hybridSourcePolls().slice(-1));
    expect(only(t.store.all()).bytes.transferred?.value).toBe(HYBRID.transferred);
  });

  it('walks the phases of every status transition of the samples, with typed events', () => {
    const t = rig();
    const seen: string[] = [];
    t.tracker.on('started', (a: ActiveMigration) => seen.push(`started:${a.phase}`));
    t.tracker.on('phase', (a: ActiveMigration) => seen.push(`phase:${a.phase}`));
    t.tracker.on('closed', (r: MigrationRecord) => seen.push(`closed:${r.result}`));

    const phases: string[] = [];
    for (const d of byTime(hybridSourcePolls(), hybridDestinationPolls())) {
      t.feed([d]);
      phases.push(t.tracker.activeMigrations()[0]?.phase ?? 'idle');
    }
    // The source's 'completed' leaves the migration open until the destination says so too
    // (DESTINATION_GRACE_MS), so the record carries both sides.
    expect(phases).toEqual(['setup', 'precopy', 'precopy', 'precopy', 'postcopy', 'postcopy', 'postcopy', 'idle']);
    expect(seen).toEqual(['started:setup', 'phase:precopy', 'phase:postcopy', 'closed:completed']);
  });

  it('reports the latest ram figures of the source while migrating', () => {
    const t = rig();
    t.feed(hybridSourcePolls().slice(0, 3));
    const [active] = t.tracker.activeMigrations();
    expect(active).toMatchObject({
      vm: VM,
      id: `${VM}@${Math.floor(SAMPLE_T0 + 2)}`,
      phase: 'precopy',
      status: 'active',
      source: { host: 'hostA' },
      destination: null,
      startedAtMs: SAMPLE_T0 + 2,
      ramAtMs: SAMPLE_T0 + 4449,
    });
    expect(active?.ram?.transferred).toBe(472_038_704);
  });

  it('the query-status run state tells a destination that reports neither ram nor socket-address', () => {
    const t = rig();
    const bare = { status: 'active', incoming: false };
    t.feed([poll(B, SAMPLE_T0 + 10, { status: 'setup', incoming: false }, 'inmigrate'), poll(B, SAMPLE_T0 + 20, bare, 'inmigrate')]);
    expect(t.tracker.activeMigrations()).toEqual([]);
    t.feed([poll(A, SAMPLE_T0 + 44, reply('src.active'), 'running')]);
    const [active] = t.tracker.activeMigrations();
    expect(active?.source.host).toBe('hostA');
    expect(active?.destination?.host).toBe('hostB');
  });
});

describe('MigrationTracker on the other QEMU 7.2 samples', () => {
  it('pre-copy only: mode precopy and QEMU 7 byte split', () => {
    const t = rig();
    t.feed([
      status(A, SAMPLE_T0, 'setup'),
      ev(A, SAMPLE_T0 + 5, 'MIGRATION_PASS', { pass: 1 }),
      status(A, SAMPLE_T0 + 6, 'active'),
      poll(A, SAMPLE_T0 + 44, reply('src.active'), 'running'),
      ev(A, SAMPLE_T0 + 4400, 'STOP'),
      status(A, SAMPLE_T0 + 4427, 'completed'),
      poll(A, SAMPLE_T0 + 4428, reply('src.completed-precopy-only'), 'postmigrate'),
    ]);
    const r = only(t.store.all());
    expect(r.result).toBe('completed');
    expect(r.mode).toBe('precopy');
    expect(r.postcopyAt).toBeNull();
    expect(r.qemu.passesBeforePostcopy).toBeNull();
    expect(r.bytes.precopy?.value).toBe(470_914_185);
    expect(r.bytes.postcopy?.value).toBe(0);
    expect(r.bytes.downtime?.value).toBe(4111);
    expect(r.qemu.downtimeMs?.value).toBe(1);
    expect(r.durationSeconds).toEqual({ value: 4.427, evidence: 'qmp:source query-migrate total-time' });
  });

  it('cancelled: the source decides, the destination failing afterwards adds nothing', () => {
    const t = rig();
    t.feed([
      poll(A, SAMPLE_T0 + 2, reply('src.setup'), 'running'),
      poll(B, SAMPLE_T0 + 20, reply('dst.active'), 'inmigrate'),
      poll(A, SAMPLE_T0 + 44, reply('src.active'), 'running'),
      status(A, SAMPLE_T0 + 1000, 'cancelling'),
      status(A, SAMPLE_T0 + 1001, 'cancelled'),
      poll(A, SAMPLE_T0 + 1002, reply('src.cancelled'), 'running'),
      // Constructed: the destination's load fails (its stderr sample) and it says so.
      status(B, SAMPLE_T0 + 1003, 'failed'),
      poll(B, SAMPLE_T0 + 1010, { status: 'failed', incoming: false }, 'inmigrate'),
      poll(A, SAMPLE_T0 + 6000, reply('src.cancelled'), 'running'),
    ]);
    const r = only(t.store.all());
    expect(r.result).toBe('cancelled');
    expect(r.destination?.host).toBe('hostB');
    // The cancelled reply carries no ram: the last figures before the end, said so.
    expect(r.bytes.transferred).toEqual({ value: 6_170_613, evidence: 'qmp:source query-migrate ram.transferred (last reply before the end)' });
    expect(r.durationSeconds?.evidence).toBe('exporter monotonic clock');
    expect(r.statuses.map((s) => s.status)).toContain('cancelling');
  });

  it('QEMU < 7.0 (constructed: the 7.2 replies without precopy/postcopy/downtime-bytes): the split is derived, said so', () => {
    const old = (name: string) => {
      const info = reply(name);
      const ram = { ...info.ram };
      delete ram['precopy-bytes'];
      delete ram['postcopy-bytes'];
      delete ram['downtime-bytes'];
      return { ...info, ram };
    };
    const t = rig();
    t.feed([
      poll(A, SAMPLE_T0 + 2, reply('src.setup'), 'running'),
      poll(A, SAMPLE_T0 + 44, old('src.active'), 'running'),
      poll(A, SAMPLE_T0 + 4449, old('src.active-at-postcopy-switch'), 'running'),
      poll(A, SAMPLE_T0 + 4550, old('src.postcopy-active'), 'finish-migrate'),
      poll(A, SAMPLE_T0 + 5460.5, old('src.completed'), 'postmigrate'),
    ]);
    const r = only(t.store.all());
    expect(r.bytes).toEqual({
      transferred: { value: HYBRID.transferred, evidence: 'qmp:source query-migrate ram.transferred' },
      precopy: { value: 472_038_704, evidence: 'derived: ram.transferred of the last pre-copy reply before the switch (QEMU < 7.0 reports no precopy-bytes)' },
      // ... which is what QEMU 7.2 itself reports as postcopy-bytes for this migration.
      postcopy: { value: HYBRID.postcopy, evidence: 'derived: qmp:source query-migrate ram.transferred minus the pre-copy bytes' },
      downtime: null,
      disk: null,
    });
  });

  it('failed to connect: polls give the error text', () => {
    const t = rig();
    t.feed([poll(A, SAMPLE_T0 + 1, reply('src.setup'), 'running'), poll(A, SAMPLE_T0 + 30, reply('src.failed-connect'), 'running')]);
    const r = only(t.store.all());
    expect(r.result).toBe('failed');
    expect(r.qemu.errorDesc).toBe("Failed to connect to '127.0.0.1:1': Connection refused");
    expect(r.bytes.transferred).toBeNull();
    expect(r.mode).toBe('precopy');
  });

  it('failed to connect, polled between QEMU setting FAILED and storing the error: the next reply gives the error text', () => {
    const t = rig();
    const withoutError = { status: 'failed', incoming: false };
    t.feed([status(A, SAMPLE_T0, 'setup'), poll(A, SAMPLE_T0 + 2, withoutError, 'running'), status(A, SAMPLE_T0 + 1, 'failed')]);
    expect(t.store.all()).toEqual([]);
    t.feed([poll(A, SAMPLE_T0 + 1002, reply('src.failed-connect'), 'running')]);
    expect(only(t.store.all()).qemu.errorDesc).toBe("Failed to connect to '127.0.0.1:1': Connection refused");
  });

  it('failed, and no reply ever gives the error text: closed after the grace time without one', () => {
    const t = rig();
    t.feed([status(A, SAMPLE_T0, 'setup'), poll(A, SAMPLE_T0 + 2, { status: 'failed', incoming: false }, 'running')]);
    t.clock.advance(TIMEOUTS.finalReplyMs);
    t.tracker.tick();
    const r = only(t.store.all());
    expect(r.result).toBe('failed');
    expect(r.qemu.errorDesc).toBeNull();
    // The reply that closes nothing now is the one this migration was waiting for: no second record.
    t.feed([poll(A, t.clock.wallMs() + 1, reply('src.failed-connect'), 'running')]);
    expect(t.store.all()).toHaveLength(1);
  });

  it('failed to connect between two polls: none -> failed is a migration, failed again is not', () => {
    const t = rig();
    t.feed([
      poll(A, SAMPLE_T0 - 5000, { status: 'none', incoming: false }, 'running'),
      poll(A, SAMPLE_T0 + 30, reply('src.failed-connect'), 'running'),
      poll(A, SAMPLE_T0 + 5030, reply('src.failed-connect'), 'running'),
    ]);
    const r = only(t.store.all());
    expect(r.result).toBe('failed');
    expect(r.startedAt.evidence).toBe('qmp:source query-migrate status failed (poll time)');
  });

  it('failed to connect, events only (constructed): setup then failed is one failed migration', () => {
    const t = rig();
    t.feed([status(A, SAMPLE_T0, 'setup'), status(A, SAMPLE_T0 + 3, 'failed')]);
    t.clock.advance(TIMEOUTS.finalReplyMs);
    t.tracker.tick();
    expect(only(t.store.all()).result).toBe('failed');
  });

  it('post-copy paused after the destination was killed: stays open, closes as postcopy-paused when the source goes', () => {
    const t = rig();
    const paused = reply('src.postcopy-paused');
    t.feed([
      poll(A, SAMPLE_T0 + 2, reply('src.setup'), 'running'),
      poll(B, SAMPLE_T0 + 20, reply('dst.active'), 'inmigrate'),
      status(A, SAMPLE_T0 + 2400, 'postcopy-active'),
      status(A, SAMPLE_T0 + 2500, 'postcopy-paused'),
      gone(B, SAMPLE_T0 + 2501, 'QEMU exited'),
      poll(A, SAMPLE_T0 + 2507, paused, runStateSample()),
    ]);
    expect(t.store.all()).toEqual([]);
    expect(t.tracker.activeMigrations()[0]?.phase).toBe('postcopy-paused');

    t.feed([poll(A, SAMPLE_T0 + 60_000, paused, runStateSample()), gone(A, SAMPLE_T0 + 90_000, 'QEMU killed')]);
    const r = only(t.store.all());
    expect(r.result).toBe('postcopy-paused');
    expect(r.mode).toBe('postcopy');
    expect(r.qemu.passesBeforePostcopy?.value).toBe(1);
    expect(r.qemu.errorDesc).toMatch(/went away while post-copy was paused/);
    expect(r.endedAt?.evidence).toBe('exporter: source monitor went away (QEMU killed)');
    expect(r.bytes.postcopy).toEqual({ value: 12_591_127, evidence: 'qmp:source query-migrate ram.postcopy-bytes (last reply before the end)' });
  });

  it('post-copy paused without recovery: closed as postcopy-paused by the paused timeout', () => {
    const t = rig();
    t.feed([
      poll(A, SAMPLE_T0 + 2, reply('src.setup'), 'running'),
      status(A, SAMPLE_T0 + 2400, 'postcopy-active'),
      status(A, SAMPLE_T0 + 2500, 'postcopy-paused'),
      poll(A, SAMPLE_T0 + 2507, reply('src.postcopy-paused'), runStateSample()),
    ]);
    t.clock.advanceTo(SAMPLE_T0 + 2500 + TIMEOUTS.pausedMs - 1);
    t.tracker.tick();
    expect(t.store.all()).toEqual([]);
    t.clock.advance(1);
    t.tracker.tick();
    const r = only(t.store.all());
    expect(r.result).toBe('postcopy-paused');
    expect(r.qemu.errorDesc).toBe('still postcopy-paused after 3600 s without recovering');
  });

  it('post-copy paused past the paused timeout: the source still answering postcopy-paused (or recovering) opens no second migration', () => {
    // Seen for real (test/fault/daemon-faults.ts, destination QEMU killed in post-copy): the
    // source stays postcopy-paused for ever, and each poll after the close opened a new migration.
    const t = rig();
    const paused = reply('src.postcopy-paused');
    t.feed([
      poll(A, SAMPLE_T0 + 2, reply('src.setup'), 'running'),
      status(A, SAMPLE_T0 + 2400, 'postcopy-active'),
      status(A, SAMPLE_T0 + 2500, 'postcopy-paused'),
      poll(A, SAMPLE_T0 + 2507, paused, runStateSample()),
    ]);
    t.clock.advanceTo(SAMPLE_T0 + 2500 + TIMEOUTS.pausedMs);
    t.tracker.tick();
    expect(only(t.store.all()).result).toBe('postcopy-paused');
    for (let i = 1; i <= 3; i++) t.feed([poll(A, t.clock.wallMs() + 100, paused, runStateSample())]);
    expect(t.tracker.activeMigrations()).toEqual([]);
    t.clock.advance(TIMEOUTS.pausedMs + 1);
    t.tracker.tick();
    expect(t.store.all()).toHaveLength(1);
    // Recovered long after its record closed: still that migration, not a new one.
    t.feed([
      status(A, t.clock.wallMs() + 1, 'postcopy-recover-setup'),
      status(A, t.clock.wallMs() + 2, 'postcopy-recover'),
      status(A, t.clock.wallMs() + 3, 'postcopy-active'),
      status(A, t.clock.wallMs() + 4, 'completed'),
      poll(A, t.clock.wallMs() + 5, reply('src.completed'), 'postmigrate'),
    ]);
    t.clock.advance(TIMEOUTS.finalReplyMs);
    t.tracker.tick();
    expect(t.tracker.activeMigrations()).toEqual([]);
    expect(only(t.store.all()).result).toBe('postcopy-paused');
    // A new migration of the same QEMU begins with setup, and is one.
    t.feed([status(A, t.clock.wallMs() + 1000, 'setup'), poll(A, t.clock.wallMs() + 1001, reply('src.setup'), 'running')]);
    expect(t.tracker.activeMigrations()).toHaveLength(1);
  });

  it('post-copy paused, then recovered (constructed): one completed record that remembers the pause', () => {
    const t = rig();
    t.feed([
      poll(A, SAMPLE_T0 + 2, reply('src.setup'), 'running'),
      status(A, SAMPLE_T0 + 2400, 'postcopy-active'),
      status(A, SAMPLE_T0 + 2500, 'postcopy-paused'),
      status(A, SAMPLE_T0 + 30_000, 'postcopy-recover-setup'),
      status(A, SAMPLE_T0 + 30_001, 'postcopy-recover'),
      status(A, SAMPLE_T0 + 30_100, 'postcopy-active'),
    ]);
    expect(t.tracker.activeMigrations()[0]?.phase).toBe('postcopy');
    t.clock.advance(TIMEOUTS.pausedMs * 2);
    t.tracker.tick();
    expect(t.store.all()).toEqual([]);
    t.feed([status(A, t.clock.wallMs() + 1, 'completed'), poll(A, t.clock.wallMs() + 2, reply('src.completed'), 'postmigrate')]);
    const r = only(t.store.all());
    expect(r.result).toBe('completed');
    expect(r.statuses.map((s) => s.status)).toEqual([
      'setup',
      'postcopy-active',
      'postcopy-paused',
      'postcopy-recover-setup',
      'postcopy-recover',
      'postcopy-active',
      'completed',
    ]);
  });
});

describe('MigrationTracker on QEMU 10.x sequences (constructed from signals.md 2.1, not captured)', () => {
  function run(sequence: string[], withPasses = true): MigrationRecord {
    const t = rig();
    const drafts: Draft[] = [status(A, SAMPLE_T0, 'setup')];
    if (withPasses) drafts.push(ev(A, SAMPLE_T0 + 1, 'MIGRATION_PASS', { pass: 1 }));
    sequence.forEach((s, i) => {
      if (withPasses && s === 'device') drafts.push(ev(A, SAMPLE_T0 + 10 * i + 5, 'MIGRATION_PASS', { pass: 2 }));
      drafts.push(status(A, SAMPLE_T0 + 10 * i + 10, s));
      if (withPasses && s === 'device') drafts.push(ev(A, SAMPLE_T0 + 10 * i + 11, 'MIGRATION_PASS', { pass: 3 }));
    });
    t.feed(drafts);
    t.feed([poll(A, SAMPLE_T0 + 1000, reply(sequence.includes('postcopy-active') ? 'src.completed' : 'src.completed-precopy-only'), 'postmigrate')]);
    return only(t.store.all());
  }

  it('>= 10.0 pre-copy: active -> device -> completed', () => {
    const r = run(['active', 'device', 'completed']);
    expect(r.mode).toBe('precopy');
    expect(r.statuses.map((s) => s.status)).toEqual(['setup', 'active', 'device', 'completed']);
  });

  it('>= 10.0 with pause-before-switchover: active -> pre-switchover -> device -> completed', () => {
    const r = run(['active', 'pre-switchover', 'device', 'completed'], false);
    expect(r.mode).toBe('precopy');
    expect(r.result).toBe('completed');
  });

  it('>= 10.0 post-copy: active -> device -> postcopy-active -> completed', () => {
    const r = run(['active', 'device', 'postcopy-active', 'completed']);
    expect(r.mode).toBe('hybrid');
    expect(r.qemu.passesBeforePostcopy?.value).toBe(2);
    expect(r.postcopyAt?.evidence).toBe('qmp:source event MIGRATION postcopy-active');
  });

  it('>= 10.2 post-copy: active -> device -> postcopy-device -> postcopy-active -> completed', () => {
    const t = rig();
    const phases: string[] = [];
    t.tracker.on('phase', (a) => phases.push(a.phase));
    t.feed([status(A, SAMPLE_T0, 'setup'), ev(A, SAMPLE_T0 + 1, 'MIGRATION_PASS', { pass: 1 })]);
    for (const [i, s] of ['active', 'device', 'postcopy-device', 'postcopy-active', 'completed'].entries()) t.feed([status(A, SAMPLE_T0 + 10 + i, s)]);
    t.feed([poll(A, SAMPLE_T0 + 100, reply('src.completed'), 'postmigrate')]);
    const r = only(t.store.all());
    expect(phases).toEqual(['precopy', 'switchover', 'postcopy']);
    expect(r.postcopyAt?.value).toBe(SAMPLE_T0 + 12);
    // Only the setup pass was seen before the switch-over: post-copy from the first pass.
    expect(r.mode).toBe('postcopy');
  });

  it('wait-unplug and colo are phases too', () => {
    const t = rig();
    t.feed([status(A, SAMPLE_T0, 'setup'), ev(A, SAMPLE_T0 + 1, 'MIGRATION_PASS', { pass: 1 }), status(A, SAMPLE_T0 + 2, 'wait-unplug')]);
    expect(t.tracker.activeMigrations()[0]?.phase).toBe('setup');
    t.feed([status(A, SAMPLE_T0 + 3, 'active'), status(A, SAMPLE_T0 + 4, 'colo')]);
    expect(t.tracker.activeMigrations()[0]?.phase).toBe('colo');
  });
});

describe('MigrationTracker robustness', () => {
  it('an unknown status is recorded and warned about once per VM, never a crash', () => {
    const t = rig();
    t.feed([status(A, SAMPLE_T0, 'setup'), ev(A, SAMPLE_T0 + 1, 'MIGRATION_PASS', { pass: 1 }), status(A, SAMPLE_T0 + 2, 'active')]);
    t.feed([status(A, SAMPLE_T0 + 3, 'x-new-status'), poll(A, SAMPLE_T0 + 4, { ...reply('src.active'), status: 'x-new-status' }, 'running')]);
    t.feed([status(A, SAMPLE_T0 + 5, 'x-new-status')]);
    expect(t.tracker.activeMigrations()[0]?.phase).toBe('precopy');
    t.feed([status(A, SAMPLE_T0 + 6, 'completed'), poll(A, SAMPLE_T0 + 7, reply('src.completed-precopy-only'), 'postmigrate')]);
    const r = only(t.store.all());
    expect(r.statuses.map((s) => s.status)).toEqual(['setup', 'active', 'x-new-status', 'completed']);
    const warnings = t.lines.filter((l) => l.msg.startsWith('unknown QEMU migration status'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ vm: VM, status: 'x-new-status', level: 40 });
  });

  it('an unknown status on an idle VM opens nothing', () => {
    const t = rig();
    t.feed([status(A, SAMPLE_T0, 'x-new-status'), poll(A, SAMPLE_T0 + 1, { status: 'x-new-status', incoming: false }, 'running')]);
    expect(t.tracker.activeMigrations()).toEqual([]);
    expect(t.store.all()).toEqual([]);
  });

  it('malformed events are ignored', () => {
    const t = rig();
    t.feed([ev(A, SAMPLE_T0, 'MIGRATION', { status: 42 }), ev(A, SAMPLE_T0 + 1, 'MIGRATION_PASS', { pass: 'x' }), ev(A, SAMPLE_T0 + 2, 'SHUTDOWN')]);
    expect(t.tracker.activeMigrations()).toEqual([]);
  });

  it('every observation delivered twice still makes one record with the same figures', () => {
    const once = rig();
    const all = byTime(hybridSourceEvents(), hybridSourcePolls(), hybridDestinationEvents(), hybridDestinationPolls());
    once.feed(all);
    const twice = rig();
    twice.feed(all.flatMap((d) => [d, d]));
    expect(only(twice.store.all())).toEqual(only(once.store.all()));
  });

  it('the old source polled for hours after completing never opens another migration', () => {
    const t = rig();
    t.feed(byTime(hybridSourcePolls(), hybridDestinationPolls()));
    const stale: Draft[] = [];
    for (let i = 1; i <= 50; i++) {
      stale.push(poll(A, SAMPLE_T0 + 6000 + i * 5000, reply('src.completed'), 'postmigrate'));
      stale.push(poll(B, SAMPLE_T0 + 6001 + i * 5000, reply('dst.completed'), 'running'));
    }
    t.feed(stale);
    expect(t.store.all()).toHaveLength(1);
    expect(t.tracker.activeMigrations()).toEqual([]);
  });

  it('late reports of a closed migration (lagging polls and events) are not a new one', () => {
    const t = rig();
    const srcPolls = hybridSourcePolls();
    // Source polls arrive before its events; the events then report what is already closed.
    t.feed([...hybridDestinationPolls().slice(0, 1), ...srcPolls]);
    t.feed(hybridSourceEvents());
    t.feed(hybridDestinationEvents());
    expect(t.store.all()).toHaveLength(1);
    expect(t.tracker.activeMigrations()).toEqual([]);
  });

  it('the source exits before its final status: the destination decides after the grace time, evidence says so', () => {
    const t = rig();
    t.feed([
      ...hybridSourcePolls().slice(0, 4),
      poll(B, SAMPLE_T0 + 4600, reply('dst.postcopy-active'), 'running'),
      gone(A, SAMPLE_T0 + 5470, 'QEMU exited'),
      poll(B, SAMPLE_T0 + 5500, reply('dst.completed'), 'running'),
    ]);
    // A monitor gone may be one whose SSH connection dropped: its final reply is awaited.
    expect(t.store.all()).toEqual([]);
    t.clock.advance(TIMEOUTS.finalReplyMs);
    t.tracker.tick();
    const r = only(t.store.all());
    expect(r.result).toBe('completed');
    expect(r.resultEvidence).toBe('qmp:destination query-migrate status completed');
    expect(r.endedAt).toEqual({ value: SAMPLE_T0 + 5500, evidence: 'qmp:destination query-migrate status completed (poll time)' });
    expect(r.bytes.transferred?.evidence).toBe('qmp:source query-migrate ram.transferred (last reply before the end)');
    expect(r.durationSeconds?.evidence).toBe('exporter monotonic clock');
  });

  it('the destination completes and the source is never heard again: closed from the destination after the grace time', () => {
    const t = rig();
    t.feed([...hybridSourcePolls().slice(0, 4), ...hybridDestinationPolls()]);
    expect(t.store.all()).toEqual([]);
    t.clock.advance(TIMEOUTS.finalReplyMs);
    t.tracker.tick();
    expect(only(t.store.all()).resultEvidence).toBe('qmp:destination query-migrate status completed');
  });

  it('neither side can tell: failed with an explanation after the undecided timeout', () => {
    const t = rig();
    t.feed([...hybridSourcePolls().slice(0, 3), gone(A, SAMPLE_T0 + 5000, 'connection reset')]);
    t.clock.advance(TIMEOUTS.undecidedMs - 1);
    t.tracker.tick();
    expect(t.store.all()).toEqual([]);
    t.clock.advance(1);
    t.tracker.tick();
    const r = only(t.store.all());
    expect(r.result).toBe('failed');
    expect(r.qemu.errorDesc).toBe(
      'the source monitor went away (connection reset) before a final status, and the destination reported no outcome within 600 s',
    );
    expect(r.resultEvidence).toBe('exporter: undecided timeout');
  });
});

describe('MigrationTracker: a VM migrating back and forth', () => {
  it('A -> B then B -> A: two records, roles swapped, stale replies in between ignored', () => {
    const t = rig();
    t.feed(byTime(hybridSourceEvents(A), hybridSourcePolls(A), hybridDestinationEvents(B), hybridDestinationPolls(B)));

    // The old source lingers in postmigrate, then exits; the guest runs on B.
    const later = 60_000;
    t.feed([
      poll(A, SAMPLE_T0 + 20_000, reply('src.completed'), 'postmigrate'),
      poll(B, SAMPLE_T0 + 20_001, reply('dst.completed'), 'running'),
      gone(A, SAMPLE_T0 + 30_000, 'QEMU exited'),
      // A new QEMU on A waits for the incoming migration.
      poll(A, SAMPLE_T0 + 50_000, { status: 'none', incoming: false }, 'inmigrate'),
    ]);
    t.feed(byTime(shift(hybridSourceEvents(B), later), shift(hybridSourcePolls(B), later), shift(hybridDestinationEvents(A), later), shift(hybridDestinationPolls(A), later)));

    const [first, second] = t.store.all();
    expect(t.store.all()).toHaveLength(2);
    expect([first?.source.host, first?.destination?.host]).toEqual(['hostA', 'hostB']);
    expect([second?.source.host, second?.destination?.host]).toEqual(['hostB', 'hostA']);
    expect(second?.id).toBe(`${VM}@${Math.floor(SAMPLE_T0 + later)}`);
    expect(second?.result).toBe('completed');
    expect(second?.bytes.transferred?.value).toBe(HYBRID.transferred);
  });

  it("a destination that migrates on before its 'completed' was seen closes the first migration as completed", () => {
    const t = rig();
    t.feed([...hybridSourcePolls().slice(0, 4), poll(B, SAMPLE_T0 + 4600, reply('dst.postcopy-active'), 'running'), gone(A, SAMPLE_T0 + 5000)]);
    t.feed([poll(B, SAMPLE_T0 + 100_000, reply('src.active'), 'running')]);
    const [first] = t.store.all();
    expect(first?.result).toBe('completed');
    expect(first?.resultEvidence).toBe('qmp:destination became the source of a new migration (the guest ran there)');
    expect(t.tracker.activeMigrations()[0]?.source.host).toBe('hostB');
  });
});

describe('MigrationTracker waits briefly for the destination after the source completed', () => {
  it('closes at once when the destination has reported, and after the grace when it stays silent', () => {
    const t = rig();
    const sourceOnly = byTime(hybridSourcePolls(), hybridDestinationPolls()).filter((d) => !(d.ref.host === 'hostB' && d.kind === 'qmp-status' && d.info.status === 'completed'));
    const closed: MigrationRecord[] = [];
    t.tracker.on('closed', (r: MigrationRecord) => closed.push(r));
    t.feed(sourceOnly);
    expect(closed).toEqual([]);
    t.clock.advance(DESTINATION_GRACE_MS + 1);
    t.tracker.tick();
    expect(closed.map((r) => r.result)).toEqual(['completed']);
    expect(closed[0]?.destination?.host).toBe('hostB');
  });
});

describe('MigrationTracker and QEMU replies polled before their figures are filled in', () => {
  it("waits for a source 'completed' reply with its totals (QEMU 7.2 shows total-time 0 for a few ms)", () => {
    const t = rig();
    const polls = hybridSourcePolls();
    const final = polls.pop()!;
    const early = poll(A, SAMPLE_T0 + 5460.2, { ...reply('src.completed'), totalTimeMs: 0, downtimeMs: 0 }, 'postmigrate');
    t.feed([...polls, early]);
    expect(t.store.all()).toEqual([]);
    t.feed([final]);
    const [record] = t.store.all();
    expect(record?.qemu.totalTimeMs?.value).toBe(5460);
    expect(record?.qemu.downtimeMs?.value).toBe(4);
  });
});

describe("MigrationTracker and the destination's RESUME", () => {
  it('a destination monitor found just before the switch-over: its RESUME binds it before its first poll', () => {
    const t = rig();
    const lateDestination = hybridDestinationEvents().filter((d) => d.wallMs >= HYBRID.resumedAt);
    t.feed(byTime(hybridSourceEvents(), hybridSourcePolls(), lateDestination));
    const r = only(t.store.all());
    expect(r.destination?.host).toBe('hostB');
    expect(r.resumedAt).toEqual({ value: HYBRID.resumedAt, evidence: 'qmp:destination event RESUME' });
  });

  it('a destination seen by polls only: the first poll that finds the guest running bounds the resume, and says so', () => {
    const t = rig();
    t.feed(byTime(hybridSourceEvents(), hybridSourcePolls(), hybridDestinationPolls()));
    const r = only(t.store.all());
    expect(r.resumedAt).toEqual({ value: SAMPLE_T0 + 4600, evidence: 'qmp:destination query-status running (poll time)' });
  });

  it('a RESUME event that arrives after a poll found the guest running replaces the poll time', () => {
    const t = rig();
    const resume = hybridDestinationEvents().filter((d) => d.kind === 'qmp-event' && d.event === 'RESUME');
    const polls = byTime(hybridSourceEvents(), hybridSourcePolls(), hybridDestinationPolls());
    const afterPoll = polls.findIndex((d) => d.ref.host === 'hostB' && d.wallMs === SAMPLE_T0 + 4600) + 1;
    t.feed([...polls.slice(0, afterPoll), ...resume, ...polls.slice(afterPoll)]);
    const r = only(t.store.all());
    expect(r.resumedAt).toEqual({ value: HYBRID.resumedAt, evidence: 'qmp:destination event RESUME' });
  });

  it('the source exits right after completing: the destination RESUME that follows is still in the record', () => {
    const t = rig();
    const end = HYBRID.endedAt;
    const source = hybridSourceEvents().filter((d) => d.wallMs <= end);
    const destination = hybridDestinationEvents().map((d) => (d.kind === 'qmp-event' && d.event === 'RESUME' ? { ...d, wallMs: end + 50 } : d));
    const closed: MigrationRecord[] = [];
    t.tracker.on('closed', (r: MigrationRecord) => closed.push(r));
    t.feed(byTime(source, destination.filter((d) => d.wallMs <= end), [gone(A, end + 10, 'QEMU exited')]));
    expect(closed).toEqual([]);
    t.feed(destination.filter((d) => d.wallMs > end));
    const r = only(closed);
    expect(r.result).toBe('completed');
    expect(r.resumedAt).toEqual({ value: end + 50, evidence: 'qmp:destination event RESUME' });
  });
});

describe('MigrationTracker and replies read after newer events', () => {
  // Seen on real QEMU: the destination's first poll ('none', before migrate-incoming) was sent
  // just before its MIGRATION setup event and read just after it and after 'active'.
  it("a destination's 'none' polled before its first events does not unbind it: its later statuses and RESUME count", () => {
    const t = rig();
    const dstEvents = hybridDestinationEvents();
    const firstEvent = dstEvents[0]!.wallMs;
    const staleNone = poll(B, firstEvent - 1, { status: 'none', incoming: false }, 'inmigrate');
    const early = dstEvents.filter((d) => d.wallMs <= SAMPLE_T0 + 10);
    const rest = dstEvents.filter((d) => d.wallMs > SAMPLE_T0 + 10);
    const source = byTime(hybridSourceEvents(), hybridSourcePolls());
    t.feed([...byTime(source.filter((d) => d.wallMs <= SAMPLE_T0 + 10), early), staleNone, ...byTime(source.filter((d) => d.wallMs > SAMPLE_T0 + 10), rest)]);
    const r = only(t.store.all());
    expect(r.destination?.host).toBe('hostB');
    expect(r.resumedAt).toEqual({ value: HYBRID.resumedAt, evidence: 'qmp:destination event RESUME' });
    expect(r.statuses.filter((s) => s.side === 'destination').map((s) => s.status)).toEqual(['setup', 'active', 'postcopy-active', 'completed']);
  });

  it("a source's 'none' polled before its setup event, read after it, does not lose the migration's start", () => {
    const t = rig();
    const srcEvents = hybridSourceEvents();
    const staleNone = poll(A, SAMPLE_T0 - 1, { status: 'none', incoming: false }, 'running');
    t.feed([...byTime(srcEvents.slice(0, 1)), staleNone, ...byTime(srcEvents.slice(1), hybridSourcePolls(), hybridDestinationEvents(), hybridDestinationPolls())]);
    const r = only(t.store.all());
    expect(r.result).toBe('completed');
    expect(r.startedAt).toEqual({ value: SAMPLE_T0, evidence: 'qmp:source event MIGRATION setup' });
  });
});

describe('MigrationTracker and a monitor that drops and comes back mid-migration', () => {
  /** Both monitors polled while idle before the migration, as an exporter running before it sees them. */
  const idleBefore = [A, B].map((ref) => poll(ref, SAMPLE_T0 - 5000, { status: 'none', incoming: false }, 'running'));

  it('the source monitor times out in pre-copy and reconnects: still one completed hybrid record', () => {
    const t = rig();
    const all = byTime(hybridSourceEvents(), hybridSourcePolls(), hybridDestinationEvents(), hybridDestinationPolls());
    const blip = SAMPLE_T0 + 1000;
    const before = all.filter((d) => d.wallMs < blip);
    const after = all.filter((d) => d.wallMs >= blip);
    t.feed([...before, gone(A, blip, 'QMP command query-migrate timed out after 2000 ms')]);
    t.feed(after);
    const r = only(t.store.all());
    expect(r.result).toBe('completed');
    expect(r.mode).toBe('hybrid');
    expect(r.resultEvidence).toBe('qmp:source event MIGRATION completed');
  });

  it("both hosts' SSH connections drop in pre-copy, the migration completes meanwhile, the destination is heard first: one record, the source's figures", () => {
    // Seen for real (test/fault/daemon-faults.ts, sshd-restart): a monitor whose SSH connection
    // dropped reads as a QEMU gone; the destination's 'completed' closed the record with the
    // bytes of the last reply before the cut and mode precopy, and the source's final reply,
    // 1.3 s later, opened a second record.
    const t = rig();
    const cut = SAMPLE_T0 + 1000;
    const back = SAMPLE_T0 + 12_000;
    t.feed([
      ...idleBefore,
      ...byTime(hybridSourcePolls().slice(0, 2), hybridDestinationPolls().slice(0, 1)),
      gone(B, cut, 'QMP monitor closed the connection: end of stream'),
      gone(A, cut + 1, 'QMP monitor closed the connection: end of stream'),
      poll(B, back, reply('dst.completed'), 'running'),
    ]);
    expect(t.store.all()).toEqual([]);
    t.feed([poll(A, back + 1300, reply('src.completed'), 'postmigrate')]);
    t.clock.advance(DESTINATION_GRACE_MS);
    t.tracker.tick();
    const r = only(t.store.all());
    expect(r.result).toBe('completed');
    expect(r.mode).toBe('hybrid');
    expect(r.resultEvidence).toBe('qmp:source query-migrate status completed');
    expect(r.bytes.transferred).toEqual({ value: HYBRID.transferred, evidence: 'qmp:source query-migrate ram.transferred' });
    expect(r.qemu.totalTimeMs?.value).toBe(HYBRID.totalTimeMs);
    expect(t.tracker.activeMigrations()).toEqual([]);
  });

  it('a source heard again only after the destination was taken for it: its final reply is that migration\'s, not a second one', () => {
    const t = rig();
    const cut = SAMPLE_T0 + 1000;
    t.feed([
      ...idleBefore,
      ...byTime(hybridSourcePolls().slice(0, 2), hybridDestinationPolls().slice(0, 1)),
      gone(A, cut, 'QMP monitor closed the connection: end of stream'),
      poll(B, SAMPLE_T0 + 5500, reply('dst.completed'), 'running'),
    ]);
    t.clock.advance(TIMEOUTS.finalReplyMs);
    t.tracker.tick();
    expect(only(t.store.all()).resultEvidence).toBe('qmp:destination query-migrate status completed');
    t.feed([poll(A, t.clock.wallMs() + 5000, reply('src.completed'), 'postmigrate'), poll(A, t.clock.wallMs() + 6000, reply('src.completed'), 'postmigrate')]);
    expect(t.store.all()).toHaveLength(1);
    expect(t.tracker.activeMigrations()).toEqual([]);
  });

  it('a new QEMU behind the source socket (it reports none) stays gone: the destination decides', () => {
    const t = rig();
    const all = byTime(hybridSourceEvents(), hybridSourcePolls(), hybridDestinationEvents(), hybridDestinationPolls());
    const cut = SAMPLE_T0 + 5000;
    const restarted = [gone(A, cut, 'QMP monitor closed the connection'), poll(A, cut + 100, { status: 'none', incoming: false }, 'running')];
    t.feed(byTime(all.filter((d) => d.wallMs < cut || d.ref.host === 'hostB'), restarted));
    t.clock.advance(TIMEOUTS.finalReplyMs);
    t.tracker.tick();
    const r = only(t.store.all());
    expect(r.result).toBe('completed');
    expect(r.resultEvidence).toMatch(/^qmp:destination /);
  });
});
