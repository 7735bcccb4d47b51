/**
 * Why a VM was unreachable, per outage: from its probes, what the destination's frame capture
 * saw from the VM's MAC after RESUME, and the destination's postcopy-blocktime. Pure.
 *
 * The rules, in order (docs/outage-causes.md):
 * 1. not-announced: nothing from the MAC on the destination's device between RESUME and the
 *    outage's end; or no announcement, and the outage ended as soon as the guest spoke.
 * 2. announced-network-slow: a frame came at T, and the outage ran on for more than the
 *    tolerance after T (or after its own start, when T came before it), while the probes did
 *    not reach the VM on the destination's device for good (convergedAt) until more than the
 *    tolerance after T.
 * 3. guest-stalled: the probes answered after the outage came late (median RTT at least
 *    STALL_RTT_RISE times the pre-copy mean, and at least STALL_MIN_RTT_MS: a guest under TCG
 *    jitters by tens of ms) and, where the destination reports postcopy-blocktime, its vCPUs
 *    were blocked on post-copy page faults for at least half the outage; without a blocktime
 *    figure, a rise of STALL_RTT_RISE_ALONE times is taken alone, and the reason says so.
 * 4. switch-over (blackouts only): it ended within the tolerance of the first frame, or of
 *    the probes reaching the VM.
 * 5. unknown otherwise: the probes reached the VM and it did not answer, yet not late enough
 *    to call it stalled; or no capture ran and the guest was not stalled.
 * Records of captures that did not see frames to the VM (no `deliveries`) skip the delivery
 * test in 2.
 *
 * The tolerance is two probe periods plus CONVERGE_SLACK_MS: a probe may be sent just before
 * the frame that fixes the path, the next answered one is up to a period later, and the LAN
 * needs a moment to learn.
 */
import { announcementRounds } from '../../sources/frames/rounds.js';
import { RESUME_SLACK_MS } from '../../sources/frames/types.js';
import type { FrameFigures, FrameKind, OutageCause, OutageCauseFigures, OutageFigure } from '../../records/record.js';

export const CONVERGE_SLACK_MS = 200;
export const STALL_BLOCKTIME_SHARE = 0.5;
export const STALL_RTT_RISE = 3;
export const STALL_RTT_RISE_ALONE = 5;
export const STALL_MIN_RTT_MS = 50;

export interface OutageCauseInput {
  outage: OutageFigure;
  /** The switch-over blackout (the one outage that may be `switch-over`). */
  blackout: boolean;
  resumedAt: number | null;
  periodMs: number;
  /** The destination's capture; null: none ran for this migration. */
  frames: FrameFigures | null;
  postcopyBlocktimeMs: number | null;
  rttRise: number | null;
  /** Median RTT (ms) of the probes answered after the outage (rttNear). */
  rttNearMs: number | null;
  /** Pages the destination asked the source for in post-copy (ram.postcopy-requests): its page faults. */
  postcopyRequests?: number | null;
}

export function toleranceMs(periodMs: number): number {
  return 2 * periodMs + CONVERGE_SLACK_MS;
}

interface FirstFrame {
  at: number;
  kind: FrameKind;
}

export function outageCause(input: OutageCauseInput): OutageCauseFigures {
  const { outage, frames, resumedAt, periodMs } = input;
  const endAt = outage.endAt ?? outage.startAt + outage.seconds * 1000;
  const tolerance = toleranceMs(periodMs);
  const from = resumedAt === null ? -Infinity : resumedAt - RESUME_SLACK_MS;
  const announced = (frames?.announcements ?? []).filter((a) => a.at >= from);
  const announcements = announced.map((a) => a.at);
  const firstAnnouncement = announcements[0] ?? null;
  const guestAt = frames?.firstGuestFrameAt ?? null;
  const first = firstFrame(announced[0] ?? null, guestAt !== null && guestAt >= from ? guestAt : null);
  const seenBeforeEnd = first !== null && first.at <= endAt;
  const afterFirstMs = seenBeforeEnd ? Math.max(0, endAt - Math.max(first.at, outage.startAt)) : null;
  const stall = stalled(input);
  const common = {
    announcementAfterResumeMs: firstAnnouncement !== null && resumedAt !== null ? Math.round(firstAnnouncement - resumedAt) : null,
    announcementRounds: announcementRounds(announcements.filter((at) => at <= endAt)),
    firstFrameAt: seenBeforeEnd ? first.at : null,
    firstFrameKind: seenBeforeEnd ? first.kind : null,
    secondsAfterFirstFrame: afterFirstMs === null ? null : afterFirstMs / 1000,
    postcopyBlocktimeMs: input.postcopyBlocktimeMs,
    rttRise: input.rttRise,
    evidence: evidenceOf(input),
  };
  const decide = (cause: OutageCause, reason: string): OutageCauseFigures => ({ cause, reason, ...common });
  const length = `${(endAt - outage.startAt) / 1000} s`;

  if (!frames || frames.error !== null) {
    const why = frames ? `the frame capture on ${frames.host} failed (${frames.error})` : 'no frame capture ran on the destination';
    if (stall.stalled) return decide('guest-stalled', `${stall.reason}; ${why}, so announcements are not known`);
    return decide('unknown', `${why}, so announcements cannot be judged; not guest-stalled: ${stall.reason}`);
  }
  const device = `${frames.device} on ${frames.host}`;
  if (!seenBeforeEnd) {
    return decide('not-announced', `nothing from ${frames.mac} on ${device} between RESUME and the outage's end (${length} outage): the network kept sending to the old location`);
  }
  const announcedBeforeEnd = firstAnnouncement !== null && firstAnnouncement <= endAt;
  if (!announcedBeforeEnd && afterFirstMs !== null && afterFirstMs <= tolerance) {
    return decide('not-announced', `no announcement on ${device}; the outage ended ${afterFirstMs} ms after the guest's own first frame (within ${tolerance} ms): only the guest's speaking fixed the path`);
  }
  const what = first.kind === 'guest' ? "the guest's first frame" : `the first announcement (${first.kind})`;
  const sinceResume = (at: number): string => `RESUME+${Math.round(at - (resumedAt ?? first.at))} ms`;
  const withinTolerance = afterFirstMs !== null && afterFirstMs <= tolerance;
  // From when the path could have converged: the first frame, or the outage's start if later.
  const convergeFrom = Math.max(first.at, outage.startAt);
  const deliveryKnown = frames.deliveries !== undefined;
  const converged = deliveryKnown ? convergedAt(frames.deliveries ?? [], convergeFrom, endAt, frames.stoppedAt, tolerance) : null;
  const pathLate = deliveryKnown && (converged === null || converged - convergeFrom > tolerance);
  if (!withinTolerance && pathLate) {
    const stoppedFirst = frames.stoppedAt !== null && frames.stoppedAt < endAt;
    const before = stoppedFirst ? `up to the capture's stop at the record's close (${sinceResume(frames.stoppedAt as number)})` : "up to the outage's end";
    const reached = converged === null ? `probes did not reach the VM on ${device} ${before}` : `probes reached the VM on ${device} only from ${sinceResume(converged)}`;
    return decide(
      'announced-network-slow',
      `${what} on ${device} came at ${sinceResume(first.at)}, yet the outage ran on ${((afterFirstMs ?? 0) / 1000).toFixed(3)} s after it (tolerance ${tolerance} ms) and ${reached}: the network did not converge`,
    );
  }
  if (stall.stalled) return decide('guest-stalled', `${stall.reason}; frames were seen ${Math.round(first.at - (resumedAt ?? first.at))} ms after RESUME`);
  const afterDeliveryMs = converged === null ? null : Math.max(0, endAt - Math.max(converged, outage.startAt));
  if (input.blackout && withinTolerance) return decide('switch-over', `it ended ${afterFirstMs} ms after ${what} on ${device} (within ${tolerance} ms): the pause of the switch-over itself`);
  if (input.blackout && afterDeliveryMs !== null && afterDeliveryMs <= tolerance) {
    return decide('switch-over', `it ended ${afterDeliveryMs} ms after probes reached the VM on ${device} (from ${sinceResume(converged as number)}, within ${tolerance} ms of ${what}): the pause of the switch-over itself`);
  }
  if (withinTolerance) {
    return decide('unknown', `it ended ${afterFirstMs} ms after ${what} on ${device} (within ${tolerance} ms), so the network did converge; not guest-stalled: ${stall.reason}`);
  }
  if (converged !== null) {
    return decide(
      'unknown',
      `probes reached the VM on ${device} from ${sinceResume(converged)}, yet it did not answer for ${((afterDeliveryMs ?? 0) / 1000).toFixed(3)} s: the network converged and the guest was silent; not guest-stalled: ${stall.reason}${
        input.postcopyRequests != null ? `, the destination asked for ${input.postcopyRequests} pages in all its post-copy` : ''
      }`,
    );
  }
  return decide(
    'announced-network-slow',
    `${what} on ${device} came at ${sinceResume(first.at)}, yet the outage ran on ${((afterFirstMs ?? 0) / 1000).toFixed(3)} s after it (tolerance ${tolerance} ms): the network did not converge (this capture did not watch frames to the VM); not guest-stalled: ${stall.reason}`,
  );
}

/**
 * When the path to the destination converged for good, as far as the outage goes: the first span
 * of frames to the VM from `from` on that lasted at least `minMs`, or lasted up to the outage's
 * end (or the capture's stop, when earlier) within `minMs`. A stray probe that got through as the
 * LAN lost the VM does not count; a span that ended while the guest stayed silent does (the LAN
 * host stops sending when its ARP entry for the VM fails). null: no such span.
 */
export function convergedAt(deliveries: readonly { from: number; to: number }[], from: number, endAt: number, stoppedAt: number | null, minMs: number): number | null {
  const horizon = Math.min(endAt, stoppedAt ?? Infinity);
  for (const d of deliveries) {
    if (d.to < from || d.from > horizon) continue;
    const start = Math.max(d.from, from);
    if (Math.min(d.to, horizon) - start >= minMs || horizon - d.to <= minMs) return start;
  }
  return null;
}

function firstFrame(announcement: { at: number; kind: 'rarp' | 'garp' } | null, guestAt: number | null): FirstFrame | null {
  if (announcement && (guestAt === null || announcement.at <= guestAt)) return announcement;
  return guestAt === null ? null : { at: guestAt, kind: 'guest' };
}

function stalled(input: OutageCauseInput): { stalled: boolean; reason: string } {
  const { outage, postcopyBlocktimeMs: blocktime, rttRise, rttNearMs } = input;
  const outageMs = outage.seconds * 1000;
  const rise = rttRise === null || rttNearMs === null ? 'no RTTs around the outage' : `RTT after it ${rttNearMs.toFixed(1)} ms (median), ${rttRise.toFixed(1)} times the pre-copy mean`;
  const late = rttNearMs !== null && rttNearMs >= STALL_MIN_RTT_MS;
  if (blocktime === null) {
    if (rttRise !== null && rttRise >= STALL_RTT_RISE_ALONE && late) return { stalled: true, reason: `${rise} (at least ${STALL_RTT_RISE_ALONE}; no postcopy-blocktime reported)` };
    return { stalled: false, reason: `no postcopy-blocktime reported, ${rise}` };
  }
  const share = outageMs > 0 ? blocktime / outageMs : 0;
  const blocked = share >= STALL_BLOCKTIME_SHARE;
  const rose = rttRise !== null && rttRise >= STALL_RTT_RISE && late;
  const reason = `postcopy-blocktime ${blocktime} ms (${(share * 100).toFixed(0)} % of the outage), ${rise}`;
  return { stalled: blocked && rose, reason };
}

function evidenceOf(input: OutageCauseInput): string {
  const parts = [`ping every ${input.periodMs} ms`];
  if (input.frames) parts.push(`tcpdump on ${input.frames.host} ${input.frames.device} for ${input.frames.mac}`);
  if (input.postcopyBlocktimeMs !== null) parts.push('qmp:destination query-migrate postcopy-blocktime');
  return parts.join('; ');
}

/**
 * Median RTT (ms) of the probes answered within `windowMs` after the outage's end, or before its
 * start when none came after; null when there are none. After, not before: a blackout is always
 * preceded by pre-copy's quick answers. The median, not the mean: a clean post-copy's two or three
 * slow answers do not make a second of quick ones slow.
 */
export function rttNear(probes: readonly { sentWallMs: number; rttMs: number | null }[], outage: OutageFigure, windowMs: number): number | null {
  const endAt = outage.endAt ?? Infinity;
  const answered = (from: number, to: number) => probes.filter((p) => p.rttMs !== null && p.sentWallMs >= from && p.sentWallMs < to).map((p) => p.rttMs as number);
  const after = answered(endAt, endAt + windowMs);
  const near = after.length > 0 ? after : answered(outage.startAt - windowMs, outage.startAt);
  if (near.length === 0) return null;
  const sorted = [...near].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * The provisional cause of an outage under way, from the frames seen so far (the alert's
 * description): nothing yet after RESUME, frames and still dark past the tolerance, or too soon to say.
 */
export function provisionalCause(outageStartMs: number, nowMs: number, resumedAt: number | null, firstFrameAt: number | null, periodMs: number, capturing: boolean): OutageCause {
  if (!capturing) return 'unknown';
  const from = resumedAt === null ? -Infinity : resumedAt - RESUME_SLACK_MS;
  if (firstFrameAt === null || firstFrameAt < from) return 'not-announced';
  return nowMs - Math.max(firstFrameAt, outageStartMs) > toleranceMs(periodMs) ? 'announced-network-slow' : 'unknown';
}
