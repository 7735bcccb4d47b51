import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { persistState, type Scheduler } from '../../src/records/persistence.js';
import { readStateFile } from '../../src/records/state-file.js';
import {
  A,
  B,
  byTime,
  captureLogger,
  FakeClock,
  gone,
  HYBRID,
  hybridDestinationEvents,
  hybridDestinationPolls,
  hybridSourceEvents,
  hybridSourcePolls,
  poll,
  reply,
  rig,
  SAMPLE_T0,
  shift,
  status,
  TIMEOUTS,
  type Draft,
  type Rig,
} from './tracker-scenarios.js';

/** Timers that fire only when the test says so. */
class ManualScheduler implements Scheduler {
  private pending = new Map<number, () => void>();
  private next = 0;
  setTimeout(fn: () => void, _ms: number): unknown {
    this.pending.set(++this.next, fn);
    return this.next;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  get size(): number {
    return this.pending.size;
  }
  runAll(): void {
    const due = [...this.pending.values()];
    this.pending.clear();
    for (const fn of due) fn();
  }
}

let dir: string;
let path: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'livemig-tracker-'));
  path = join(dir, 'state.json');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const TIMEOUTS_UNDECIDED = TIMEOUTS.undecidedMs;

const ALL = (): Draft[] => byTime(hybridSourceEvents(), hybridSourcePolls(), hybridDestinationEvents(), hybridDestinationPolls());

/** Runs `drafts` in an exporter that then stops (flushing its state file) and returns its clock. */
async function runAndStop(drafts: Draft[]): Promise<Rig> {
  const before = rig();
  const { logger } = captureLogger();
  const persistence = persistState({ path, debounceMs: 1000, tracker: before.tracker, store: before.store, clock: before.clock, logger, scheduler: new ManualScheduler() });
  before.feed(drafts);
  await persistence.flush();
  return before;
}

/** A new exporter process: state from the file, a monotonic clock that started elsewhere. */
async function restart(downForMs: number, previous: Rig): Promise<Rig> {
  const saved = await readStateFile(path);
  expect(saved).not.toBeNull();
  const clock = new FakeClock(previous.clock.wallMs() + downForMs);
  return rig({ clock, restore: saved!.tracker, records: saved!.records });
}

describe('MigrationTracker across an exporter restart (state file in a temp dir)', () => {
  it('restart mid-migration: the new tracker continues it and closes ONE whole record', async () => {
    const all = ALL();
    const cut = all.findIndex((d) => d.kind === 'qmp-status' && d.ref === A && d.info.status === 'postcopy-active');
    const before = await runAndStop(all.slice(0, cut));
    expect(before.store.all()).toEqual([]);

    const after = await restart(100, before);
    expect(after.tracker.activeMigrations()).toMatchObject([{ id: `vm1@${Math.floor(SAMPLE_T0)}`, phase: 'postcopy', resumedAfterRestart: true }]);
    // What QEMU said while the exporter was down is lost (QMP does not replay events).
    after.feed(all.slice(cut).filter((d) => d.wallMs >= after.clock.wallMs()));

    const [record, ...others] = after.store.all();
    expect(others).toEqual([]);
    expect(record).toMatchObject({ id: `vm1@${Math.floor(SAMPLE_T0)}`, result: 'completed', mode: 'hybrid', resumedAfterRestart: true });
    expect(record!.startedAt).toEqual({ value: SAMPLE_T0, evidence: 'qmp:source event MIGRATION setup' });
    expect(record!.durationSeconds).toEqual({ value: 5.46, evidence: 'qmp:source query-migrate total-time' });
    expect(record!.bytes.transferred?.value).toBe(HYBRID.transferred);
    expect(record!.statuses.map((s) => `${s.side}:${s.status}`)).toEqual([
      'destination:setup',
      'source:setup',
      'destination:active',
      'source:active',
      'source:postcopy-active',
      'destination:postcopy-active',
      'destination:completed',
      'source:completed',
    ]);
  });

  it('completed while the exporter was down: closed from the first poll of the source', async () => {
    const before = await runAndStop(byTime(hybridSourcePolls().slice(0, 3), hybridDestinationPolls().slice(0, 1)));
    const after = await restart(60_000, before);
    const now = after.clock.wallMs();
    after.feed([poll(A, now + 1, reply('src.completed'), 'postmigrate'), poll(B, now + 2, reply('dst.completed'), 'running')]);
    const [record, ...others] = after.store.all();
    expect(others).toEqual([]);
    expect(record).toMatchObject({ result: 'completed', mode: 'hybrid', resumedAfterRestart: true });
    expect(record!.durationSeconds).toEqual({ value: 5.46, evidence: 'qmp:source query-migrate total-time' });
    expect(record!.bytes.postcopy?.value).toBe(HYBRID.postcopy);
    // No reply of the post-copy phase was seen: the passes before it come from the final reply.
    expect(record!.qemu.passesBeforePostcopy?.value).toBe(2);
  });

  it('restart after completion: the stale completed replies make no second record', async () => {
    const before = await runAndStop(ALL());
    expect(before.store.all()).toHaveLength(1);
    const after = await restart(3_600_000, before);
    expect(after.store.all()).toHaveLength(1);
    const now = after.clock.wallMs();
    after.feed([
      poll(A, now + 1, reply('src.completed'), 'postmigrate'),
      poll(B, now + 2, reply('dst.completed'), 'running'),
      poll(A, now + 5001, reply('src.completed'), 'postmigrate'),
      // Events replayed by a reconnecting transport, time stamps from before the restart.
      ...hybridSourceEvents(),
    ]);
    expect(after.store.all()).toHaveLength(1);
    expect(after.tracker.activeMigrations()).toEqual([]);
  });

  it('a fresh exporter without a state file takes a completed reply as the baseline, not a migration', () => {
    const t = rig({ startWallMs: SAMPLE_T0 + 3_600_000 });
    t.feed([poll(A, SAMPLE_T0 + 3_600_001, reply('src.completed'), 'postmigrate'), poll(B, SAMPLE_T0 + 3_600_002, reply('dst.completed'), 'running')]);
    expect(t.store.all()).toEqual([]);
    // ... but a different completed reply afterwards is a migration that ran between two polls.
    t.feed([poll(A, SAMPLE_T0 + 3_700_000, reply('src.completed-precopy-only'), 'postmigrate')]);
    const [record] = t.store.all();
    expect(record?.startedAt).toEqual({ value: SAMPLE_T0 + 3_700_000 - 4427, evidence: 'qmp:source query-migrate total-time, counted back from the poll time' });
    expect(record?.result).toBe('completed');
  });

  it('restart mid-migration, cancelled afterwards: the duration falls back to the wall clock, said so', async () => {
    const before = await runAndStop([status(A, SAMPLE_T0, 'setup'), ...hybridSourcePolls().slice(0, 2)]);
    const after = await restart(10_000, before);
    const now = after.clock.wallMs();
    after.feed([status(A, now + 1, 'cancelled'), poll(A, now + 2, reply('src.cancelled'), 'running')]);
    const [record] = after.store.all();
    expect(record?.result).toBe('cancelled');
    expect(record?.durationSeconds?.evidence).toBe('wall clock: endedAt - startedAt (exporter restarted during the migration)');
    expect(record?.durationSeconds?.value).toBeCloseTo((now + 1 - SAMPLE_T0) / 1000, 6);
  });

  it('restart mid-migration, source gone meanwhile: the destination completes it (after the final-reply grace)', async () => {
    const before = await runAndStop(byTime(hybridSourcePolls().slice(0, 4), hybridDestinationPolls().slice(0, 2)));
    const after = await restart(30_000, before);
    const now = after.clock.wallMs();
    after.feed([gone(A, now + 1, 'QEMU exited'), poll(B, now + 2, reply('dst.completed'), 'running')]);
    after.clock.advance(TIMEOUTS.finalReplyMs);
    after.tracker.tick();
    const [record] = after.store.all();
    expect(record?.result).toBe('completed');
    expect(record?.resultEvidence).toBe('qmp:destination query-migrate status completed');
  });

  it('restart in pre-copy, source gone meanwhile: the mode is unknown, the bytes a lower bound, said so', async () => {
    const polls = hybridSourcePolls();
    const switched = polls.findIndex((d) => d.kind === 'qmp-status' && d.info.status === 'postcopy-active');
    const before = await runAndStop(byTime(polls.slice(0, switched), hybridDestinationPolls().slice(0, 1)));
    const after = await restart(30_000, before);
    const now = after.clock.wallMs();
    after.feed([gone(A, now + 1, 'QEMU exited'), poll(B, now + 2, reply('dst.completed'), 'running')]);
    after.clock.advance(TIMEOUTS.finalReplyMs);
    after.tracker.tick();
    const [record, ...others] = after.store.all();
    expect(others).toEqual([]);
    // No switch was seen before the restart and the source's final reply went with it: whether it
    // switched to post-copy nobody can say any more, and the bytes are the last progress figure.
    expect(record).toMatchObject({ result: 'completed', mode: 'unknown', resumedAfterRestart: true });
    expect(record?.bytes.transferred?.evidence).toMatch(/\(last reply before the end\)$/);
  });

  it('restart after the switch, source gone meanwhile: the mode seen before the restart stands', async () => {
    const all = ALL();
    const cut = all.findIndex((d) => d.kind === 'qmp-status' && d.ref === A && d.info.status === 'postcopy-active');
    const before = await runAndStop(all.slice(0, cut + 1));
    const after = await restart(30_000, before);
    const now = after.clock.wallMs();
    after.feed([gone(A, now + 1, 'QEMU exited'), poll(B, now + 2, reply('dst.completed'), 'running')]);
    after.clock.advance(TIMEOUTS.finalReplyMs);
    after.tracker.tick();
    expect(after.store.all().map((r) => [r.result, r.mode])).toEqual([['completed', 'hybrid']]);
  });

  it('a migration opening is written at once, without the debounce; its later figures wait for it', async () => {
    const scheduler = new ManualScheduler();
    const r = rig();
    const { logger } = captureLogger();
    persistState({ path, debounceMs: 1000, tracker: r.tracker, store: r.store, clock: r.clock, logger, scheduler });
    const polls = hybridSourcePolls();
    r.feed(polls.slice(0, 1));
    await expect.poll(async () => (await readStateFile(path))?.tracker.vms.vm1?.open?.id ?? null).toMatch(/^vm1@\d+$/);
    const written = JSON.stringify(await readStateFile(path));
    r.feed(polls.slice(1, 2));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(JSON.stringify(await readStateFile(path))).toBe(written);
    expect(scheduler.size).toBe(1);
  });

  it('restart after both QEMUs exited: told they are gone, the migration settles at the undecided timeout, and the next one is a record of its own (issue 13, item 2)', async () => {
    const before = await runAndStop(byTime(hybridSourcePolls().slice(0, 2), hybridDestinationPolls().slice(0, 1)));
    const after = await restart(60_000, before);
    const now = after.clock.wallMs();
    // The QMP source tells of monitors whose QEMU is not running, also when they were never up.
    after.feed([gone(A, now + 1, 'QEMU not running: ENOENT'), gone(B, now + 2, 'QEMU not running: ENOENT')]);
    after.clock.advanceTo(now + TIMEOUTS_UNDECIDED + 10);
    after.tracker.tick();
    const [settled, ...more] = after.store.all();
    expect(more).toEqual([]);
    expect(settled).toMatchObject({ result: 'failed', resumedAfterRestart: true });
    // The next migration of the VM, from the same monitor: its own record, not merged into the old one.
    const next = now + TIMEOUTS_UNDECIDED + 60_000;
    after.feed(shift(byTime(hybridSourceEvents(), hybridSourcePolls(), hybridDestinationEvents(), hybridDestinationPolls()), next - SAMPLE_T0));
    const records = after.store.all();
    expect(records).toHaveLength(2);
    expect(records[1]).toMatchObject({ result: 'completed', mode: 'hybrid', resumedAfterRestart: false, durationSeconds: { value: 5.46 } });
  });

  it('a new migration from the same QEMU before the old one settled supersedes it, never merges (total-time went back)', async () => {
    const before = await runAndStop(hybridSourcePolls().slice(0, 3));
    const after = await restart(60_000, before);
    const next = after.clock.wallMs() + 1000;
    // No events and no 'gone' (a monitor that reconnected at once): only its replies tell.
    after.feed(shift(hybridSourcePolls(), next - SAMPLE_T0).slice(1));
    const records = after.store.all();
    expect(records.map((r) => r.result)).toEqual(['failed', 'completed']);
    expect(records[0]!.qemu.errorDesc).toMatch(/^superseded/);
    expect(records[1]!.durationSeconds).toEqual({ value: 5.46, evidence: 'qmp:source query-migrate total-time' });
  });

  it('restart across the post-copy switch: the mode comes from QEMU\'s own pass count, not from a later event (issue 13, item 3)', async () => {
    const all = ALL();
    // Saved before the switch (maxPass 1 or 2), killed, restarted after it: the postcopy-active
    // event and MIGRATION_PASS 2 and 3 were never seen; the 'completed' event is.
    const cut = all.findIndex((d) => d.kind === 'qmp-event' && d.ref === A && d.event === 'MIGRATION_PASS' && d.data.pass === 2);
    const before = await runAndStop(all.slice(0, cut));
    const after = await restart(100, before);
    const switchedAt = all.find((d) => d.kind === 'qmp-status' && d.ref === A && d.info.status === 'postcopy-active')!.wallMs;
    after.feed(all.filter((d) => d.wallMs >= Math.max(switchedAt, after.clock.wallMs())));
    // The destination's RESUME came before the cut-off: the record waits its grace for it, then closes.
    after.clock.advanceTo(after.clock.wallMs() + 3_000);
    after.tracker.tick();
    const [record] = after.store.all();
    expect(record).toMatchObject({ result: 'completed', mode: 'hybrid', resumedAfterRestart: true });
    expect(record!.qemu.passesBeforePostcopy?.value).toBe(2);
  });

  it('restart just before the switch, its event the first one seen: the passes missed while down are not taken as none (fault suite)', async () => {
    const all = ALL();
    // Saved after pass 1; MIGRATION_PASS 2 comes while the exporter is down; the restarted
    // exporter's first news is the source's own postcopy-active event.
    const cut = all.findIndex((d) => d.kind === 'qmp-event' && d.ref === A && d.event === 'MIGRATION_PASS' && d.data.pass === 2);
    const before = await runAndStop(all.slice(0, cut));
    const after = await restart(100, before);
    const switchEvent = all.find((d) => d.kind === 'qmp-event' && d.ref === A && d.event === 'MIGRATION' && d.data.status === 'postcopy-active')!;
    after.feed(all.filter((d) => d.wallMs >= Math.max(switchEvent.wallMs, after.clock.wallMs())));
    after.clock.advanceTo(after.clock.wallMs() + 3_000);
    after.tracker.tick();
    const [record] = after.store.all();
    expect(record).toMatchObject({ result: 'completed', mode: 'hybrid', resumedAfterRestart: true });
    expect(record!.qemu.passesBeforePostcopy).toMatchObject({ value: 2, evidence: expect.stringMatching(/^derived: ram.dirty-sync-count/) });
  });

  it('the state file holds the records and the migration under way, and nothing else is left in the directory', async () => {
    const all = ALL();
    await runAndStop(all.slice(0, 10));
    const saved = await readStateFile(path);
    expect(saved?.version).toBe(1);
    expect(saved?.records).toEqual([]);
    expect(saved?.tracker.vms['vm1']?.open?.id).toBe(`vm1@${Math.floor(SAMPLE_T0)}`);
    expect(await readdir(dir)).toEqual(['state.json']);
  });
});
