/**
 * What a VM's pings saw during one migration, from its probes and the record's phase times. Pure.
 *
 * - Switch-over blackout: the outage under way when the source stopped the guest (STOP), or at
 *   the switch to post-copy, or at the end of a pre-copy migration. It is clipped at the
 *   destination's RESUME plus `blackoutGraceMs`: a VM that is still dark after that is not in its
 *   switch-over any more, it is lost to the network (stale forwarding tables: the study's
 *   post-copy outage), and the rest of that outage counts as a post-copy outage.
 * - Post-copy outages: outages that begin during post-copy, measured to their end even past the
 *   end of the migration (they began because of it).
 * - Phases: probes sent before (`beforeMs` ahead of the start), during pre-copy, during
 *   post-copy, and after (`afterMs` from the end).
 */
import { findOutages, outageAt, statsByWindow, type Outage, type Probe, type WindowStats } from './outages.js';
import { outageCause, rttNear } from './outage-causes.js';
import type { MigrationRecord, OutageFigure, PhaseProbeStats, PingFigures } from '../../records/record.js';

const RTT_RISE_WINDOW_MS = 1000;

export interface PingFigureOptions {
  periodMs: number;
  beforeMs: number;
  afterMs: number;
  blackoutGraceMs: number;
}

export function pingFigures(record: MigrationRecord, target: string, probes: readonly Probe[], options: PingFigureOptions): PingFigures {
  const start = record.startedAt.value;
  const end = record.endedAt?.value ?? start;
  const postcopyAt = record.postcopyAt?.value ?? null;
  const switchAt = record.stoppedAt?.value ?? postcopyAt ?? end;
  const clipAt = Math.max(record.resumedAt?.value ?? switchAt, switchAt) + options.blackoutGraceMs;
  const lastSent = probes.at(-1)?.sentWallMs ?? end;
  const lostBetween = (from: number, to: number) => probes.filter((p) => p.rttMs === null && p.sentWallMs >= from && p.sentWallMs < to).length;
  const figure = (startAt: number, endAt: number | null, lostProbes: number): OutageFigure => ({
    startAt,
    endAt,
    seconds: ((endAt ?? lastSent + options.periodMs) - startAt) / 1000,
    lostProbes,
  });

  const outages = findOutages(probes);
  const spanning = outageAt(outages, switchAt);
  let blackout: OutageFigure | null = null;
  const postcopyOutages: OutageFigure[] = [];
  if (spanning) {
    const spanEnd = spanning.endMs;
    if (spanEnd !== null && spanEnd <= clipAt) {
      blackout = figure(spanning.startMs, spanEnd, spanning.lost);
    } else {
      const blackoutEnd = Math.max(clipAt, spanning.startMs);
      blackout = figure(spanning.startMs, blackoutEnd, lostBetween(spanning.startMs, blackoutEnd));
      if (postcopyAt !== null) postcopyOutages.push(figure(blackoutEnd, spanEnd, lostBetween(blackoutEnd, spanEnd ?? Infinity)));
    }
  }
  if (postcopyAt !== null) {
    for (const o of outages) {
      if (o !== spanning && o.startMs >= postcopyAt && o.startMs < end) postcopyOutages.push(toFigure(o, figure));
    }
  }

  const windows = [
    { startMs: start - options.beforeMs, endMs: start },
    { startMs: start, endMs: postcopyAt ?? end },
    { startMs: postcopyAt ?? end, endMs: end },
    { startMs: end, endMs: end + options.afterMs },
  ];
  const [before, precopy, postcopy, after] = statsByWindow(probes, windows).map(phaseStats) as [PhaseProbeStats, PhaseProbeStats, PhaseProbeStats, PhaseProbeStats];
  // Probes answered in the second after an outage (else before it), against the pre-copy RTT (the guest before any page fault).
  const baseline = precopy.rttMeanMs ?? before.rttMeanMs;
  const caused = (o: OutageFigure, isBlackout: boolean): OutageFigure => {
    const near = rttNear(probes, o, RTT_RISE_WINDOW_MS);
    return { ...o, cause: outageCause({
      outage: o,
      blackout: isBlackout,
      resumedAt: record.resumedAt?.value ?? null,
      periodMs: options.periodMs,
      frames: record.frames ?? null,
      postcopyBlocktimeMs: record.qemu.postcopyBlocktimeMs?.value ?? null,
      rttRise: near !== null && baseline ? near / baseline : null,
      rttNearMs: near,
      postcopyRequests: record.qemu.postcopyRequests?.value ?? null,
    }) };
  };
  const namedOutages = postcopyOutages.map((o) => caused(o, false));
  const seconds = namedOutages.map((o) => o.seconds);
  return {
    target,
    periodMs: options.periodMs,
    switchoverBlackout: blackout && caused(blackout, true),
    postcopyOutages: namedOutages,
    postcopyOutageLongestSeconds: seconds.length ? Math.max(...seconds) : 0,
    postcopyOutageTotalSeconds: seconds.reduce((a, b) => a + b, 0),
    phases: { before, precopy, postcopy: postcopyAt === null ? null : postcopy, after },
    evidence: `ping ${target} every ${options.periodMs} ms (fping); outages from probe send times, known to one period`,
  };
}

function toFigure(o: Outage, figure: (s: number, e: number | null, lost: number) => OutageFigure): OutageFigure {
  return figure(o.startMs, o.endMs, o.lost);
}

function phaseStats(w: WindowStats): PhaseProbeStats {
  return { sent: w.sent, lost: w.lost, rttMeanMs: w.rtt?.meanMs ?? null, rttP99Ms: w.rtt?.p99Ms ?? null, rttMaxMs: w.rtt?.maxMs ?? null };
}
