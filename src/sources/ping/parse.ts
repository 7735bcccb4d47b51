/**
 * Parser for the output of `fping -l -D -e -o ...` (fping 5.1), one line at a time, stdout and
 * stderr alike. Pure: text in, typed record out; a line it does not know becomes an `unknown`
 * record carrying the raw text, so one odd line never stops the others.
 *
 * Line shapes, as fping 5.1 prints them (test/fixtures/fping/ holds real captures):
 *   stdout  [1795645800.84019] 198.18.1.2 : [0], 64 bytes, 0.039 ms (0.039 avg, 0% loss)
 *   stdout  [1795645803.05043] 198.18.1.3 : [12], timed out (0.036 avg, 7% loss)
 *   stderr  ICMP Host Unreachable from 198.18.0.2 for ICMP Echo sent to 198.18.2.1
 *   stderr  198.18.1.2 : xmt/rcv/%loss = 45/29/35%, outage(ms) = 1600, min/avg/max = 0.010/0.046/0.073
 *   stderr  vm-gone.invalid: Name or service not known
 *   stderr  /usr/bin/fping: can't create socket (must run as root?)
 *   stderr  fping error: not enough sequence numbers available! (...)
 * fping pads addresses to the longest target's width before " : ". RTTs have three significant
 * digits ("0.054", "32.0", "119"). A duplicate reply is printed as a second ordinary reply line for
 * the same [seq]; fping 5.1 in loop mode prints no "[DUP!]" marker and no line for a reply that
 * comes after its timeout.
 */
import { LivemigError } from '../../errors.js';
import { excerpt } from '../qmp/framing.js';

export type FatalReason = 'permission' | 'sequence-exhausted' | 'source-address' | 'other';

export type FpingLine =
  /** `stampMs`: when fping received the reply; the probe was sent at stampMs - rttMs. */
  | { kind: 'reply'; stampMs: number; address: string; seq: number; bytes: number; rttMs: number }
  /** `stampMs`: when fping gave up, i.e. the send time plus the -t timeout. */
  | { kind: 'timeout'; stampMs: number; address: string; seq: number }
  /** An ICMP error about one of our probes; fping still reports that probe as timed out later. */
  | { kind: 'icmp-error'; message: string; from: string; address: string }
  /** The per-target totals fping prints on SIGINT or exit (stderr). */
  | { kind: 'summary'; address: string; sent: number; received: number; outageMs: number | null }
  /** A target fping could not use (name resolution); fping carries on with the others. */
  | { kind: 'target-error'; target: string; message: string }
  /** fping is about to exit, or refused to start. */
  | { kind: 'fatal'; reason: FatalReason; message: string }
  | { kind: 'blank' }
  | { kind: 'unknown'; error: LivemigError; raw: string };

const STAMP = String.raw`\[(\d+(?:\.\d+)?)\]`;
const ADDRESS = String.raw`(\S+) +:`;
const NUMBER = String.raw`\d+(?:\.\d+)?`;
const TRAILER = String.raw`\((?:${NUMBER}|NaN) avg, \d+% loss\)`;

const REPLY = new RegExp(`^${STAMP} ${ADDRESS} \\[(\\d+)\\], (\\d+) bytes, (${NUMBER}) ms ${TRAILER}$`);
const TIMEOUT = new RegExp(`^${STAMP} ${ADDRESS} \\[(\\d+)\\], timed out ${TRAILER}$`);
const SUMMARY = new RegExp(
  `^${ADDRESS} xmt/rcv/%loss = (\\d+)/(\\d+)/\\d+%(?:, outage\\(ms\\) = (\\d+))?(?:, min/avg/max = ${NUMBER}/${NUMBER}/${NUMBER})?$`,
);
const ICMP_ERROR = /^ICMP (.+) from (\S+) for ICMP Echo sent to (\S+)$/;
const PERMISSION = /can't create (?:raw )?socket|must run as root/;
/** A target is an address or a host name: `{"QMP": ...}` or a sentence is not one. */
const TARGET_ERROR = /^([A-Za-z0-9][A-Za-z0-9.:%_-]*): (.+)$/;

export function parseFpingLine(line: string): FpingLine {
  const text = line.endsWith('\r') ? line.slice(0, -1) : line;
  if (text.trim() === '') return { kind: 'blank' };

  let m = REPLY.exec(text);
  if (m) {
    return { kind: 'reply', stampMs: stampToMs(m[1]!), address: m[2]!, seq: Number(m[3]), bytes: Number(m[4]), rttMs: Number(m[5]) };
  }
  m = TIMEOUT.exec(text);
  if (m) return { kind: 'timeout', stampMs: stampToMs(m[1]!), address: m[2]!, seq: Number(m[3]) };
  m = ICMP_ERROR.exec(text);
  if (m) return { kind: 'icmp-error', message: m[1]!, from: m[2]!, address: m[3]! };
  m = SUMMARY.exec(text);
  if (m) {
    return { kind: 'summary', address: m[1]!, sent: Number(m[2]), received: Number(m[3]), outageMs: m[4] === undefined ? null : Number(m[4]) };
  }
  const fatal = fatalReason(text);
  if (fatal) return { kind: 'fatal', reason: fatal, message: text };
  m = TARGET_ERROR.exec(text);
  if (m) return { kind: 'target-error', target: m[1]!, message: m[2]! };

  const raw = excerpt(text);
  return { kind: 'unknown', raw, error: new LivemigError('LME_PING_LINE', [JSON.stringify(raw)]) };
}

function fatalReason(text: string): FatalReason | null {
  if (PERMISSION.test(text)) return 'permission';
  if (/not enough sequence numbers available/.test(text)) return 'sequence-exhausted';
  if (/cannot bind source address/.test(text)) return 'source-address';
  if (/^fping(?: error)?: /.test(text)) return 'other';
  return null;
}

/** fping's `-D` stamp is epoch seconds with five decimals (10 us). */
function stampToMs(stamp: string): number {
  const [seconds = '0', fraction = ''] = stamp.split('.');
  return Number(seconds) * 1000 + Number(`0.${fraction || '0'}`) * 1000;
}
