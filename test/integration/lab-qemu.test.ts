import { execFileSync } from 'node:child_process';
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { detectAccel, KVM_DEVICE, type Accel } from '../../src/lab/accel.js';
import { buildDirtyGuest } from '../../src/lab/guest/build.js';
import { MigrationDriver, migrateOnce, type MigrationOutcome } from '../../src/lab/migrate.js';
import { startQemu } from '../../src/lab/qemu.js';
import type { QmpEvent } from '../../src/qemu/types.js';
import { openQmpSession } from '../../src/sources/qmp/transports.js';
import { missingTools, needsRoot, requireCapability, requireEnvironment } from '../helpers/env.js';
import { closedPort, hybridPlan, MiB, QemuLab } from '../helpers/qemu-lab.js';

const SIZE = { memoryMiB: 128, fillMiB: 64, dirtyMiB: 32 };
const BANDWIDTH = hybridPlan().maxBandwidth;
/**
 * Beyond F + 2N: about 2 MiB of device state, page headers and low memory, plus dirty pages
 * re-sent in pre-copy between pass 2 and the switch, which QEMU notices only at its next
 * rate-limit window (100 ms of bandwidth).
 */
const OVERHEAD_LIMIT = 2 * MiB + BANDWIDTH / 10;
const MIGRATION_TIMEOUT_MS = 20_000;
const ACCELS: Accel[] = [...new Set<Accel>([detectAccel(), 'tcg'])];
const KVM_PROBLEM = ACCELS.includes('kvm') ? null : `${KVM_DEVICE} does not open read-write, so the kvm cases cannot run`;

describe.runIf(requireEnvironment(missingTools('qemu-system-x86_64', 'nasm', 'ip'), needsRoot()))('lab QEMU harness (real QEMU)', () => {
  const lab = new QemuLab(SIZE);
  const netns = `lme-lab-${process.pid}`;
  let netnsCreated = false;

  beforeAll(() => lab.init());
  afterEach(() => lab.stopAll());
  afterAll(async () => {
    if (netnsCreated) execFileSync('ip', ['netns', 'delete', netns]);
    await lab.cleanup();
  });

  function report(label: string, outcome: MigrationOutcome): void {
    const ram = outcome.source.final?.ram ?? {};
    console.log(
      `${label}: ${outcome.source.finalStatus} in ${Math.round(outcome.endedMonoMs - outcome.startedMonoMs)} ms ` +
        `(QEMU total-time ${String(outcome.source.final?.['total-time'])} ms), transferred ${ram.transferred} B, ` +
        `precopy ${ram['precopy-bytes']} B, postcopy ${ram['postcopy-bytes']} B, passes ${outcome.source.passes.join(',')}`,
    );
  }

  const statusesOf = (side: { statuses: { status: string }[] } | undefined): string[] => side?.statuses.map((s) => s.status) ?? [];

  it('has KVM for its kvm cases', (ctx) => {
    requireCapability(ctx, KVM_PROBLEM);
    expect(ACCELS).toEqual(['kvm', 'tcg']);
  });

  for (const accel of ACCELS) {
    it(`boots the dirtying guest under ${accel} and reports it filled`, async () => {
      const started = systemClock.monoMs();
      const { vm } = await lab.boot('boot', { accel });
      await vm.waitForFilled(10_000);
      const filledMs = systemClock.monoMs() - started;
      await vm.waitForGuest('dirtying', 10_000);
      console.log(`${accel}: boot to filled ${Math.round(filledMs)} ms, to first dirty pass ${Math.round(systemClock.monoMs() - started)} ms`);
      expect(vm.guestOutput()).toBe('protected\nfilled\ndirtying\n');
      expect(vm.accel).toBe(accel);
    });
  }

  it('runs QEMU itself (pid and all) inside a network namespace', async () => {
    execFileSync('ip', ['netns', 'add', netns]);
    netnsCreated = true;
    const vm = await startQemu({
      name: 'netns',
      memoryMiB: SIZE.memoryMiB,
      guest: { image: await buildDirtyGuest(), fillMiB: SIZE.fillMiB, dirtyMiB: SIZE.dirtyMiB },
      qmpSockets: [join(lab.dir, 'netns.qmp')],
      netns,
    });
    try {
      await vm.waitForFilled();
      // `ip netns exec` execs QEMU in place, so the pid is QEMU's own.
      expect(readFileSync(`/proc/${vm.pid}/comm`, 'utf8').trim()).toBe('qemu-system-x86');
      expect(readlinkSync(`/proc/${vm.pid}/ns/net`)).toBe(`net:[${statSync(`/run/netns/${netns}`).ino}]`);
    } finally {
      await vm.stop(1_000);
    }
  });

  for (const accel of ACCELS) {
    it(`hybrid migration under ${accel}: transferred = F + 2N, post-copy = N`, async () => {
      const { src, dst } = await lab.pair({ accel });
      const observer = lab.track(await openQmpSession({ kind: 'unix', path: src.observerSocket }));
      const seen: QmpEvent[] = [];
      observer.on('event', (event) => seen.push(event));

      const outcome = await migrateOnce({ source: src.qmp, destination: dst.qmp }, hybridPlan(), MIGRATION_TIMEOUT_MS);
      report(`hybrid ${accel}`, outcome);

      expect(statusesOf(outcome.source)).toEqual(['setup', 'active', 'postcopy-active', 'completed']);
      expect(outcome.destination?.finalStatus).toBe('completed');
      expect(statusesOf(outcome.destination)).toContain('postcopy-active');
      expect(outcome.postcopyRequested?.afterPass).toBe(2);
      const ram = outcome.source.final?.ram ?? {};
      const law = (SIZE.fillMiB + 2 * SIZE.dirtyMiB) * MiB;
      expect(ram.transferred).toBeGreaterThanOrEqual(law);
      expect(ram.transferred).toBeLessThan(law + OVERHEAD_LIMIT);
      expect(Math.abs((ram['postcopy-bytes'] ?? 0) / (SIZE.dirtyMiB * MiB) - 1)).toBeLessThan(0.05);
      expect(outcome.source.final?.['total-time']).toBeGreaterThan(0);
      // A second monitor on the same QEMU (the exporter's) sees the same migration.
      expect(seen.filter((e) => e.event === 'MIGRATION').map((e) => e.data?.status)).toEqual(statusesOf(outcome.source));
    });
  }

  it('pre-copy migration converges when the dirty set fits the downtime limit', async () => {
    const dirtyMiB = 8;
    const { src, dst } = await lab.pair({ dirtyMiB });
    const outcome = await migrateOnce({ source: src.qmp, destination: dst.qmp }, hybridPlan({ mode: 'precopy' }), MIGRATION_TIMEOUT_MS);
    report('precopy', outcome);

    expect(statusesOf(outcome.source)).toEqual(['setup', 'active', 'completed']);
    expect(outcome.destination?.finalStatus).toBe('completed');
    expect(outcome.postcopyRequested).toBeUndefined();
    const ram = outcome.source.final?.ram ?? {};
    const law = (SIZE.fillMiB + 2 * dirtyMiB) * MiB;
    expect(ram.transferred).toBeGreaterThanOrEqual(law);
    expect(ram.transferred).toBeLessThan(law + OVERHEAD_LIMIT);
    expect(ram['postcopy-bytes']).toBe(0);
  });

  it('a migration to a port nobody listens on fails', async () => {
    const src = await lab.boot('src');
    const plan = hybridPlan({ mode: 'precopy', uri: `tcp:127.0.0.1:${await closedPort()}` });
    const outcome = await migrateOnce({ source: src.qmp }, plan, MIGRATION_TIMEOUT_MS);

    expect(outcome.source.finalStatus).toBe('failed');
    expect(outcome.source.final?.['error-desc']).toMatch(/Connection refused/);
    expect(outcome.destination).toBeUndefined();
  });

  it('a cancelled migration ends cancelled on the source; the destination gives up', async () => {
    const { src, dst } = await lab.pair();
    const driver = new MigrationDriver({ source: src.qmp, destination: dst.qmp }, hybridPlan({ mode: 'precopy', maxBandwidth: 10 * MiB }));
    await driver.prepare();
    await driver.start();
    await driver.waitForStatus('source', ['active'], 5_000);
    await driver.cancel();
    const outcome = await driver.finish(MIGRATION_TIMEOUT_MS);

    expect(outcome.source.finalStatus).toBe('cancelled');
    expect(statusesOf(outcome.source)).toEqual(['setup', 'active', 'cancelling', 'cancelled']);
    expect(['failed', 'gone']).toContain(outcome.destination?.finalStatus);
    expect((await dst.vm.exited).code).not.toBe(0);
  });

  it('killing the destination during post-copy leaves the source postcopy-paused', async () => {
    const { src, dst } = await lab.pair();
    // Slow post-copy (32 MiB at 4 MiB/s) so the kill lands inside it.
    const driver = new MigrationDriver({ source: src.qmp, destination: dst.qmp }, hybridPlan({ maxPostcopyBandwidth: 4 * MiB }));
    await driver.prepare();
    await driver.start();
    // Not at the source's "postcopy-active": the switch itself is still under way then, and a
    // destination lost during it fails the migration instead of pausing it.
    await driver.waitForEvent('destination', 'RESUME', MIGRATION_TIMEOUT_MS);
    dst.vm.kill('SIGKILL');
    const outcome = await driver.finish(MIGRATION_TIMEOUT_MS);
    report('destination killed', outcome);

    expect(outcome.source.finalStatus).toBe('postcopy-paused');
    expect(outcome.source.final?.status).toBe('postcopy-paused');
    expect(outcome.destination?.finalStatus).toBe('gone');
    expect((await dst.vm.exited).signal).toBe('SIGKILL');
  });
});
