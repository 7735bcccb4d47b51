/**
 * The statuses and time stamps of a migration, and of a monitor heard from before it is known to
 * be a side of one (its `pending` reports). Plain data in, plain data out.
 */
import { type Side } from './classify.js';
import type { Origin } from '../observations.js';
import type { Mark, MonitorView, OpenMigration, Pending, SideTrack, Timed } from '../records/tracker-snapshot.js';
import { isPostcopyStatus, stageOf } from '../qemu/status.js';

/** One report: a poll reply (poll time) or an event (QEMU's time stamp; libvirt's: receipt time). */
export interface Stamp {
  via: 'event' | 'poll';
  at: number;
  mono: number | null;
  /** Unset: QMP. */
  origin?: Origin;
  /** How the report reads in evidence when it is not QMP's own. */
  what?: string;
}

/** The origin and wording of a report that is not QMP's own, to keep with what it set. */
export function provenance(r: { origin?: Origin; what?: string }): { origin?: Origin; what?: string } {
  return r.origin && r.origin !== 'qmp' ? { origin: r.origin, ...(r.what ? { what: r.what } : {}) } : {};
}

/** "qmp:source ..." or "libvirt:destination ...": the prefix of every evidence string. */
export function evidence(origin: Origin | undefined, side: Side | string, what: string): string {
  return `${origin ?? 'qmp'}:${side} ${what}`;
}

/** Statuses kept per migration; a link that flaps in post-copy must not grow a record forever. */
const MAX_MARKS = 256;

/** @param what the first report, e.g. 'setup' or 'event MIGRATION_PASS 1'. */
export function newPending(r: Stamp, what: string): Pending {
  const described = r.what ?? (r.via === 'event' ? (what.startsWith('event ') ? what : `event MIGRATION ${what}`) : `query-migrate status ${what} (poll time)`);
  const start = { at: r.at, mono: r.mono, via: r.via, what: described, ...(r.origin && r.origin !== 'qmp' ? { origin: r.origin } : {}) };
  return { hint: null, sawSetup: false, start, timed: null, marks: [] };
}

/** Time of the newest report folded into a pending monitor. */
export function newestOf(pending: Pending): number {
  return pending.marks.reduce((newest, mark) => Math.max(newest, mark.at), pending.start.at);
}

/** What a report tells about a pending monitor: its side, a setup, QEMU's total-time. */
export function noteEvidence(pending: Pending, status: string, hint: Side | null, r: Stamp, totalTimeMs: number | undefined): void {
  if (hint) pending.hint = hint;
  if (status === 'setup') pending.sawSetup = true;
  if (totalTimeMs !== undefined && pending.timed === null) pending.timed = { at: r.at, mono: r.mono, totalTimeMs };
}

export function pushPendingMark(pending: Pending, status: string, r: Stamp): void {
  const last = pending.marks[pending.marks.length - 1];
  if (last?.status === status) return;
  if (pending.marks.length >= MAX_MARKS) pending.marks.splice(1, 1);
  pending.marks.push({ status, at: r.at, via: r.via, ...provenance(r) });
}

export function pushMark(m: OpenMigration, mark: Mark): void {
  if (m.marks.length >= MAX_MARKS) m.marks.splice(1, 1);
  m.marks.push(mark);
}

/** Moves a pending monitor's reports into the migration it turned out to be a side of. */
export function foldPending(m: OpenMigration, track: SideTrack, side: Side, pending: Pending): void {
  for (const mark of pending.marks) {
    pushMark(m, { ...mark, side });
    m.lastWall = Math.max(m.lastWall, mark.at);
    const stage = stageOf(mark.status);
    track.status = mark.status;
    track.statusAt = mark.at;
    if (stage !== null) track.stage = Math.max(track.stage, stage);
    if (isPostcopyStatus(mark.status)) m.postcopyAt = better(m.postcopyAt, timed(side, mark.status, mark));
  }
}

/** When a migration started: QEMU's event, else the poll time minus QEMU's total-time, else the first poll. */
export function startOf(pending: Pending): { value: number; evidence: string; mono: number | null } {
  const { start, timed: withTotal } = pending;
  if (start.via === 'event' || withTotal === null) return { value: start.at, evidence: evidence(start.origin, 'source', start.what), mono: start.mono };
  const total = start.origin === 'libvirt' ? 'job stats time_elapsed' : 'query-migrate total-time';
  return {
    value: withTotal.at - withTotal.totalTimeMs,
    evidence: evidence(start.origin, 'source', `${total}, counted back from the poll time`),
    mono: withTotal.mono === null ? null : withTotal.mono - withTotal.totalTimeMs,
  };
}

export function sideTrack(view: MonitorView): SideTrack {
  return { monitor: view.monitor, host: view.host, status: null, statusAt: null, stage: 0, gone: null };
}

export function timed(side: Side, status: string, r: { at: number; via: 'event' | 'poll'; origin?: Origin; what?: string }): Timed {
  const what = r.what ?? (r.via === 'event' ? `event MIGRATION ${status}` : `query-migrate status ${status} (poll time)`);
  return { at: r.at, side, via: r.via, what, ...(r.origin && r.origin !== 'qmp' ? { origin: r.origin } : {}) };
}

/** QEMU's own time stamp beats a poll's; the source's word beats the destination's. */
export function better(current: Timed | null, candidate: Timed): Timed {
  if (current === null) return candidate;
  const rank = (t: Timed): number => (t.side === 'source' ? 0 : 2) + (t.via === 'event' ? 0 : 1);
  return rank(candidate) < rank(current) ? candidate : current;
}

/** A status first seen in a poll gets QEMU's time stamp when its event arrives. */
export function preferEventTime(m: OpenMigration, side: Side, status: string, at: number): void {
  for (let i = m.marks.length - 1; i >= 0; i--) {
    const mark = m.marks[i]!;
    if (mark.side !== side || mark.status !== status) continue;
    if (mark.via === 'poll') {
      mark.at = at;
      mark.via = 'event';
    }
    return;
  }
}
