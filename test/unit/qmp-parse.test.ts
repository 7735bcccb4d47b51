import { readFileSync, readdirSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import { LivemigError } from '../../src/errors.js';
import { parseQueryMigrate } from '../../src/sources/qmp/parse.js';
import { type MigrationInfo } from '../../src/qemu/types.js';
import { MIGRATION_STATUSES, isKnownStatus } from '../../src/qemu/status.js';

const FIXTURES = new URL('../fixtures/qmp/', import.meta.url);

function fixture(name: string): unknown {
  return JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8'));
}

/** Expected parse of every real QEMU 7.2 query-migrate reply in test/fixtures/qmp. */
const EXPECTED: Record<string, MigrationInfo> = {
  'query-migrate.7.2.src.setup.json': { status: 'setup', incoming: false },
  'query-migrate.7.2.src.active.json': {
    status: 'active',
    incoming: false,
    expectedDowntimeMs: 300,
    setupTimeMs: 4,
    totalTimeMs: 44,
    ram: {
      total: 537206784,
      'postcopy-requests': 0,
      'dirty-sync-count': 1,
      'multifd-bytes': 0,
      'pages-per-second': 0,
      'downtime-bytes': 0,
      'page-size': 4096,
      remaining: 530006016,
      'postcopy-bytes': 0,
      mbps: 0,
      transferred: 6170613,
      'dirty-sync-missed-zero-copy': 0,
      'precopy-bytes': 6170613,
      duplicate: 254,
      'dirty-pages-rate': 0,
      skipped: 0,
      'normal-bytes': 6156288,
      normal: 1503,
    },
  },
  'query-migrate.7.2.src.active-at-postcopy-switch.json': {
    status: 'active',
    incoming: false,
    expectedDowntimeMs: 300,
    setupTimeMs: 4,
    totalTimeMs: 4449,
    ram: {
      total: 537206784,
      'postcopy-requests': 0,
      'dirty-sync-count': 2,
      'multifd-bytes': 0,
      'pages-per-second': 25560,
      'downtime-bytes': 0,
      'page-size': 4096,
      remaining: 133099520,
      'postcopy-bytes': 0,
      mbps: 839.18736,
      transferred: 472038704,
      'dirty-sync-missed-zero-copy': 0,
      'precopy-bytes': 472038704,
      duplicate: 16445,
      'dirty-pages-rate': 7408,
      skipped: 0,
      'normal-bytes': 470970368,
      normal: 114983,
    },
  },
  'query-migrate.7.2.src.postcopy-active.json': {
    status: 'postcopy-active',
    incoming: false,
    expectedDowntimeMs: 1279,
    setupTimeMs: 4,
    totalTimeMs: 4550,
    ram: {
      total: 537206784,
      'postcopy-requests': 22,
      'dirty-sync-count': 3,
      'multifd-bytes': 0,
      'pages-per-second': 187110,
      'downtime-bytes': 0,
      'page-size': 4096,
      remaining: 123768832,
      'postcopy-bytes': 10473423,
      mbps: 839.0335200000001,
      transferred: 482512127,
      'dirty-sync-missed-zero-copy': 0,
      'precopy-bytes': 472038704,
      duplicate: 16445,
      'dirty-pages-rate': 7408,
      skipped: 0,
      'normal-bytes': 481423360,
      normal: 117535,
    },
  },
  'query-migrate.7.2.src.completed.json': {
    status: 'completed',
    incoming: false,
    setupTimeMs: 4,
    downtimeMs: 4,
    totalTimeMs: 5460,
    ram: {
      total: 537206784,
      'postcopy-requests': 38,
      'dirty-sync-count': 3,
      'multifd-bytes': 0,
      'pages-per-second': 25560,
      'downtime-bytes': 0,
      'page-size': 4096,
      remaining: 0,
      'postcopy-bytes': 134484063,
      mbps: 889.3498460410558,
      transferred: 606522767,
      'dirty-sync-missed-zero-copy': 0,
      'precopy-bytes': 472038704,
      duplicate: 16445,
      'dirty-pages-rate': 0,
      skipped: 0,
      'normal-bytes': 605192192,
      normal: 147752,
    },
  },
  'query-migrate.7.2.src.completed-precopy-only.json': {
    status: 'completed',
    incoming: false,
    setupTimeMs: 2,
    downtimeMs: 1,
    totalTimeMs: 4427,
    ram: {
      total: 537206784,
      'postcopy-requests': 0,
      'dirty-sync-count': 3,
      'multifd-bytes': 0,
      'pages-per-second': 25560,
      'downtime-bytes': 4111,
      'page-size': 4096,
      remaining: 0,
      'postcopy-bytes': 0,
      mbps: 851.581101920904,
      transferred: 470918296,
      'dirty-sync-missed-zero-copy': 0,
      'precopy-bytes': 470914185,
      duplicate: 16445,
      'dirty-pages-rate': 0,
      skipped: 0,
      'normal-bytes': 469852160,
      normal: 114710,
    },
  },
  'query-migrate.7.2.src.cancelled.json': { status: 'cancelled', incoming: false },
  'query-migrate.7.2.src.failed-connect.json': {
    status: 'failed',
    incoming: false,
    errorDesc: "Failed to connect to '127.0.0.1:1': Connection refused",
  },
  'query-migrate.7.2.src.postcopy-paused.json': {
    status: 'postcopy-paused',
    incoming: false,
    expectedDowntimeMs: 300,
    setupTimeMs: 7,
    totalTimeMs: 2507,
    ram: {
      total: 537206784,
      'postcopy-requests': 6,
      'dirty-sync-count': 2,
      'multifd-bytes': 0,
      'pages-per-second': 5120,
      'downtime-bytes': 0,
      'page-size': 4096,
      remaining: 523595776,
      'postcopy-bytes': 12591127,
      mbps: 168.10088000000002,
      transferred: 117487636,
      'dirty-sync-missed-zero-copy': 0,
      'precopy-bytes': 104896509,
      duplicate: 254,
      'dirty-pages-rate': 0,
      skipped: 0,
      'normal-bytes': 117256192,
      normal: 28627,
    },
  },
  'query-migrate.7.2.dst.active.json': { status: 'active', incoming: true },
  'query-migrate.7.2.dst.postcopy-active.json': { status: 'postcopy-active', incoming: true },
  // The destination drops socket-address once completed: `incoming` cannot tell the side then.
  'query-migrate.7.2.dst.completed.json': { status: 'completed', incoming: false },
  'query-migrate.7.2.dst.completed-postcopy-blocktime.json': { status: 'completed', incoming: false, postcopyBlocktimeMs: 708 },
};

describe('parseQueryMigrate on real QEMU 7.2 replies', () => {
  it('has an expectation for every query-migrate fixture', () => {
    const files = readdirSync(FIXTURES).filter((name) => name.startsWith('query-migrate.'));
    expect(files.sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(Object.entries(EXPECTED))('%s', (file, expected) => {
    expect(parseQueryMigrate(fixture(file), `fixture ${file}`)).toEqual(expected);
  });
});

describe('parseQueryMigrate edge cases', () => {
  it("reports 'none' for the empty reply of a QEMU that never migrated", () => {
    expect(parseQueryMigrate({}, 'vm1')).toEqual({ status: 'none', incoming: false });
  });

  it('keeps an unknown status verbatim', () => {
    expect(parseQueryMigrate({ status: 'postcopy-teleporting' }, 'vm1').status).toBe('postcopy-teleporting');
  });

  it('keeps only the numeric ram fields it knows', () => {
    const info = parseQueryMigrate({ status: 'active', ram: { transferred: 10, 'iteration-count': 3, 'page-size': 4096 } }, 'vm1');
    expect(info.ram).toEqual({ transferred: 10, 'page-size': 4096 });
  });

  it('ignores fields it does not use, whatever their type', () => {
    const info = parseQueryMigrate({ status: 'active', blocked: false, 'xbzrle-cache': { bytes: 1 }, 'blocked-reasons': ['x'] }, 'vm1');
    expect(info).toEqual({ status: 'active', incoming: false });
  });

  it.each([
    ['not an object', null, 'expected a JSON object, got null'],
    ['an array', [], 'expected a JSON object, got an array'],
    ['a string', 'active', 'expected a JSON object, got a string'],
    ['a numeric status', { status: 3 }, 'status should be a string, got 3'],
    ['a string time', { status: 'active', 'total-time': '44' }, 'total-time should be a number, got "44"'],
    ['a non-object ram', { status: 'active', ram: 5 }, 'ram should be an object, got 5'],
    ['a string ram figure', { status: 'active', ram: { transferred: '10' } }, 'ram.transferred should be a number, got "10"'],
    ['a numeric error-desc', { status: 'failed', 'error-desc': 1 }, 'error-desc should be a string, got 1'],
    ['a string blocktime', { status: 'completed', 'postcopy-blocktime': 'x' }, 'postcopy-blocktime should be a number, got "x"'],
    // Issue 13, item 6: figures that cannot be true.
    ['a negative ram figure', { status: 'active', ram: { transferred: -123456789 } }, 'ram.transferred cannot be negative (QEMU reports it unsigned), got -123456789'],
    ['a negative page size', { status: 'active', ram: { 'page-size': -4096 } }, 'ram.page-size cannot be negative (QEMU reports it unsigned), got -4096'],
    ['a negative time', { status: 'active', 'total-time': -1 }, 'total-time cannot be negative (QEMU reports it unsigned), got -1'],
    ['1e400 (Infinity once parsed)', JSON.parse('{"status": "active", "ram": {"total": 1e400}}') as unknown, 'ram.total should be a number, got one too large for a number (Infinity)'],
  ])('throws LME_QMP_REPLY naming the origin for %s', (_case, reply, detail) => {
    let thrown: unknown;
    try {
      parseQueryMigrate(reply, 'unix:/run/vm1.qmp');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(LivemigError);
    expect((thrown as LivemigError).code).toBe('LME_QMP_REPLY');
    expect((thrown as LivemigError).message).toBe(`query-migrate reply from unix:/run/vm1.qmp is not usable: ${detail}`);
  });
});

describe('isKnownStatus', () => {
  it('knows every MigrationStatus of QEMU 7.x to 10.2', () => {
    for (const status of MIGRATION_STATUSES) expect(isKnownStatus(status)).toBe(true);
  });

  it('does not know a made-up status', () => {
    expect(isKnownStatus('postcopy-teleporting')).toBe(false);
  });
});
