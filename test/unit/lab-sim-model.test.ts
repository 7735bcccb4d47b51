import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEVICE_STATE_BYTES, PAYLOAD_RATIO, predictHybrid, SETUP_MS, SimMigration, type SimEvent } from '../../src/lab/sim/model.js';

const MiB = 1024 * 1024;
const GBIT = 125_000_000;
const RATE = GBIT * PAYLOAD_RATIO;

function run(sim: SimMigration, untilMs: number, stepMs = 10): SimEvent[] {
  const events: SimEvent[] = [];
  for (let t = 0; t <= untilMs; t += stepMs) events.push(...sim.advance(t));
  return events;
}

describe('SIMULATED hybrid migration model', () => {
  it('sends allocated memory once and stressed memory again in post-copy, at the link payload rate', () => {
    const guest = { ramBytes: 512 * MiB, allocatedBytes: 160 * MiB, stressedBytes: 128 * MiB };
    const sim = new SimMigration(guest, GBIT);
    const firstPassEndMs = SETUP_MS + (guest.allocatedBytes / RATE) * 1000;
    const early = run(sim, Math.floor(firstPassEndMs) + 5);
    expect(early.filter((e) => e.event === 'MIGRATION_PASS').map((e) => e.data?.pass)).toEqual([1, 2]);
    expect(sim.snapshot(firstPassEndMs + 5).status).toBe('active');
    sim.startPostcopy(firstPassEndMs + 10);
    const end = sim.snapshot(60_000);
    expect(end.status).toBe('completed');
    expect(end.ram['postcopy-bytes']).toBe(guest.stressedBytes);
    expect(end.ram['downtime-bytes']).toBe(DEVICE_STATE_BYTES);
    // Pre-copy: the first pass, plus what pass 2 sent in the 10 ms before the switch.
    expect(end.ram['precopy-bytes']).toBeCloseTo(guest.allocatedBytes + 0.01 * RATE, -4);
    expect(end.ram.transferred).toBe(end.ram['precopy-bytes'] + end.ram['postcopy-bytes'] + end.ram['downtime-bytes']);
    expect(end.totalTimeMs / 1000).toBeCloseTo(end.ram.transferred / RATE + SETUP_MS / 1000, 1);
    expect(sim.mode).toBe('hybrid');
  });

  it('emits the events QEMU 7.2 emits, in its order, on each side', () => {
    const guest = { ramBytes: 256 * MiB, allocatedBytes: 64 * MiB, stressedBytes: 48 * MiB };
    const sim = new SimMigration(guest, GBIT);
    const events = run(sim, 600);
    sim.startPostcopy(601);
    events.push(...run(sim, 3000).filter((e) => e.atMs > 0 || e.event !== 'MIGRATION'));
    const source = events.filter((e) => e.side === 'source').map((e) => (e.event === 'MIGRATION' ? `MIGRATION ${String(e.data?.status)}` : e.event === 'MIGRATION_PASS' ? `PASS ${String(e.data?.pass)}` : e.event));
    const destination = events.filter((e) => e.side === 'destination').map((e) => (e.event === 'MIGRATION' ? `MIGRATION ${String(e.data?.status)}` : e.event));
    expect(source).toEqual(['MIGRATION setup', 'PASS 1', 'MIGRATION active', 'PASS 2', 'MIGRATION postcopy-active', 'STOP', 'PASS 3', 'MIGRATION completed']);
    expect(destination).toEqual(['MIGRATION active', 'MIGRATION postcopy-active', 'RESUME', 'MIGRATION completed']);
  });

  it('finishes in pre-copy when what is dirty after the first pass fits in the downtime limit', () => {
    const sim = new SimMigration({ ramBytes: 256 * MiB, allocatedBytes: 50 * MiB, stressedBytes: 0 }, GBIT);
    const events = run(sim, 2000);
    expect(events.some((e) => e.event === 'MIGRATION' && e.data?.status === 'postcopy-active')).toBe(false);
    const end = sim.snapshot(2000);
    expect(end.status).toBe('completed');
    expect(sim.mode).toBe('precopy');
    expect(end.ram.transferred).toBe(50 * MiB);
    expect(end.downtimeMs).not.toBeNull();
  });

  it('obeys transferred = allocated + stressed (+ device state) for any guest that does not converge', () => {
    fc.assert(
      fc.property(fc.integer({ min: 40, max: 2048 }), fc.integer({ min: 0, max: 1024 }), (stressedMiB, extraMiB) => {
        const guest = { ramBytes: 4096 * MiB, allocatedBytes: (stressedMiB + extraMiB) * MiB, stressedBytes: stressedMiB * MiB };
        const { transferredBytes, totalTimeMs } = predictHybrid(guest, GBIT);
        expect(transferredBytes).toBe(guest.allocatedBytes + guest.stressedBytes + DEVICE_STATE_BYTES);
        expect(Math.abs(totalTimeMs - (SETUP_MS + (transferredBytes / RATE) * 1000))).toBeLessThan(10);
      }),
    );
  });

  it('never reports more remaining than it has to send, nor transferred going down', () => {
    const sim = new SimMigration({ ramBytes: 512 * MiB, allocatedBytes: 200 * MiB, stressedBytes: 100 * MiB }, GBIT);
    let last = 0;
    for (let t = 0; t < 5000; t += 37) {
      if (t === 1850) sim.startPostcopy(t);
      const snap = sim.snapshot(t);
      expect(snap.ram.transferred).toBeGreaterThanOrEqual(last);
      expect(snap.ram.remaining).toBeLessThanOrEqual(200 * MiB);
      last = snap.ram.transferred;
    }
  });

  it('refuses a guest that stresses more than it allocates, naming the field', () => {
    expect(() => new SimMigration({ ramBytes: MiB, allocatedBytes: MiB, stressedBytes: 2 * MiB }, GBIT)).toThrow(/stresses/);
    expect(() => new SimMigration({ ramBytes: MiB, allocatedBytes: 2 * MiB, stressedBytes: 0 }, GBIT)).toThrow(/allocates/);
    expect(() => new SimMigration({ ramBytes: -1, allocatedBytes: 0, stressedBytes: 0 }, GBIT)).toThrow(/ramBytes/);
    expect(() => new SimMigration({ ramBytes: MiB, allocatedBytes: 0, stressedBytes: 0 }, 0)).toThrow(/link rate/);
  });
});
