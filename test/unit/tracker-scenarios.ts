/**
 * Shared by the tracker tests: the real QEMU 7.2 samples (test/fixtures/qmp) turned into
 * observations with consistent time stamps, a fake clock, a log capture and a feeder that
 * delivers observations the way the QMP source does (monotonic receive time, clock stepped).
 */
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Clock } from '../../src/clock.js';
import type { Logger } from '../../src/log.js';
import type { MigrationRecord } from '../../src/records/record.js';
import { MigrationStore } from '../../src/records/store.js';
import { MigrationTracker, type TrackerTimeouts } from '../../src/tracker/tracker.js';
import type { TrackerSnapshot } from '../../src/records/tracker-snapshot.js';
import type { MonitorRef, Observation } from '../../src/observations.js';
import { parseQueryMigrate } from '../../src/sources/qmp/parse.js';
import type { MigrationInfo, QmpEvent } from '../../src/qemu/types.js';

const FIXTURES = new URL('../fixtures/qmp/', import.meta.url);

/** query-migrate.7.2.<name>.json, parsed as the QMP source parses it. */
export function reply(name: string): MigrationInfo {
  const raw: unknown = JSON.parse(readFileSync(new URL(`query-migrate.7.2.${name}.json`, FIXTURES), 'utf8'));
  return parseQueryMigrate(raw, name);
}

export function events(name: string): QmpEvent[] {
  return JSON.parse(readFileSync(new URL(`events.7.2.${name}.json`, FIXTURES), 'utf8')) as QmpEvent[];
}

export function runStateSample(): string {
  const raw = JSON.parse(readFileSync(new URL('query-status.7.2.src.finish-migrate-after-dst-killed.json', FIXTURES), 'utf8')) as { status: string };
  return raw.status;
}

export const VM = 'vm1';
export const A: MonitorRef = { vm: VM, host: 'hostA', monitor: 'hostA/unix:/run/qmp-vm1.sock' };
export const B: MonitorRef = { vm: VM, host: 'hostB', monitor: 'hostB/unix:/run/qmp-vm1.sock' };

/** An observation before it is delivered: the feeder stamps monoMs at delivery. */
export type Draft = Observation extends infer O ? (O extends Observation ? Omit<O, 'monoMs'> : never) : never;

export function poll(ref: MonitorRef, wallMs: number, info: MigrationInfo, runState?: string): Draft {
  return { kind: 'qmp-status', ref, wallMs, info, ...(runState !== undefined ? { runState } : {}) };
}

export function event(ref: MonitorRef, e: QmpEvent): Draft {
  return { kind: 'qmp-event', ref, wallMs: e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000, event: e.event, data: e.data ?? {} };
}

/** A constructed QMP event (not from a sample) at `wallMs`. */
export function ev(ref: MonitorRef, wallMs: number, name: string, data: Record<string, unknown> = {}): Draft {
  return { kind: 'qmp-event', ref, wallMs, event: name, data };
}

export function status(ref: MonitorRef, wallMs: number, migrationStatus: string): Draft {
  return ev(ref, wallMs, 'MIGRATION', { status: migrationStatus });
}

export function gone(ref: MonitorRef, wallMs: number, reason = 'QMP monitor closed the connection'): Draft {
  return { kind: 'monitor-gone', ref, wallMs, reason };
}

export function shift(drafts: readonly Draft[], ms: number): Draft[] {
  return drafts.map((d) => ({ ...d, wallMs: d.wallMs + ms }));
}

export function byTime(...streams: readonly Draft[][]): Draft[] {
  return streams.flat().sort((a, b) => a.wallMs - b.wallMs);
}

export class FakeClock implements Clock {
  private wall: number;
  private mono = 1_000;
  constructor(startWallMs: number) {
    this.wall = startWallMs;
  }
  wallMs(): number {
    return this.wall;
  }
  monoMs(): number {
    return this.mono;
  }
  advance(ms: number): void {
    this.wall += ms;
    this.mono += ms;
  }
  /** Moves both clocks forward to `wallMs`; never backwards (monotonic). */
  advanceTo(wallMs: number): void {
    if (wallMs > this.wall) this.advance(wallMs - this.wall);
  }
}

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as LogLine);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

export const TIMEOUTS: TrackerTimeouts = { finalReplyMs: 10_000, undecidedMs: 600_000, pausedMs: 3_600_000 };

export interface Rig {
  clock: FakeClock;
  store: MigrationStore;
  tracker: MigrationTracker;
  lines: LogLine[];
  /** Delivers drafts in the given order; the clock follows their wall times. */
  feed(drafts: readonly Draft[]): void;
}

export function rig(options: { startWallMs?: number; restore?: TrackerSnapshot; records?: MigrationRecord[]; clock?: FakeClock } = {}): Rig {
  const clock = options.clock ?? new FakeClock(options.startWallMs ?? SAMPLE_T0 - 10_000);
  const { logger, lines } = captureLogger();
  const store = new MigrationStore({ maxRecords: 100, maxAgeMs: 365 * 86_400_000, clock });
  if (options.records) store.load(options.records);
  const tracker = new MigrationTracker({
    clock,
    logger,
    store,
    vms: [{ name: VM, labels: { flavor: 'm1.small' } }],
    timeouts: TIMEOUTS,
    ...(options.restore ? { restore: options.restore } : {}),
  });
  const feed = (drafts: readonly Draft[]): void => {
    for (const d of drafts) {
      clock.advanceTo(d.wallMs);
      tracker.observe({ ...d, monoMs: clock.monoMs() });
    }
  };
  return { clock, store, tracker, lines, feed };
}

// --- The hybrid migration of the samples, hostA -> hostB -------------------------------------

/** Source 'setup' event of the sample, ms. */
export const SAMPLE_T0 = 1795639395356.316;

/**
 * Source polls of the sample migration. The replies are real; their poll times are placed where
 * QEMU's total-time says they were taken (start + total-time), the setup reply just after setup.
 */
export function hybridSourcePolls(ref: MonitorRef = A): Draft[] {
  return [
    poll(ref, SAMPLE_T0 + 2, reply('src.setup'), 'running'),
    poll(ref, SAMPLE_T0 + 44, reply('src.active'), 'running'),
    poll(ref, SAMPLE_T0 + 4449, reply('src.active-at-postcopy-switch'), 'running'),
    poll(ref, SAMPLE_T0 + 4550, reply('src.postcopy-active'), 'finish-migrate'),
    poll(ref, SAMPLE_T0 + 5460.5, reply('src.completed'), 'postmigrate'),
  ];
}

export function hybridDestinationPolls(ref: MonitorRef = B): Draft[] {
  return [
    poll(ref, SAMPLE_T0 + 150, reply('dst.active'), 'inmigrate'),
    poll(ref, SAMPLE_T0 + 4600, reply('dst.postcopy-active'), 'running'),
    poll(ref, SAMPLE_T0 + 5500, reply('dst.completed'), 'running'),
  ];
}

export function hybridSourceEvents(ref: MonitorRef = A): Draft[] {
  return events('src.hybrid').map((e) => event(ref, e));
}

export function hybridDestinationEvents(ref: MonitorRef = B): Draft[] {
  return events('dst.hybrid').map((e) => event(ref, e));
}

export const HYBRID = {
  transferred: 606_522_767,
  precopy: 472_038_704,
  postcopy: 134_484_063,
  totalTimeMs: 5460,
  postcopyAt: 1795639399862.545,
  stoppedAt: 1795639399863.103,
  resumedAt: 1795639399869.923,
  endedAt: 1795639400815.602,
};

export { recordEnded } from '../helpers/records.js';
