import fc from 'fast-check';
import { DESTINATION_GRACE_MS } from '../../src/tracker/outcome.js';
import { describe, expect, it } from 'vitest';
import {
  A,
  B,
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
  SAMPLE_T0,
  status,
  type Draft,
} from './tracker-scenarios.js';

interface Scenario {
  name: string;
  /** Each stream is in the order its monitor delivers it; streams interleave freely. */
  streams: Draft[][];
  result: string;
  mode: string;
  transferred: number | null;
}

const T = SAMPLE_T0;

const scenarios: Scenario[] = [
  {
    name: 'hybrid, real 7.2 replies and events of both sides',
    streams: [hybridSourceEvents(), hybridSourcePolls(), hybridDestinationEvents(), hybridDestinationPolls()],
    result: 'completed',
    mode: 'hybrid',
    transferred: HYBRID.transferred,
  },
  {
    name: 'cancelled (real replies, constructed events)',
    streams: [
      [status(A, T, 'setup'), ev(A, T + 5, 'MIGRATION_PASS', { pass: 1 }), status(A, T + 6, 'active'), status(A, T + 1000, 'cancelling'), status(A, T + 1001, 'cancelled')],
      [poll(A, T + 2, reply('src.setup'), 'running'), poll(A, T + 44, reply('src.active'), 'running'), poll(A, T + 1002, reply('src.cancelled'), 'running')],
      [status(B, T - 2000, 'setup'), status(B, T + 3, 'active'), status(B, T + 1003, 'failed')],
      [poll(B, T + 20, reply('dst.active'), 'inmigrate'), poll(B, T + 1010, { status: 'failed', incoming: false }, 'inmigrate')],
    ],
    result: 'cancelled',
    mode: 'precopy',
    transferred: 6_170_613,
  },
  {
    name: 'pre-copy only (real final reply, constructed events)',
    streams: [
      [status(A, T, 'setup'), ev(A, T + 5, 'MIGRATION_PASS', { pass: 1 }), status(A, T + 6, 'active'), ev(A, T + 4000, 'MIGRATION_PASS', { pass: 2 })],
      [poll(A, T + 2, reply('src.setup'), 'running'), poll(A, T + 44, reply('src.active'), 'running')],
      [ev(A, T + 4420, 'STOP'), ev(A, T + 4421, 'MIGRATION_PASS', { pass: 3 }), status(A, T + 4427, 'completed'), poll(A, T + 4428, reply('src.completed-precopy-only'), 'postmigrate')],
      [status(B, T - 100, 'setup'), status(B, T + 3, 'active'), ev(B, T + 4426, 'RESUME'), status(B, T + 4427, 'completed')],
      [poll(B, T + 20, reply('dst.active'), 'inmigrate'), poll(B, T + 4500, reply('dst.completed'), 'running')],
    ],
    result: 'completed',
    mode: 'precopy',
    transferred: 470_918_296,
  },
  {
    name: 'post-copy paused after the destination was killed, then the source killed (real reply, constructed events)',
    streams: [
      // One source stream: a monitor that goes away has said everything before it went.
      [
        status(A, T, 'setup'),
        ev(A, T + 1, 'MIGRATION_PASS', { pass: 1 }),
        poll(A, T + 2, reply('src.setup'), 'running'),
        status(A, T + 3, 'active'),
        poll(A, T + 44, reply('src.active'), 'running'),
        status(A, T + 2000, 'postcopy-active'),
        ev(A, T + 2001, 'STOP'),
        ev(A, T + 2002, 'MIGRATION_PASS', { pass: 2 }),
        status(A, T + 2500, 'postcopy-paused'),
        poll(A, T + 2507, reply('src.postcopy-paused'), 'finish-migrate'),
        gone(A, T + 9000, 'QEMU killed'),
      ],
      [status(B, T - 100, 'setup'), status(B, T + 3, 'active'), status(B, T + 2003, 'postcopy-active'), ev(B, T + 2004, 'RESUME'), gone(B, T + 2499, 'QEMU killed')],
    ],
    result: 'postcopy-paused',
    mode: 'postcopy',
    transferred: 117_487_636,
  },
  {
    name: 'failed to connect (real reply, constructed events)',
    streams: [[status(A, T, 'setup'), status(A, T + 3, 'failed')], [poll(A, T + 1, reply('src.setup'), 'running'), poll(A, T + 30, reply('src.failed-connect'), 'running')]],
    result: 'failed',
    mode: 'precopy',
    transferred: null,
  },
];

/** A random interleaving of the streams (each keeps its order) with some observations delivered again later. */
function arrival(scenario: Scenario): fc.Arbitrary<Draft[]> {
  const labels = scenario.streams.flatMap((stream, i) => stream.map(() => i));
  const n = labels.length;
  return fc
    .tuple(
      fc.shuffledSubarray(labels, { minLength: n, maxLength: n }),
      fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n)), { maxLength: 6 }),
    )
    .map(([order, duplicates]) => {
      const next = scenario.streams.map(() => 0);
      const merged = order.map((stream) => scenario.streams[stream]![next[stream]!++]!);
      for (const [from, offset] of duplicates) merged.splice(Math.min(merged.length, from + 1 + offset), 0, merged[from]!);
      return merged;
    });
}

describe('MigrationTracker property: interleaving and duplication do not change result, bytes or mode', () => {
  for (const scenario of scenarios) {
    it(scenario.name, () => {
      fc.assert(
        fc.property(arrival(scenario), (drafts) => {
          const t = rig();
          t.feed(drafts);
          // A completed source may wait DESTINATION_GRACE_MS for a destination whose own
          // 'completed' came before the migration was seen to open; time passes, then it closes.
          t.clock.advance(DESTINATION_GRACE_MS);
          t.tracker.tick();
          const records = t.store.all();
          expect(records).toHaveLength(1);
          expect(records[0]!.result).toBe(scenario.result);
          expect(records[0]!.bytes.transferred?.value ?? null).toBe(scenario.transferred);
          expect(records[0]!.mode).toBe(scenario.mode);
          expect(t.tracker.activeMigrations()).toEqual([]);
        }),
        { numRuns: Number(process.env.PROPERTY_RUNS ?? 300) },
      );
    });
  }
});
