/**
 * When a migration ends and how, from what its two sides have said so far. Pure.
 *
 * - The source's terminal status decides. Seen in a poll, it closes the migration at once (the
 *   reply carries the final figures); seen in an event, the migration waits up to finalReplyMs
 *   for that reply (the QMP source polls right after each MIGRATION event). A source that
 *   completed waits up to DESTINATION_GRACE_MS more for a watched destination to say so too, so
 *   the record carries the destination's side (its RESUME, its statuses) as well.
 * - The destination's 'completed' is as good as the source's: it waits finalReplyMs for the
 *   source's reply, then closes from the destination. Its 'failed' waits undecidedMs for the
 *   source's word, which is authoritative.
 * - The source's monitor going away (QEMU exited: normal after migrating) closes from the
 *   destination's status; while post-copy is paused it closes as postcopy-paused (the guest
 *   cannot be recovered). If nothing tells, it waits undecidedMs, then closes as failed. A
 *   destination's 'completed' still waits finalReplyMs for the source's reply: a monitor that
 *   went away with its SSH connection looks the same as a QEMU that exited, and comes back.
 * - Post-copy paused is a phase: a migration that recovers goes on, and its record keeps the
 *   pause in its statuses. It is a result only when the migration ends paused: the source goes
 *   away while paused, or it stays paused for pausedMs.
 */
import type { Side } from './classify.js';
import { evidence } from './marks.js';
import type { Closing } from './build-record.js';
import type { DeadlineKind, OpenMigration, Outcome } from '../records/tracker-snapshot.js';
import type { MigrationResult } from '../qemu/status.js';

export interface OutcomeTimeouts {
  finalReplyMs: number;
  undecidedMs: number;
  pausedMs: number;
}

/** Events of two monitors arrive in no fixed order; the destination's follow within milliseconds. */
export const DESTINATION_GRACE_MS = 2_000;

export type Decision = { kind: 'close'; closing: Closing } | { kind: 'wait'; deadline: { kind: DeadlineKind; at: number } | null };

export function decide(m: OpenMigration, now: number, timeouts: OutcomeTimeouts): Decision {
  const close = (closing: Closing): Decision => ({ kind: 'close', closing });
  const wait = (kind: DeadlineKind, at: number): Decision => ({ kind: 'wait', deadline: { kind, at } });

  if (m.outcome) {
    // A source that went away sends no final reply, but its destination may still speak.
    if (!m.finalReply && !m.source.gone) return wait('final-reply', now + timeouts.finalReplyMs);
    // The destination's own events can reach us after its poll replies (QEMU emits them from the
    // incoming migration's thread), so its RESUME is awaited too, not only its 'completed'.
    const destinationEvents = m.marks.some((mark) => mark.side === 'destination' && mark.via === 'event');
    const awaitingResume = destinationEvents && m.resumedVia !== 'event';
    const destinationPending =
      m.outcome.result === 'completed' && m.destination !== null && !m.destination.gone && (!m.destinationOutcome || awaitingResume);
    if (destinationPending) return wait('final-reply', Math.min(m.outcome.at, now) + DESTINATION_GRACE_MS);
    return close(fromOutcome(m.outcome, 'source'));
  }
  const dst = m.destinationOutcome;
  const gone = m.source.gone;
  if (gone) {
    const end = { at: gone.at, mono: gone.mono, endEvidence: `exporter: source monitor went away (${gone.reason})` };
    if (m.source.status === 'postcopy-paused') {
      return close(
        closing('postcopy-paused', {
          ...end,
          resultEvidence: 'qmp:source postcopy-paused when its monitor went away',
          errorDesc: 'the source QEMU went away while post-copy was paused: the guest cannot be recovered',
        }),
      );
    }
    // The source completed too, and its monitor may be back with the final figures (it dropped
    // with its SSH connection, the QEMU ran on): awaited as from a source still there.
    if (dst?.result === 'completed') return wait('final-reply', now + timeouts.finalReplyMs);
    if (dst) return close(fromOutcome(dst, 'destination'));
    if (m.destination?.status === 'postcopy-paused') {
      return close(
        closing('postcopy-paused', {
          ...end,
          resultEvidence: 'qmp:destination postcopy-paused after the source went away',
          errorDesc: 'the source QEMU went away during post-copy; the destination is paused',
        }),
      );
    }
    return wait('undecided', gone.at + timeouts.undecidedMs);
  }
  if (dst?.result === 'completed') return wait('final-reply', now + timeouts.finalReplyMs);
  if (dst) return wait('undecided', now + timeouts.undecidedMs);
  if (m.pausedSince !== null) return wait('paused', m.pausedSince + timeouts.pausedMs);
  return { kind: 'wait', deadline: null };
}

/** How a migration closes when its deadline passes; null when nothing is left to wait for. */
export function closingAtDeadline(m: OpenMigration, kind: DeadlineKind, now: number, timeouts: OutcomeTimeouts): Closing | null {
  const end = { at: now, mono: null };
  switch (kind) {
    case 'final-reply':
      if (m.outcome) return fromOutcome(m.outcome, 'source');
      if (m.destinationOutcome) return fromOutcome(m.destinationOutcome, 'destination');
      return null;
    case 'undecided': {
      if (m.destinationOutcome) return fromOutcome(m.destinationOutcome, 'destination');
      const seconds = Math.round(timeouts.undecidedMs / 1000);
      const errorDesc = m.source.gone
        ? `the source monitor went away (${m.source.gone.reason}) before a final status, and the destination reported no outcome within ${seconds} s`
        : `no outcome reported within ${seconds} s`;
      return closing('failed', { ...end, resultEvidence: 'exporter: undecided timeout', endEvidence: 'exporter: closed by the undecided timeout', errorDesc });
    }
    case 'paused': {
      const errorDesc = `still postcopy-paused after ${Math.round(timeouts.pausedMs / 1000)} s without recovering`;
      return closing('postcopy-paused', { ...end, resultEvidence: 'exporter: paused timeout', endEvidence: 'exporter: closed by the paused timeout', errorDesc });
    }
  }
}

/** Ends a migration because another migration of the VM began from `host` (the monitor of `r`). */
export function supersededClosing(m: OpenMigration, host: string, fromDestination: boolean, at: number, mono: number | null): Closing {
  if (m.outcome) return fromOutcome(m.outcome, 'source');
  if (m.destinationOutcome) return fromOutcome(m.destinationOutcome, 'destination');
  const end = { at, mono, endEvidence: `exporter: a new migration started from ${host}` };
  if (fromDestination) {
    return closing('completed', { ...end, resultEvidence: 'qmp:destination became the source of a new migration (the guest ran there)', errorDesc: null });
  }
  return closing('failed', {
    ...end,
    resultEvidence: `qmp:${host} started a new migration`,
    errorDesc: `superseded: a new migration of the VM started from ${host} before this one reported an outcome`,
  });
}

/** A terminal status replaces nothing; an event's time stamp replaces a poll's for the same status. */
export function betterOutcome(current: Outcome | null, candidate: Outcome): Outcome {
  if (current === null) return candidate;
  if (current.via === 'poll' && candidate.via === 'event' && current.status === candidate.status) {
    return { ...current, at: candidate.at, via: 'event' };
  }
  return current;
}

function fromOutcome(o: Outcome, side: Side): Closing {
  const what = o.what ?? (o.via === 'event' ? `event MIGRATION ${o.status}` : `query-migrate status ${o.status}`);
  const pollTime = o.via === 'poll' && !o.what ? ' (poll time)' : '';
  return {
    result: o.result,
    resultEvidence: evidence(o.origin, side, what),
    endedAt: { value: o.at, evidence: evidence(o.origin, side, `${what}${pollTime}`) },
    endMono: o.mono,
    errorDesc: null,
  };
}

/** A close the tracker decided itself, not a terminal status of QEMU's. */
function closing(
  result: MigrationResult,
  how: { at: number; mono: number | null; resultEvidence: string; endEvidence: string; errorDesc: string | null },
): Closing {
  return { result, resultEvidence: how.resultEvidence, endedAt: { value: how.at, evidence: how.endEvidence }, endMono: how.mono, errorDesc: how.errorDesc };
}
