import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { outageCause, provisionalCause, rttNear, toleranceMs, type OutageCauseInput } from '../../src/enrichers/ping/outage-causes.js';
import { OUTAGE_CAUSES, type FrameFigures, type OutageFigure } from '../../src/records/record.js';
import { announcementRounds } from '../../src/sources/frames/rounds.js';

const RESUME = 1_000_000;
const PERIOD = 100;

function frames(over: Partial<FrameFigures> = {}): FrameFigures {
  return {
    host: 'dst',
    device: 'tap0',
    mac: '52:54:00:00:00:10',
    startedAt: RESUME - 5000,
    stoppedAt: RESUME + 20_000,
    announcements: [],
    announcementRounds: 0,
    firstGuestFrameAt: null,
    framesSeen: 0,
    truncated: false,
    error: null,
    evidence: 'tcpdump',
    ...over,
  };
}

function outage(startAt: number, endAt: number | null, seconds = endAt === null ? 1 : (endAt - startAt) / 1000): OutageFigure {
  return { startAt, endAt, seconds, lostProbes: Math.round(seconds * 10) };
}

function input(over: Partial<OutageCauseInput>): OutageCauseInput {
  return { outage: outage(RESUME + 1000, RESUME + 4000), blackout: false, resumedAt: RESUME, periodMs: PERIOD, frames: frames(), postcopyBlocktimeMs: 10, rttRise: 1, rttNearMs: 2, ...over };
}

/** QEMU's five rounds (50 ms, then 100 ms more each time), each a RARP and the guest's GARP. */
const QEMU_ROUNDS = [50, 150, 350, 650, 1050].flatMap((d) => [
  { at: RESUME + d, kind: 'rarp' as const },
  { at: RESUME + d + 3, kind: 'garp' as const },
]);

describe('outage causes', () => {
  it('not-announced: nothing from the MAC between RESUME and the end', () => {
    const c = outageCause(input({ frames: frames({ firstGuestFrameAt: RESUME + 9000 }) }));
    expect(c.cause).toBe('not-announced');
    expect(c).toMatchObject({ firstFrameAt: null, announcementRounds: 0, announcementAfterResumeMs: null, secondsAfterFirstFrame: null });
    expect(c.reason).toMatch(/nothing from 52:54:00:00:00:10 on tap0 on dst/);
  });

  it('not-announced: no announcement, and it ended as the guest spoke', () => {
    const c = outageCause(input({ frames: frames({ firstGuestFrameAt: RESUME + 3900 }) }));
    expect(c.cause).toBe('not-announced');
    expect(c.firstFrameKind).toBe('guest');
    expect(c.secondsAfterFirstFrame).toBeCloseTo(0.1);
  });

  it('announced-network-slow: QEMU announced at RESUME, the outage ran on seconds after', () => {
    const c = outageCause(input({ frames: frames({ announcements: QEMU_ROUNDS, firstGuestFrameAt: RESUME + 60 }) }));
    expect(c.cause).toBe('announced-network-slow');
    expect(c).toMatchObject({ announcementAfterResumeMs: 50, announcementRounds: 5, firstFrameKind: 'rarp', secondsAfterFirstFrame: 3 });
  });

  it('names the first announcement by its own kind: a gratuitous ARP before any RARP', () => {
    const c = outageCause(input({ frames: frames({ announcements: [{ at: RESUME + 20, kind: 'garp' }, ...QEMU_ROUNDS] }) }));
    expect(c).toMatchObject({ cause: 'announced-network-slow', firstFrameKind: 'garp', announcementAfterResumeMs: 20 });
  });

  it('a guest frame that came well before the end counts as heard too: network-slow', () => {
    const c = outageCause(input({ frames: frames({ firstGuestFrameAt: RESUME + 1500 }) }));
    expect(c.cause).toBe('announced-network-slow');
    expect(c.secondsAfterFirstFrame).toBeCloseTo(2.5);
  });

  it('guest-stalled: blocked on page faults for most of it, and the answers came late', () => {
    const c = outageCause(input({ frames: frames({ announcements: QEMU_ROUNDS }), postcopyBlocktimeMs: 2500, rttRise: 60, rttNearMs: 120 }));
    expect(c.cause).toBe('guest-stalled');
    expect(c.reason).toMatch(/postcopy-blocktime 2500 ms \(83 % of the outage\)/);
  });

  it('not guest-stalled on blocktime alone, nor on a small RTT rise', () => {
    expect(outageCause(input({ frames: frames({ announcements: QEMU_ROUNDS }), postcopyBlocktimeMs: 2500, rttRise: 1.2 })).cause).toBe('announced-network-slow');
    expect(outageCause(input({ frames: frames({ announcements: QEMU_ROUNDS }), postcopyBlocktimeMs: 100, rttRise: 60, rttNearMs: 120 })).cause).toBe('announced-network-slow');
    // TCG's jitter: 12 times a 2.5 ms pre-copy mean is still a prompt answer.
    expect(outageCause(input({ frames: frames({ announcements: QEMU_ROUNDS }), postcopyBlocktimeMs: 2500, rttRise: 12, rttNearMs: 30 })).cause).toBe('announced-network-slow');
  });

  it('guest-stalled on an RTT rise alone when no blocktime is reported, and says so', () => {
    const c = outageCause(input({ frames: null, postcopyBlocktimeMs: null, rttRise: 80, rttNearMs: 160 }));
    expect(c.cause).toBe('guest-stalled');
    expect(c.reason).toMatch(/no postcopy-blocktime reported/);
    expect(c.reason).toMatch(/no frame capture ran/);
  });

  it('switch-over: a blackout that ended as soon as the destination announced', () => {
    const c = outageCause(input({ blackout: true, outage: outage(RESUME - 150, RESUME + 150), frames: frames({ announcements: QEMU_ROUNDS }) }));
    expect(c.cause).toBe('switch-over');
    expect(c.secondsAfterFirstFrame).toBeCloseTo(0.1);
  });

  it('unknown: a short post-copy loss after the network had converged, with the reasons', () => {
    const c = outageCause(input({ outage: outage(RESUME + 3000, RESUME + 3100), frames: frames({ announcements: QEMU_ROUNDS }) }));
    expect(c.cause).toBe('unknown');
    expect(c.reason).toMatch(/the network did converge; not guest-stalled/);
  });

  it('unknown when no capture ran and the guest was not stalled; a failed capture is named', () => {
    expect(outageCause(input({ frames: null })).reason).toMatch(/no frame capture ran on the destination/);
    const failed = outageCause(input({ frames: frames({ error: 'tcpdump: tap0: No such device exists' }) }));
    expect(failed.cause).toBe('unknown');
    expect(failed.reason).toMatch(/frame capture on dst failed \(tcpdump: tap0: No such device exists\)/);
  });

  it('frames from before RESUME (more than the clock slack) do not count', () => {
    const c = outageCause(input({ frames: frames({ announcements: [{ at: RESUME - 500, kind: 'rarp' }] }) }));
    expect(c.cause).toBe('not-announced');
  });

  it('an outage still under way is judged to its length so far', () => {
    const c = outageCause(input({ outage: outage(RESUME + 1000, null, 5), frames: frames({ announcements: QEMU_ROUNDS }) }));
    expect(c.cause).toBe('announced-network-slow');
    expect(c.secondsAfterFirstFrame).toBeCloseTo(5);
  });

  it('always names one of the causes, with a reason, whatever the figures', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -5000, max: 20_000 }),
        fc.integer({ min: 0, max: 20_000 }),
        fc.array(fc.integer({ min: -2000, max: 20_000 }), { maxLength: 12 }),
        fc.option(fc.integer({ min: -2000, max: 20_000 })),
        fc.option(fc.integer({ min: 0, max: 100_000 })),
        fc.option(fc.double({ min: 0, max: 100, noNaN: true })),
        fc.boolean(),
        (start, length, announced, guest, blocktime, rise, blackout) => {
          const c = outageCause({
            outage: outage(RESUME + start, RESUME + start + length),
            blackout,
            resumedAt: RESUME,
            periodMs: PERIOD,
            frames: frames({ announcements: announced.sort((a, b) => a - b).map((d) => ({ at: RESUME + d, kind: 'rarp' })), firstGuestFrameAt: guest === null ? null : RESUME + guest }),
            postcopyBlocktimeMs: blocktime,
            rttRise: rise,
            rttNearMs: rise === null ? null : rise * 3,
          });
          expect(OUTAGE_CAUSES).toContain(c.cause);
          expect(c.reason.length).toBeGreaterThan(10);
          if (!blackout) expect(c.cause).not.toBe('switch-over');
          if (c.secondsAfterFirstFrame !== null) expect(c.secondsAfterFirstFrame).toBeLessThanOrEqual(length / 1000 + 1e-9);
        },
      ),
    );
  });
});

describe('announcement rounds', () => {
  it('counts clusters less than 25 ms apart as one round', () => {
    expect(announcementRounds(QEMU_ROUNDS.map((a) => a.at))).toBe(5);
    expect(announcementRounds([])).toBe(0);
    expect(announcementRounds([0, 24, 48, 100])).toBe(2);
  });
});

describe('RTT around an outage', () => {
  const o = outage(10_000, 12_000);
  it('is the median RTT of the probes answered in the second after it', () => {
    const probes = [
      { sentWallMs: 9_500, rttMs: 1 },
      { sentWallMs: 10_500, rttMs: null },
      { sentWallMs: 12_000, rttMs: 150 },
      { sentWallMs: 12_100, rttMs: 2 },
      { sentWallMs: 12_200, rttMs: 3 },
      { sentWallMs: 13_500, rttMs: 100 },
    ];
    // A clean post-copy's one slow answer does not make the second after it slow.
    expect(rttNear(probes, o, 1000)).toBe(3);
    expect(rttNear(probes.slice(0, 4), o, 1000)).toBe(76);
  });
  it('is the median of the second before it when none answered after', () => {
    expect(rttNear([{ sentWallMs: 9_200, rttMs: 30 }, { sentWallMs: 9_500, rttMs: 50 }, { sentWallMs: 9_900, rttMs: 60 }, { sentWallMs: 10_500, rttMs: null }], o, 1000)).toBe(50);
  });
  it('is null without probes answered around it', () => {
    expect(rttNear([{ sentWallMs: 5_000, rttMs: 30 }, { sentWallMs: 10_500, rttMs: null }], o, 1000)).toBeNull();
  });
});

describe('provisional cause (the alert)', () => {
  it('not-announced until a frame, then network-slow once dark past the tolerance after it', () => {
    expect(provisionalCause(RESUME + 100, RESUME + 5000, RESUME, null, PERIOD, true)).toBe('not-announced');
    expect(provisionalCause(RESUME + 100, RESUME + 200, RESUME, RESUME + 50, PERIOD, true)).toBe('unknown');
    expect(provisionalCause(RESUME + 100, RESUME + 100 + toleranceMs(PERIOD) + 1, RESUME, RESUME + 50, PERIOD, true)).toBe('announced-network-slow');
    expect(provisionalCause(RESUME + 100, RESUME + 5000, RESUME, null, PERIOD, false)).toBe('unknown');
  });
});

describe('outage causes, with the frames that reached the VM on the destination', () => {
  /** Probes reached the VM from `from` until the outage's end (the capture still running); null: none did. */
  const announced = (from: number | null, to = RESUME + 19_000) => frames({ announcements: QEMU_ROUNDS, firstDeliveredAt: from, deliveries: from === null ? [] : [{ from, to }] });
  // The lab's blackhole in the LAN: RARP at RESUME+50, the outage from RESUME to RESUME+2500.
  const blackholed = outage(RESUME, RESUME + 2500);

  it('announced-network-slow when no probe reached the VM there before the outage ended', () => {
    const c = outageCause(input({ outage: blackholed, frames: announced(null) }));
    expect(c.cause).toBe('announced-network-slow');
    expect(c.reason).toMatch(/probes did not reach the VM on tap0 on dst up to the outage's end: the network did not converge/);
  });

  it('says so when the capture stopped (the record closed) before the outage ended', () => {
    const c = outageCause(input({ outage: blackholed, frames: frames({ announcements: QEMU_ROUNDS, firstDeliveredAt: null, deliveries: [], stoppedAt: RESUME + 300 }) }));
    expect(c.cause).toBe('announced-network-slow');
    expect(c.reason).toMatch(/probes did not reach the VM on tap0 on dst up to the capture's stop at the record's close \(RESUME\+300 ms\)/);
  });

  it('a stray probe that got through as the LAN lost the VM does not make the path converged', () => {
    const c = outageCause(input({ outage: blackholed, frames: frames({ announcements: QEMU_ROUNDS, deliveries: [{ from: RESUME + 1, to: RESUME + 1 }, { from: RESUME + 2480, to: RESUME + 9000 }] }) }));
    expect(c.cause).toBe('announced-network-slow');
    expect(c.reason).toMatch(/probes reached the VM on tap0 on dst only from RESUME\+2480 ms/);
  });

  it('probes that reached the VM for seconds count as converged, though the LAN stopped sending when the silent guest left its ARP unanswered', () => {
    const c = outageCause(input({ outage: blackholed, frames: frames({ announcements: QEMU_ROUNDS, deliveries: [{ from: RESUME + 50, to: RESUME + 1800 }], stoppedAt: RESUME + 16_000 }), postcopyBlocktimeMs: null, rttRise: null, rttNearMs: null }));
    expect(c.cause).toBe('unknown');
    expect(c.reason).toMatch(/probes reached the VM on tap0 on dst from RESUME\+50 ms/);
  });

  it('probes that kept reaching the VM up to the capture\'s stop, before the outage ended, count as converged', () => {
    const c = outageCause(input({ outage: blackholed, frames: frames({ announcements: QEMU_ROUNDS, deliveries: [{ from: RESUME + 120, to: RESUME + 280 }], stoppedAt: RESUME + 300 }), postcopyBlocktimeMs: null, rttRise: null, rttNearMs: null }));
    expect(c.cause).toBe('unknown');
    expect(c.reason).toMatch(/probes reached the VM on tap0 on dst from RESUME\+120 ms/);
  });

  it('announced-network-slow when the first probe reached it long after the announcement (the blackhole lifted)', () => {
    const c = outageCause(input({ outage: blackholed, frames: announced(RESUME + 2480) }));
    expect(c.cause).toBe('announced-network-slow');
    expect(c.reason).toMatch(/probes reached the VM on tap0 on dst only from RESUME\+2480 ms/);
  });

  it('the network first even when the answers after the outage were late: a blocked path is not a stalled guest', () => {
    const c = outageCause(input({ outage: blackholed, frames: announced(RESUME + 2480), postcopyBlocktimeMs: null, rttRise: 40, rttNearMs: 80 }));
    expect(c.cause).toBe('announced-network-slow');
  });

  it('unknown when probes reached the VM soon after the announcement and it stayed silent, answering on time around it', () => {
    const c = outageCause(input({ outage: blackholed, frames: announced(RESUME + 120), postcopyBlocktimeMs: null, rttRise: null, rttNearMs: null, postcopyRequests: 12 }));
    expect(c.cause).toBe('unknown');
    expect(c.reason).toMatch(/the destination asked for 12 pages in all its post-copy$/);
    expect(c.reason).toMatch(/probes reached the VM on tap0 on dst from RESUME\+120 ms, yet it did not answer for 2\.380 s: the network converged and the guest was silent; not guest-stalled: no postcopy-blocktime reported, no RTTs around the outage/);
  });

  it('guest-stalled when probes reached the VM and its answers around the outage came late (no blocktime: the rise alone)', () => {
    const c = outageCause(input({ outage: outage(RESUME + 5000, RESUME + 5200), frames: announced(RESUME + 60), postcopyBlocktimeMs: null, rttRise: 50, rttNearMs: 78 }));
    expect(c.cause).toBe('guest-stalled');
    expect(c.reason).toMatch(/RTT after it 78\.0 ms \(median\), 50\.0 times the pre-copy mean \(at least 5; no postcopy-blocktime reported\)/);
  });

  it('not guest-stalled below STALL_MIN_RTT_MS, however large the rise (TCG jitter on a 1 ms baseline)', () => {
    const c = outageCause(input({ outage: outage(RESUME + 5000, RESUME + 5200), frames: announced(RESUME + 60), postcopyBlocktimeMs: null, rttRise: 30, rttNearMs: 30 }));
    expect(c.cause).toBe('unknown');
  });

  it('a blackout followed by a second of late answers is guest-stalled, even one that ended within the tolerance', () => {
    const c = outageCause(input({ outage: outage(RESUME - 100, RESUME + 300), blackout: true, frames: announced(RESUME + 60), postcopyBlocktimeMs: null, rttRise: 60, rttNearMs: 75 }));
    expect(c.cause).toBe('guest-stalled');
  });

  it('a blackout that ended within the tolerance of the probes reaching the VM is the switch-over', () => {
    const c = outageCause(input({ outage: outage(RESUME - 100, RESUME + 460), blackout: true, frames: announced(RESUME + 193), postcopyBlocktimeMs: null, rttRise: 2, rttNearMs: 2 }));
    expect(c.cause).toBe('switch-over');
    expect(c.reason).toMatch(/it ended 267 ms after probes reached the VM on tap0 on dst \(from RESUME\+193 ms, within 400 ms of the first announcement \(rarp\)\): the pause of the switch-over itself/);
  });
});
