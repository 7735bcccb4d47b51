import { describe, expect, it } from 'vitest';
import { PingEnricher } from '../../src/enrichers/ping/ping-enricher.js';
import { pingFigures } from '../../src/enrichers/ping/ping-figures.js';
import type { Probe } from '../../src/enrichers/ping/outages.js';
import type { MigrationRecord } from '../../src/records/record.js';
import { fig, recordEnded } from '../helpers/records.js';

const T0 = 1_800_000_000_000;
const PERIOD = 100;
const OPTIONS = { periodMs: PERIOD, beforeMs: 10_000, afterMs: 10_000, blackoutGraceMs: 1_000 };

/** Probes every 100 ms from `from` to `to` (ms after T0), lost where `dark` says. */
function probes(from: number, to: number, dark: (t: number) => boolean): Probe[] {
  const list: Probe[] = [];
  for (let t = from, sequence = 0; t < to; t += PERIOD, sequence++) list.push({ sequence, sentWallMs: T0 + t, rttMs: dark(t) ? null : 0.5 });
  return list;
}

/** A hybrid migration: start at 0, switch (STOP, post-copy) at 3000, RESUME at 3020, end at 4000. */
function hybrid(): MigrationRecord {
  return recordEnded('vm', T0, T0 + 4000, { mode: 'hybrid', postcopyAt: fig(T0 + 3000), stoppedAt: fig(T0 + 3001), resumedAt: fig(T0 + 3020) });
}

describe('pingFigures', () => {
  it('a short blackout at the switch-over, nothing lost in pre-copy (the study with announcements)', () => {
    const f = pingFigures(hybrid(), '10.0.0.5', probes(-10_000, 14_000, (t) => t >= 3000 && t < 3200), OPTIONS);
    expect(f.switchoverBlackout).toMatchObject({ startAt: T0 + 3000, endAt: T0 + 3200, seconds: 0.2, lostProbes: 2, cause: { cause: 'unknown' } });
    expect(f.postcopyOutages).toEqual([]);
    expect(f.postcopyOutageTotalSeconds).toBe(0);
    expect(f.phases.before).toMatchObject({ sent: 100, lost: 0, rttMeanMs: 0.5 });
    expect(f.phases.precopy).toMatchObject({ sent: 30, lost: 0 });
    expect(f.phases.postcopy).toMatchObject({ sent: 10, lost: 2 });
    expect(f.phases.after).toMatchObject({ sent: 100, lost: 0 });
  });

  it('a VM still dark after RESUME + grace: blackout clipped there, the rest is a post-copy outage, even past the end', () => {
    const f = pingFigures(hybrid(), '10.0.0.5', probes(-10_000, 14_000, (t) => t >= 3000 && t < 8000), OPTIONS);
    expect(f.switchoverBlackout?.startAt).toBe(T0 + 3000);
    expect(f.switchoverBlackout?.endAt).toBe(T0 + 4020);
    expect(f.switchoverBlackout?.lostProbes).toBe(11);
    expect(f.postcopyOutages).toMatchObject([{ startAt: T0 + 4020, endAt: T0 + 8000, seconds: 3.98, lostProbes: 39 }]);
    expect(f.postcopyOutageLongestSeconds).toBe(3.98);
    expect(f.phases.after).toMatchObject({ sent: 100, lost: 40 });
  });

  it('an outage that begins during post-copy counts as a post-copy outage', () => {
    const f = pingFigures(hybrid(), 'a', probes(-1000, 6000, (t) => t >= 3500 && t < 3800), OPTIONS);
    expect(f.switchoverBlackout).toBeNull();
    expect(f.postcopyOutages).toMatchObject([{ startAt: T0 + 3500, endAt: T0 + 3800, seconds: 0.3, lostProbes: 3 }]);
  });

  it('names each outage\'s cause from the record\'s frames: announced at RESUME, the blackout is the switch-over; dark on after it, the network was slow', () => {
    const frames = {
      host: 'dst', device: 'tap0', mac: '52:54:00:00:00:05', startedAt: T0, stoppedAt: T0 + 4000,
      announcements: [{ at: T0 + 3070, kind: 'rarp' as const }, { at: T0 + 3170, kind: 'rarp' as const }],
      announcementRounds: 2, firstGuestFrameAt: T0 + 3100, framesSeen: 20, truncated: false, error: null, evidence: 'tcpdump',
    };
    const short = pingFigures({ ...hybrid(), frames }, 'a', probes(-1000, 6000, (t) => t >= 3000 && t < 3200), OPTIONS);
    expect(short.switchoverBlackout?.cause).toMatchObject({ cause: 'switch-over', announcementAfterResumeMs: 50, announcementRounds: 2, firstFrameKind: 'rarp' });
    const long = pingFigures({ ...hybrid(), frames }, 'a', probes(-1000, 9000, (t) => t >= 3000 && t < 7000), OPTIONS);
    expect(long.switchoverBlackout?.cause?.cause).toBe('announced-network-slow');
    expect(long.postcopyOutages.map((o) => o.cause?.cause)).toEqual(['announced-network-slow']);
    const silent = pingFigures({ ...hybrid(), frames: { ...frames, announcements: [], firstGuestFrameAt: T0 + 6950 } }, 'a', probes(-1000, 9000, (t) => t >= 3000 && t < 7000), OPTIONS);
    expect(silent.postcopyOutages.map((o) => o.cause?.cause)).toEqual(['not-announced']);
  });

  it('a pre-copy migration: the blackout is at its stop, there is no post-copy phase', () => {
    const record = recordEnded('vm', T0, T0 + 4000, { stoppedAt: fig(T0 + 3950), resumedAt: fig(T0 + 3990) });
    const f = pingFigures(record, 'a', probes(-1000, 6000, (t) => t === 3900), OPTIONS);
    expect(f.switchoverBlackout).toMatchObject({ startAt: T0 + 3900, endAt: T0 + 4000, lostProbes: 1 });
    expect(f.phases.postcopy).toBeNull();
    expect(f.postcopyOutages).toEqual([]);
  });

  it('an outage still under way is measured to the last probe', () => {
    const f = pingFigures(hybrid(), 'a', probes(0, 9000, (t) => t >= 3000), OPTIONS);
    expect(f.postcopyOutages[0]).toMatchObject({ startAt: T0 + 4020, endAt: null });
    expect(f.postcopyOutages[0]?.seconds).toBeCloseTo((9000 - 4020) / 1000, 5);
  });
});

describe('PingEnricher', () => {
  it('adds the ping figures once the after window has settled, and keeps idle history bounded', () => {
    let now = T0 - 20_000;
    const out: MigrationRecord[] = [];
    const closed = new Map<string, MigrationRecord>();
    const attribution = new PingEnricher({ ...OPTIONS, clock: { wallMs: () => now, monoMs: () => now }, settleMs: 1500, targetOf: (vm) => (vm === 'vm' ? '10.0.0.5' : null), patch: (id, section) => out.push({ ...closed.get(id)!, ...section }) });
    const feed = (from: number, to: number, dark: (t: number) => boolean) => {
      for (const p of probes(from, to, dark)) {
        now = p.sentWallMs;
        attribution.probe({ kind: 'ping', target: '10.0.0.5', vm: 'vm', sequence: p.sequence + (from + 20_000) / PERIOD, sentWallMs: p.sentWallMs, rttMs: p.rttMs, wallMs: now, monoMs: now });
      }
    };
    feed(-20_000, 0, () => false);
    // Idle: no more than the before window (plus what settles) is held, in batches.
    expect(attribution.held('vm')).toBeLessThanOrEqual(2 * (OPTIONS.beforeMs + 1500) / PERIOD + 256);
    attribution.started('vm');
    feed(0, 4000, (t) => t >= 3000 && t < 3200);
    for (const record of [hybrid(), recordEnded('other', T0, T0 + 4000)]) {
      closed.set(record.id, record);
      attribution.closed(record);
    }
    feed(4000, 15_400, () => false);
    attribution.tick();
    expect(out).toEqual([]);
    now = T0 + 4000 + 10_000 + 1500;
    attribution.tick();
    expect(out).toHaveLength(1);
    expect(out[0]?.ping?.switchoverBlackout?.lostProbes).toBe(2);
    expect(out[0]?.ping?.phases.before.sent).toBe(100);
  });
});
