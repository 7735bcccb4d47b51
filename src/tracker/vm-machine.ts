/**
 * The migrations of one VM: turns the observations of its QEMU monitors into one open migration
 * at a time and closes it. Plain logic over plain data (VmState, which the state file keeps);
 * the tracker adds the clock, the store, the log and the events.
 *
 * Roles are inferred, never configured. A monitor shows itself to be the SOURCE by `ram` in its
 * reply, an error-desc, MIGRATION_PASS, or a run state of finish-migrate/postmigrate; the
 * DESTINATION by `socket-address` (incoming), run state inmigrate, RESUME, or a status that would
 * carry `ram` on a source but does not. Until a monitor has shown its side, what it reports is kept
 * as `pending`; the migration opens once a source is known, with the pending reports folded in.
 *
 * A migration never opens from a terminal status alone (the old source keeps reporting the last
 * 'completed'), except when a source reply differs from the one it last showed while idle: a
 * whole migration then ran between two polls.
 */
import { isLibvirtMonitor, type Observation, type QmpEventObservation } from '../observations.js';
import type { MigrationInfo } from '../qemu/types.js';
import { replyFingerprint, sideOfReply, type Side } from './classify.js';
import type { Closing } from './build-record.js';
import {
  better,
  evidence,
  foldPending,
  newestOf,
  newPending,
  noteEvidence,
  preferEventTime,
  provenance,
  pushMark,
  pushPendingMark,
  sideTrack,
  startOf,
  timed,
  type Stamp,
} from './marks.js';
import { betterOutcome, closingAtDeadline, decide, supersededClosing, type OutcomeTimeouts } from './outcome.js';
import type { MonitorView, OpenMigration, Outcome, SideTrack, VmState } from '../records/tracker-snapshot.js';
import { ACTIVE_STAGE, type MigrationPhase, isKnownStatus, isPostcopyStatus, phaseOf, stageOf, terminalResult } from '../qemu/status.js';

/** See outcome.ts for what each timeout waits for. */
export type MachineTimeouts = OutcomeTimeouts;

export type MachineEffect =
  | { kind: 'started'; migration: OpenMigration }
  | { kind: 'phase'; migration: OpenMigration; phase: MigrationPhase }
  | { kind: 'closed'; migration: OpenMigration; closing: Closing }
  | { kind: 'unknown-status'; status: string; monitor: string }
  | { kind: 'notice'; message: string; id: string };

interface Report extends Stamp {
  info?: MigrationInfo;
  runState?: string;
}

/** The stage of 'device': up to here the source is still in pre-copy or switching over. */
const SWITCHOVER_STAGE = stageOf('device')!;

export class VmMachine {
  private effects: MachineEffect[] = [];
  private now = 0;
  /** Id of the migration being opened by the current observation: its phase is not news yet. */
  private opening: string | null = null;

  constructor(
    readonly vm: string,
    readonly state: VmState,
    private readonly timeouts: MachineTimeouts,
  ) {}

  /** Applies one observation; `now` is the exporter's wall clock, for deadlines. */
  observe(o: Observation, now: number): MachineEffect[] {
    this.begin(now);
    const view = this.viewOf(o.ref.monitor, o.ref.host);
    const report: Report = { via: o.kind === 'qmp-status' ? 'poll' : 'event', at: o.wallMs, mono: o.monoMs, ...provenance(o) };
    if (o.kind === 'monitor-gone') {
      this.onGone(view, report, o.reason);
    } else {
      view.gone = false;
      this.reattach(view, o);
      if (o.kind === 'qmp-status') this.onStatus(view, o.info.status, { ...report, info: o.info, ...(o.runState !== undefined ? { runState: o.runState } : {}) });
      else this.onEvent(view, o, report);
    }
    return this.end();
  }

  /** Closes the open migration if its deadline has passed. */
  tick(now: number): MachineEffect[] {
    this.begin(now);
    return this.end();
  }

  private begin(now: number): void {
    this.effects = [];
    this.now = now;
    this.expire();
  }

  private end(): MachineEffect[] {
    const effects = this.effects;
    this.effects = [];
    this.opening = null;
    return effects;
  }

  private viewOf(monitor: string, host: string): MonitorView {
    let view = this.state.monitors[monitor];
    if (!view) {
      view = { monitor, host, status: null, idleFingerprint: null, absorbNextTerminal: false, gone: false, pending: null };
      this.state.monitors[monitor] = view;
    }
    view.host = host;
    return view;
  }

  private sideIn(m: OpenMigration, view: MonitorView): Side | null {
    if (sameQemu(m.source, view) && !m.source.gone) return 'source';
    if (m.destination && sameQemu(m.destination, view) && !m.destination.gone) return 'destination';
    return null;
  }

  // --- reports ---------------------------------------------------------------------------------

  private onEvent(view: MonitorView, o: QmpEventObservation, r: Report): void {
    switch (o.event) {
      case 'MIGRATION': {
        const status = o.data.status;
        if (typeof status === 'string') this.onStatus(view, status, r);
        return;
      }
      case 'MIGRATION_PASS': {
        const pass = o.data.pass;
        if (typeof pass === 'number') this.onPass(view, pass, r);
        return;
      }
      case 'STOP':
        this.onStop(view, r);
        return;
      case 'RESUME':
        this.onResume(view, r);
        return;
      default:
        return;
    }
  }

  private onStatus(view: MonitorView, status: string, r: Report): void {
    if (!isKnownStatus(status)) this.effects.push({ kind: 'unknown-status', status, monitor: view.monitor });
    const m = this.state.open;
    const side = m ? this.sideIn(m, view) : null;
    if (m && side) {
      if (side === 'destination' && this.migratesOut(status, r)) {
        // The VM runs on the destination and migrates on from there: this migration is over.
        this.supersede(m, view, r);
      } else if (side === 'source' && startsAnew(m, status, r)) {
        // The same QEMU began another migration (an exporter restarted in between missed the end).
        this.supersede(m, view, r);
      } else {
        this.applyToSide(m, side, view, status, r);
        return;
      }
    }
    this.onUnboundStatus(view, status, r);
  }

  /** A reply that shows its QEMU as the source of a migration under way. */
  private migratesOut(status: string, r: Report): boolean {
    return r.info !== undefined && terminalResult(status) === null && status !== 'none' && sideOfReply(r.info, r.runState) === 'source';
  }

  /** A status from a monitor that is not (or no longer) a side of the open migration, if any. */
  private onUnboundStatus(view: MonitorView, status: string, r: Report): void {
    if (this.isLate(r)) {
      if (r.info && (status === 'none' || terminalResult(status) !== null)) this.settleIdle(view, r.info);
      return;
    }
    const previous = view.status;
    view.status = status;
    // A source whose migration closed in post-copy without its final reply (the paused timeout)
    // and that still reports post-copy (paused for good, or recovering late) is that migration
    // going on, not a new one: a new migration begins with setup. Its final status is absorbed below.
    if (view.absorbNextTerminal && isPostcopyStatus(status) && previous !== null && isPostcopyStatus(previous)) return;
    const hint = r.info ? sideOfReply(r.info, r.runState) : null;
    if (status === 'none') {
      // Polled before the events that began a migration here, read after them: not an end.
      if (view.pending && r.at < newestOf(view.pending)) return;
      view.pending = null;
      if (r.info) this.settleIdle(view, r.info);
      return;
    }
    if (!isKnownStatus(status)) {
      // Recorded with the migration if one opens; never a reason to open one.
      if (view.pending) pushPendingMark(view.pending, status, r);
      return;
    }
    const terminal = terminalResult(status) !== null;
    // A migration starting after one that ended here: what was pending belongs to the old one.
    if (!terminal && previous !== null && terminalResult(previous) !== null) view.pending = null;
    const missed = terminal && this.isMissedMigration(view, r, hint);
    // A terminal status belongs to a migration under way only if the monitor reported one since
    // it was last idle (or was idle with nothing: 'none'); otherwise it is the old one, again.
    const fresh = !terminal || view.pending !== null || previous === 'none' || missed;
    if (fresh) {
      view.pending ??= newPending(r, status);
      noteEvidence(view.pending, status, hint, r, r.info?.totalTimeMs);
      if (!terminal) view.absorbNextTerminal = false;
    }
    const m = this.state.open;
    if (fresh && m) {
      this.joinOpen(m, view, status, r);
    } else if (fresh && this.canOpenAsSource(view, terminal)) {
      this.openAndApply(view, status, r);
    } else if (fresh && view.pending) {
      pushPendingMark(view.pending, status, r);
      if (!terminal) this.openFromInference();
    }
    // An event alone does not say which side ended: the poll that follows it may still tell.
    const undecided = r.via === 'event' && view.pending?.hint === null;
    if (terminal && !undecided && !(this.state.open && this.sideIn(this.state.open, view))) view.pending = null;
    if (terminal && r.info) this.settleIdle(view, r.info);
  }

  private onPass(view: MonitorView, pass: number, r: Report): void {
    const m = this.state.open;
    const side = m ? this.sideIn(m, view) : null;
    if (m && side === 'source') {
      m.maxPass = Math.max(m.maxPass ?? 0, pass);
      m.lastWall = Math.max(m.lastWall, r.at);
      return;
    }
    if (this.isLate(r)) return;
    // Only a source emits MIGRATION_PASS: whatever was open for this VM has ended.
    if (m) this.supersede(m, view, r);
    view.pending ??= newPending(r, `event MIGRATION_PASS ${pass}`);
    view.pending.hint = 'source';
    this.open(view).maxPass = pass;
  }

  private onStop(view: MonitorView, r: Report): void {
    const m = this.state.open;
    if (!m || this.sideIn(m, view) !== 'source') return;
    if (m.stoppedAt === null) {
      m.stoppedAt = r.at;
      if (r.origin === 'libvirt' && r.what) m.stoppedEvidence = evidence(r.origin, 'source', r.what);
    }
    m.lastWall = Math.max(m.lastWall, r.at);
  }

  private onResume(view: MonitorView, r: Report): void {
    const m = this.state.open;
    if (this.isLate(r)) return;
    if (m) {
      const side = this.sideIn(m, view);
      // The source resumes its own guest when a switch-over fails: not the destination's RESUME.
      if (side === 'source') return;
      // Another monitor of the VM that resumes it is the destination, even before its first poll
      // (a monitor found late, just before the switch-over).
      if (side === null) {
        if (m.destination !== null) return;
        this.bindDestination(m, view);
      }
      if (m.resumedVia !== 'event') {
        m.resumedAt = r.at;
        m.resumedVia = 'event';
        if (r.origin === 'libvirt' && r.what) m.resumedEvidence = evidence(r.origin, 'destination', r.what);
        else delete m.resumedEvidence;
      }
      m.lastWall = Math.max(m.lastWall, r.at);
      this.decide(m);
      return;
    }
    if (view.pending && view.pending.hint === null) {
      view.pending.hint = 'destination';
      this.openFromInference();
    }
  }

  /**
   * A side whose monitor went away (a timeout, an SSH reconnect) and now reports this migration
   * again, at its stage or later, is the same QEMU: it is a side again. A new QEMU behind the
   * same socket reports 'none', an earlier stage or a first pass, and stays gone.
   */
  private reattach(view: MonitorView, o: Exclude<Observation, { kind: 'monitor-gone' }>): void {
    const m = this.state.open;
    if (!m) return;
    const continues = (track: SideTrack, side: Side): boolean => {
      if (o.kind === 'qmp-status') return (stageOf(o.info.status) ?? -1) >= track.stage && !startsAnew(m, o.info.status, { at: o.wallMs, via: 'poll', info: o.info });
      switch (o.event) {
        case 'MIGRATION':
          return typeof o.data.status === 'string' && (stageOf(o.data.status) ?? -1) >= track.stage;
        case 'MIGRATION_PASS':
          return side === 'source' && typeof o.data.pass === 'number' && o.data.pass >= (m.maxPass ?? 1);
        case 'STOP':
          return side === 'source';
        case 'RESUME':
          return side === 'destination';
        default:
          return false;
      }
    };
    if (sameQemu(m.source, view) && m.source.gone && continues(m.source, 'source')) {
      m.source.gone = null;
      m.sourceEventsMissed = true;
    }
    if (m.destination && sameQemu(m.destination, view) && m.destination.gone && continues(m.destination, 'destination')) m.destination.gone = null;
  }

  private onGone(view: MonitorView, r: Report, reason: string): void {
    view.gone = true;
    view.pending = null;
    const m = this.state.open;
    const side = m ? this.sideIn(m, view) : null;
    if (m && side) this.sideGone(m, side, r, reason);
  }

  private sideGone(m: OpenMigration, side: Side, r: Report, reason: string): void {
    const track = side === 'source' ? m.source : m.destination;
    if (!track) return;
    track.gone = { at: r.at, mono: r.mono, reason };
    m.lastWall = Math.max(m.lastWall, r.at);
    this.updatePhase(m);
    this.decide(m);
  }

  // --- the open migration ----------------------------------------------------------------------

  private applyToSide(m: OpenMigration, side: Side, view: MonitorView, status: string, r: Report): void {
    const track = side === 'source' ? m.source : m.destination;
    if (!track) return;
    if (status === 'none') {
      // A reply polled before this QEMU's first event of the migration but read after it: old news.
      if (track.statusAt !== null && r.at < track.statusAt) return;
      // The QEMU behind this monitor is a new process that knows nothing of this migration.
      view.status = status;
      this.sideGone(m, side, r, 'QEMU reports no migration (restarted?)');
      return;
    }
    const stage = stageOf(status);
    // The post-copy statuses share a stage and may cycle: there the report's time tells its age.
    const older = stage === track.stage && status !== track.status && track.statusAt !== null && r.at < track.statusAt;
    if (stage !== null && (stage < track.stage || older)) {
      // A late report of an earlier stage: its status is old news, its figures may still be the newest.
      if (side === 'source' && r.info) this.noteSourceFigures(m, r.info, r.at);
      return;
    }
    view.status = status;
    m.lastWall = Math.max(m.lastWall, r.at);
    if (status !== track.status) {
      pushMark(m, { status, side, at: r.at, via: r.via, ...provenance(r) });
      track.status = status;
      track.statusAt = r.at;
      if (stage !== null) track.stage = stage;
    } else if (r.via === 'event') {
      preferEventTime(m, side, status, r.at);
    }
    const switching = isPostcopyStatus(status) || status === 'device';
    if (side === 'source' && r.via === 'event' && switching && m.passesAtSwitchover === null && !m.resumedAfterRestart && !m.sourceEventsMissed) {
      // Events arrive in QEMU's order, so the passes seen now are those before the switch-over.
      // Only the switch's own event tells it, and only from an unbroken event stream: a later
      // one (completed), or one after an exporter restart or a monitor reconnect, comes after
      // passes the exporter never saw; QEMU's dirty-sync-count tells them then.
      m.passesAtSwitchover = m.maxPass;
    }
    if (isPostcopyStatus(status)) m.postcopyAt = better(m.postcopyAt, timed(side, status, r));
    if (side === 'destination' && r.runState === 'running' && m.resumedAt === null) {
      // No RESUME event seen (the monitor was found after it): the poll time bounds it from above.
      m.resumedAt = r.at;
      m.resumedVia = 'poll';
    }
    if (side === 'source' && r.info) this.noteSourceReply(m, r.info, r.at);
    if (side === 'destination' && r.info?.postcopyBlocktimeMs !== undefined) m.destinationBlocktimeMs = r.info.postcopyBlocktimeMs;
    if (side === 'source' && stage !== null) m.pausedSince = status === 'postcopy-paused' ? (m.pausedSince ?? r.at) : null;

    const result = terminalResult(status);
    if (result) {
      const outcome: Outcome = { result, at: r.at, mono: r.mono, via: r.via, status, ...provenance(r) };
      if (side === 'source') {
        m.outcome = betterOutcome(m.outcome, outcome);
        if (r.info && isFinalReply(r.info)) m.finalReply = true;
      } else {
        m.destinationOutcome = betterOutcome(m.destinationOutcome, outcome);
      }
    }
    this.updatePhase(m);
    this.decide(m);
  }

  private noteSourceReply(m: OpenMigration, info: MigrationInfo, at: number): void {
    m.latest = { info, at };
    this.noteSourceFigures(m, info, at);
    const ram = info.ram;
    if (!ram) return;
    const syncs = ram['dirty-sync-count'] ?? null;
    // Judged by the reply's own status: the destination may have reported post-copy already.
    const stage = stageOf(info.status) ?? 0;
    if (stage > 0 && stage <= SWITCHOVER_STAGE) {
      m.lastPrecopyRam = { transferred: ram.transferred ?? null, dirtySyncCount: syncs };
    } else if ((isPostcopyStatus(info.status) || terminalResult(info.status) !== null) && m.firstPostcopySyncCount === null && syncs !== null) {
      m.firstPostcopySyncCount = syncs;
    }
  }

  private noteSourceFigures(m: OpenMigration, info: MigrationInfo, at: number): void {
    if (info.ram && (m.latestFull === null || at >= m.latestFull.at)) m.latestFull = { info, at };
  }

  /** Closes the migration when its outcome is known, or sets the deadline it waits for. */
  private decide(m: OpenMigration): void {
    const decision = decide(m, this.now, this.timeouts);
    if (decision.kind === 'close') return this.close(m, decision.closing);
    // A deadline keeps its time while the same thing is awaited: repeated reports do not push it
    // later, though news may bring it forward (the final reply came; only the destination is awaited).
    const next = decision.deadline;
    if (next === null || m.deadline?.kind !== next.kind || next.at < m.deadline.at) m.deadline = next;
  }

  private expire(): void {
    const m = this.state.open;
    if (!m?.deadline || this.now < m.deadline.at) return;
    const closing = closingAtDeadline(m, m.deadline.kind, this.now, this.timeouts);
    if (closing) this.close(m, closing);
    else m.deadline = null;
  }

  private close(m: OpenMigration, closing: Closing): void {
    this.effects.push({ kind: 'closed', migration: m, closing });
    this.state.quietUntil = Math.max(this.state.quietUntil ?? -Infinity, m.lastWall);
    for (const track of [m.source, m.destination]) {
      const view = track && this.state.monitors[track.monitor];
      if (view && !track.gone) view.pending = null;
    }
    const source = this.state.monitors[m.source.monitor];
    if (source && !m.source.gone && m.finalReply && m.latest) this.settleIdle(source, m.latest.info);
    // Closed without the final reply: when it comes, it is this migration's, not news; also from
    // a source whose monitor went away and comes back (an SSH reconnect). A new QEMU there says 'none' first.
    else if (source) source.absorbNextTerminal = true;
    this.state.open = null;
  }

  /** Ends the open migration because another migration of the VM has begun from `view`. */
  private supersede(m: OpenMigration, view: MonitorView, r: Report): void {
    this.effects.push({ kind: 'notice', id: m.id, message: `a new migration started from ${view.host} before this one reported its outcome` });
    this.close(m, supersededClosing(m, view.host, m.destination !== null && sameQemu(m.destination, view), r.at, r.mono));
  }

  private joinOpen(m: OpenMigration, view: MonitorView, status: string, r: Report): void {
    const pending = view.pending;
    if (!pending) return;
    if (pending.hint === 'source' && terminalResult(status) === null) {
      this.supersede(m, view, r);
      if (this.canOpenAsSource(view, false)) this.openAndApply(view, status, r);
      return;
    }
    if (m.destination === null && pending.hint !== 'source') {
      this.bindDestination(m, view);
      this.applyToSide(m, 'destination', view, status, r);
      return;
    }
    pushPendingMark(pending, status, r);
  }

  private canOpenAsSource(view: MonitorView, terminal: boolean): boolean {
    const pending = view.pending;
    if (!pending || pending.hint === 'destination') return false;
    if (pending.hint === 'source') return true;
    const others = this.otherViews(view);
    // Events alone: a monitor that went from setup straight to failed/cancelled, with no source
    // elsewhere, failed to start (a destination that was 'active' is a failed incoming side).
    if (terminal) {
      const beganOnly = pending.marks.every((mark) => (stageOf(mark.status) ?? 0) < ACTIVE_STAGE);
      return pending.sawSetup && beganOnly && !others.some((v) => v.pending?.hint === 'source');
    }
    return others.some((v) => v.pending?.hint === 'destination');
  }

  /** Opens a migration whose source is known only because another monitor is its destination. */
  private openFromInference(): void {
    if (this.state.open) return;
    const candidate = Object.values(this.state.monitors).find((v) => !v.gone && v.pending?.hint === null && this.canOpenAsSource(v, false));
    if (candidate) this.open(candidate);
  }

  private openAndApply(view: MonitorView, status: string, r: Report): void {
    this.applyToSide(this.open(view), 'source', view, status, r);
  }

  private open(view: MonitorView): OpenMigration {
    const pending = view.pending;
    if (!pending) throw new Error(`no start known for a migration from ${view.monitor}`);
    const start = startOf(pending);
    const m: OpenMigration = {
      id: `${this.vm}@${Math.floor(start.value)}`,
      startedAt: { value: start.value, evidence: start.evidence },
      startMono: start.mono,
      resumedAfterRestart: false,
      source: sideTrack(view),
      destination: null,
      phase: 'setup',
      marks: [],
      postcopyAt: null,
      stoppedAt: null,
      resumedAt: null,
      resumedVia: null,
      maxPass: null,
      passesAtSwitchover: null,
      sourceEventsMissed: false,
      latest: null,
      latestFull: null,
      lastPrecopyRam: null,
      firstPostcopySyncCount: null,
      outcome: null,
      finalReply: false,
      destinationOutcome: null,
      destinationBlocktimeMs: null,
      pausedSince: null,
      deadline: null,
      lastWall: pending.start.at,
    };
    this.opening = m.id;
    // The tracker reads the migration when this observation is done: 'started' shows its phase then.
    this.effects.push({ kind: 'started', migration: m });
    foldPending(m, m.source, 'source', pending);
    view.pending = null;
    this.state.open = m;
    const destination = this.otherViews(view)
      .filter((v) => v.pending && v.pending.hint !== 'source')
      .sort((a, b) => rankDestination(a) - rankDestination(b))[0];
    if (destination) this.bindDestination(m, destination);
    this.updatePhase(m);
    return m;
  }

  private bindDestination(m: OpenMigration, view: MonitorView): void {
    m.destination = sideTrack(view);
    if (view.pending) foldPending(m, m.destination, 'destination', view.pending);
    view.pending = null;
  }

  private updatePhase(m: OpenMigration): void {
    const fromSource = m.source.status === null ? null : phaseOf(m.source.status);
    const fromDestination = m.source.gone && m.destination?.status ? phaseOf(m.destination.status) : null;
    const phase = fromSource ?? fromDestination;
    if (phase === null || phase === m.phase) return;
    m.phase = phase;
    if (m.id !== this.opening) this.effects.push({ kind: 'phase', migration: m, phase });
  }

  // --- idle monitors ---------------------------------------------------------------------------

  /** A report about a migration that has already closed. */
  private isLate(r: Report): boolean {
    return this.state.quietUntil !== null && r.at <= this.state.quietUntil;
  }

  private isMissedMigration(view: MonitorView, r: Report, hint: Side | null): boolean {
    return (
      r.info !== undefined &&
      hint === 'source' &&
      !view.absorbNextTerminal &&
      view.idleFingerprint !== null &&
      replyFingerprint(r.info) !== view.idleFingerprint
    );
  }

  /** Remembers an idle reply ('none' or terminal) so that the same reply again is not news. */
  private settleIdle(view: MonitorView, info: MigrationInfo): void {
    view.idleFingerprint = replyFingerprint(info);
    view.absorbNextTerminal = false;
  }

  private otherViews(view: MonitorView): MonitorView[] {
    return Object.values(this.state.monitors).filter((v) => v.monitor !== view.monitor && !v.gone);
  }
}

/** A gap in the source's total-time larger than any two reporters of one migration can differ by. */
const TOTAL_TIME_SLACK_MS = 1_000;

/**
 * A source report that belongs to a new migration of the same QEMU, not to the open one: QEMU's
 * total-time went back (it restarts at each migration), or a 'setup' event came after statuses of
 * a later stage. Two migrations are never merged into one record.
 */
function startsAnew(m: OpenMigration, status: string, r: { at: number; via: 'event' | 'poll'; info?: MigrationInfo }): boolean {
  const total = r.info?.totalTimeMs;
  const latest = m.latest;
  // Not a terminal reply: QEMU 7.2 reports 'completed' with total-time 0 for a few ms before its totals.
  const running = terminalResult(status) === null && status !== 'none';
  if (running && total !== undefined && latest?.info.totalTimeMs !== undefined && r.at >= latest.at && total + TOTAL_TIME_SLACK_MS < latest.info.totalTimeMs) return true;
  return status === 'setup' && r.via === 'event' && m.source.stage > (stageOf('setup') ?? 0) && r.at > (m.source.statusAt ?? Infinity);
}

/**
 * Whether a monitor reports about the QEMU a side of the migration runs: the side's own monitor,
 * or libvirt's view of the VM on the same host beside a QMP monitor there (one libvirt daemon per
 * host runs one QEMU per domain), so that both make one record.
 */
function sameQemu(track: SideTrack, view: MonitorView): boolean {
  if (track.monitor === view.monitor) return true;
  return track.host === view.host && isLibvirtMonitor(track.monitor) !== isLibvirtMonitor(view.monitor);
}

function rankDestination(view: MonitorView): number {
  return (view.pending?.hint === 'destination' ? 0 : 1e15) + (view.pending?.start.at ?? 0);
}

/**
 * QEMU sets a final status before it fills in the figures that go with it, so a reply polled in
 * between is not the final one; the next one is:
 * - FAILED is set before the error is stored (migration.c migrate_fd_error): no error-desc yet;
 * - COMPLETED on the source is reported for a few ms with total-time 0 (and downtime 0) before
 *   the totals are computed (seen on QEMU 7.2 here).
 */
function isFinalReply(info: MigrationInfo): boolean {
  if (info.status === 'failed') return info.errorDesc !== undefined;
  if (info.status === 'completed' && info.ram !== undefined) return Boolean(info.totalTimeMs);
  return true;
}
