import { LivemigError } from '../../errors.js';
import { describeJsonType, excerpt, isPlainObject } from './framing.js';
import { RAM_FIELDS, type MigrationInfo, type RamStats } from '../../qemu/types.js';

/** Top-level millisecond fields of query-migrate and where they go in MigrationInfo. */
const TIME_FIELDS = [
  ['total-time', 'totalTimeMs'],
  ['expected-downtime', 'expectedDowntimeMs'],
  ['downtime', 'downtimeMs'],
  ['setup-time', 'setupTimeMs'],
  ['postcopy-blocktime', 'postcopyBlocktimeMs'],
] as const;

/**
 * Maps the `return` value of `query-migrate` to MigrationInfo. Fields this exporter does not use
 * (disk, xbzrle-cache, vfio, blocked-reasons ...) and non-numeric `ram` fields are ignored; a
 * field it uses with the wrong type is an error, never a silent 0.
 *
 * @param origin names the monitor the reply came from, for the error message.
 * @throws LivemigError LME_QMP_REPLY
 */
export function parseQueryMigrate(reply: unknown, origin: string): MigrationInfo {
  if (!isPlainObject(reply)) throw replyError(origin, `expected a JSON object, got ${describeJsonType(reply)}`);

  const status = reply.status;
  if (status !== undefined && typeof status !== 'string') throw wrongType(origin, 'status', 'a string', status);

  const info: MigrationInfo = { status: status ?? 'none', incoming: reply['socket-address'] !== undefined };
  for (const [qemuName, ourName] of TIME_FIELDS) {
    const value = reply[qemuName];
    if (value === undefined) continue;
    info[ourName] = figure(origin, qemuName, value);
  }

  const errorDesc = reply['error-desc'];
  if (errorDesc !== undefined) {
    if (typeof errorDesc !== 'string') throw wrongType(origin, 'error-desc', 'a string', errorDesc);
    info.errorDesc = errorDesc;
  }

  if (reply.ram !== undefined) info.ram = parseRam(reply.ram, origin);
  return info;
}

function parseRam(ram: unknown, origin: string): RamStats {
  if (!isPlainObject(ram)) throw wrongType(origin, 'ram', 'an object', ram);
  const stats: RamStats = {};
  for (const field of RAM_FIELDS) {
    const value = ram[field];
    if (value === undefined) continue;
    stats[field] = figure(origin, `ram.${field}`, value);
  }
  return stats;
}

/**
 * One figure of the reply. QEMU declares every one of them unsigned (uint64, or int64 times
 * that are never negative), so a negative figure, or one too large to be a number (1e400 parses
 * as Infinity), cannot be true: the reply is refused rather than exported.
 */
function figure(origin: string, field: string, value: unknown): number {
  if (typeof value !== 'number') throw wrongType(origin, field, 'a number', value);
  if (!Number.isFinite(value)) throw replyError(origin, `${field} should be a number, got one too large for a number (${value})`);
  if (value < 0) throw replyError(origin, `${field} cannot be negative (QEMU reports it unsigned), got ${value}`);
  return value;
}

function wrongType(origin: string, field: string, expected: string, value: unknown): LivemigError {
  return replyError(origin, `${field} should be ${expected}, got ${excerpt(JSON.stringify(value))}`);
}

function replyError(origin: string, detail: string): LivemigError {
  return new LivemigError('LME_QMP_REPLY', [origin, detail]);
}
