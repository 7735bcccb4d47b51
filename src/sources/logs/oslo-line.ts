/**
 * The oslo.log line layout nova-compute writes, Icehouse (2014.1) to 2026.1 (signals.md §1.0):
 *
 *   DATE TIME.mmm PID LEVEL LOGGER [CONTEXT] [instance: UUID] MESSAGE[ FUNC PATH:LINE]
 *
 * CONTEXT is `-` without a request context, else request id, user identity (its layout changed
 * with the releases) and since oslo.log 4.8 a global request id first. `[instance: UUID] ` is
 * there when the call named an instance. DEBUG lines end with ` funcName pathname:lineno`.
 * Exception continuation lines (the traceback) use a prefix without CONTEXT
 * (`... ERROR LOGGER [instance: UUID] Traceback ...`, Juno: level TRACE): they come back as
 * `continuation` so they are never taken for events. Pure: text in, record out, never throws.
 */
import type { TimeZone } from '../../config/timezone.js';

export type OsloLevel = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL' | 'AUDIT' | 'TRACE';

export interface OsloLine {
  kind: 'line';
  /** ms since the epoch, from the wall-clock stamp read in the configured zone. */
  timeMs: number;
  pid: number;
  level: OsloLevel;
  logger: string;
  /** `req-…` of the request context, when the line has one. */
  requestId?: string;
  globalRequestId?: string;
  instanceUuid?: string;
  /** The message, without the DEBUG suffix. */
  message: string;
}

export type OsloParse =
  | OsloLine
  | { kind: 'continuation'; timeMs: number }
  | { kind: 'unparseable'; reason: string };

const HEAD =
  /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))? (\d+) (DEBUG|INFO|WARNING|ERROR|CRITICAL|AUDIT|TRACE) (\S+) ?/;
const INSTANCE = /^\[instance: ([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\] /;
const DEBUG_SUFFIX = / [A-Za-z_<>][\w<>]* \S+\.py:\d+$/;
const REQUEST = /^req-[0-9a-fA-F-]{36}$/;

export function parseOsloLine(text: string, zone: TimeZone): OsloParse {
  const line = text.endsWith('\r') ? text.slice(0, -1) : text;
  const head = HEAD.exec(line);
  if (!head) return { kind: 'unparseable', reason: 'no oslo.log time stamp, pid, level and logger at the start' };
  const month = Number(head[2]);
  const day = Number(head[3]);
  const hour = Number(head[4]);
  const minute = Number(head[5]);
  const second = Number(head[6]);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return { kind: 'unparseable', reason: 'time stamp out of range' };
  }
  const ms = Number(`${head[7] ?? ''}000`.slice(0, 3));
  const timeMs = zone.toEpochMs(Number(head[1]), month, day, hour, minute, second, ms);
  if (!Number.isFinite(timeMs)) return { kind: 'unparseable', reason: 'time stamp out of range' };
  const level = head[9] as OsloLevel;
  let rest = line.slice(head[0].length);
  if (level === 'TRACE' || !rest.startsWith('[') || rest.startsWith('[instance: ')) return { kind: 'continuation', timeMs };
  const close = rest.indexOf('] ');
  const closeAtEnd = close < 0 && rest.endsWith(']') ? rest.length - 1 : close;
  if (closeAtEnd < 0) return { kind: 'unparseable', reason: 'request context `[…]` is not closed' };
  const context = rest.slice(1, closeAtEnd);
  rest = rest.slice(closeAtEnd + 2);
  const out: OsloLine = { kind: 'line', timeMs, pid: Number(head[8]), level, logger: head[10] ?? '', message: '' };
  readContext(context, out);
  const instance = INSTANCE.exec(rest);
  if (instance) {
    out.instanceUuid = (instance[1] ?? '').toLowerCase();
    rest = rest.slice(instance[0].length);
  }
  out.message = level === 'DEBUG' ? rest.replace(DEBUG_SUFFIX, '') : rest;
  return out;
}

function readContext(context: string, out: OsloLine): void {
  if (context === '-' || context === '') return;
  const tokens = context.split(' ');
  const first = tokens[0] ?? '';
  const second = tokens[1] ?? '';
  if (REQUEST.test(second)) {
    // oslo.log ≥ 4.8: [global_request_id request_id user_identity]
    out.requestId = second;
    if (REQUEST.test(first)) out.globalRequestId = first;
  } else if (REQUEST.test(first)) {
    out.requestId = first;
  }
}

const STAMP = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?/;

/** Just the leading stamp of an oslo.log line (for the follower lag), or null. */
export function parseOsloStamp(text: string, zone: TimeZone): number | null {
  const m = STAMP.exec(text);
  if (!m) return null;
  const t = zone.toEpochMs(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), Number(`${m[7] ?? ''}000`.slice(0, 3)));
  return Number.isFinite(t) ? t : null;
}
