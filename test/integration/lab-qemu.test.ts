import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { detectAccel, type Accel } from '../../src/lab/accel.js';
import { buildDirtyGuest } from '../../src/lab/guest/build.js';
import { MigrationDriver, migrateOnce, type MigrationOutcome, type MigrationPlan } from '../../src/lab/migrate.js';
import { startQemu, type QemuHandle } from '../../src/lab/qemu.js';
import type { QmpSession } from '../../src/sources/qmp/client.js';
import { openQmpSession } from '../../src/sources/qmp/transports.js';
import type { QmpEvent } from '../../src/sources/qmp/types.js';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';

const MiB = 1024 * 1024;
const MEMORY_MIB = 128;
const FILL_MIB = 64;
const DIRTY_MIB = 32;
const BANDWIDTH = 100 * MiB;
/** Beyond F + 2N: device state, page headers, the pages below 1 MiB, pages re-sent before the switch. */
const OVERHEAD_LIMIT = 8 * MiB;
const MIGRATION_TIMEOUT_MS = 20_000;
const ACCELS: Accel[] = [...new Set<Accel>([detectAccel(), 'tcg'])];

describe.runIf(requireEnvironment(missingTools('qemu-system-x86_64', 'nasm'), needsRoot()))('lab QEMU harness (real QEMU)', () => {
  let image: string;
  let dir: string;
  let counter = 0;
  const vms: QemuHandle[] = [];
  const sessions: QmpSession[] = [];

  beforeAll(async () => {
    image = await buildDirtyGuest();
    dir = await mkdtemp(join(tmpdir(), 'lme-lab-'));
  });

  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((session) => session.close()));
    await Promise.all(vms.splice(0).map((vm) => vm.stop(1_000)));
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  interface Booted {
    vm: QemuHandle;
    /** The orchestrator's monitor; a second one (`observer`) plays the exporter. */
    qmp: QmpSession;
    observerSocket: string;
  }

  async function boot(role: string, options: { accel?: Accel; incoming?: boolean; dirtyMiB?: number } = {}): Promise<Booted> {
    const name = `${role}-${++counter}`;
    const qmpSockets = [join(dir, `${name}.qmp`), join(dir, `${name}.observer.qmp`)];
    const vm = await startQemu({
      name,
      memoryMiB: MEMORY_MIB,
      guest: { image, fillMiB: FILL_MIB, dirtyMiB: options.dirtyMiB ?? DIRTY_MIB },
      qmpSockets,
      accel: options.accel ?? ACCELS[0],
      incoming: options.incoming,
    });
    vms.push(vm);
    await vm.waitForMonitor();
    const qmp = await openQmpSession({ kind: 'unix', path: qmpSockets[0] as string });
    sessions.push(qmp);
    return { vm, qmp, observerSocket: qmpSockets[1] as string };
  }

  /** A source that is dirtying memory and a destination waiting for it. */
  async function pair(accel: Accel = ACCELS[0] as Accel, dirtyMiB = DIRTY_MIB): Promise<{ src: Booted; dst: Booted }> {
    const [src, dst] = await Promise.all([boot('src', { accel, dirtyMiB }), boot('dst', { accel, dirtyMiB, incoming: true })]);
    await src.vm.waitForGuest('dirtying');
    return { src, dst };
  }

  function plan(overrides: Partial<MigrationPlan> = {}): MigrationPlan {
    return { mode: 'hybrid', uri: 'tcp:127.0.0.1:0', maxBandwidth: BANDWIDTH, ...overrides };
  }

  function report(label: string, outcome: MigrationOutcome): void {
    const ram = outcome.source.final?.ram ?? {};
    console.log(
      `${label}: ${outcome.source.finalStatus} in ${Math.round(outcome.endedMonoMs - outcome.startedMonoMs)} ms ` +
        `(QEMU total-time ${String(outcome.source.final?.['total-time'])} ms), transferred ${ram.transferred} B, ` +
        `precopy ${ram['precopy-bytes']} B, postcopy ${ram['postcopy-bytes']} B, passes ${outcome.source.passes.join(',')}`,
    );
  }

  const statusesOf = (side: { statuses: { status: string }[] } | undefined): string[] => side?.statuses.map((s) => s.status) ?? [];

  for (const accel of ACCELS) {
    it(`boots the dirtying guest under ${accel} and reports it filled`, async () => {
      const started = systemClock.monoMs();
      const { vm } = await boot('boot', { accel });
      await vm.waitForFilled(10_000);
      const filledMs = systemClock.monoMs() - started;
      await vm.waitForGuest('dirtying', 10_000);
      console.log(`${accel}: boot to filled ${Math.round(filledMs)} ms, to first dirty pass ${Math.round(systemClock.monoMs() - started)} ms`);
      expect(vm.guestOutput()).toBe('protected\nfilled\ndirtying\n');
      expect(vm.accel).toBe(accel);
    });
  }

  for (const accel of ACCELS) {
    it(`hybrid migration under ${accel}: transferred = F + 2N, post-copy = N`, async () => {
      const { src, dst } = await pair(accel);
      const observer = await openQmpSession({ kind: 'unix', path: src.observerSocket });
      sessions.push(observer);
      const seen: QmpEvent[] = [];
      observer.on('event', (event) => seen.push(event));

      const outcome = await migrateOnce({ source: src.qmp, destination: dst.qmp }, plan(), MIGRATION_TIMEOUT_MS);
      report(`hybrid ${accel}`, outcome);

      expect(statusesOf(outcome.source)).toEqual(['setup', 'active', 'postcopy-active', 'completed']);
      expect(outcome.destination?.finalStatus).toBe('completed');
      expect(statusesOf(outcome.destination)).toContain('postcopy-active');
      expect(outcome.postcopyRequested?.afterPass).toBe(2);
      const ram = outcome.source.final?.ram ?? {};
      const law = (FILL_MIB + 2 * DIRTY_MIB) * MiB;
      expect(ram.transferred).toBeGreaterThanOrEqual(law);
      expect(ram.transferred).toBeLessThan(law + OVERHEAD_LIMIT);
      expect(Math.abs((ram['postcopy-bytes'] ?? 0) / (DIRTY_MIB * MiB) - 1)).toBeLessThan(0.05);
      // A second monitor on the same QEMU (the exporter's) sees the same migration.
      expect(seen.filter((e) => e.event === 'MIGRATION').map((e) => e.data?.status)).toEqual(statusesOf(outcome.source));
    });
  }

  it('pre-copy migration converges when the dirty set fits the downtime limit', async () => {
    const dirtyMiB = 8;
    const { src, dst } = await pair(ACCELS[0], dirtyMiB);
    const outcome = await migrateOnce({ source: src.qmp, destination: dst.qmp }, plan({ mode: 'precopy' }), MIGRATION_TIMEOUT_MS);
    report('precopy', outcome);

    expect(statusesOf(outcome.source)).toEqual(['setup', 'active', 'completed']);
    expect(outcome.destination?.finalStatus).toBe('completed');
    expect(outcome.postcopyRequested).toBeUndefined();
    const ram = outcome.source.final?.ram ?? {};
    const law = (FILL_MIB + 2 * dirtyMiB) * MiB;
    expect(ram.transferred).toBeGreaterThanOrEqual(law);
    expect(ram.transferred).toBeLessThan(law + OVERHEAD_LIMIT);
    expect(ram['postcopy-bytes']).toBe(0);
  });

  it('a migration to a port nobody listens on fails', async () => {
    const src = await boot('src');
    const outcome = await migrateOnce({ source: src.qmp }, plan({ mode: 'precopy', uri: `tcp:127.0.0.1:${await closedPort()}` }), MIGRATION_TIMEOUT_MS);

    expect(outcome.source.finalStatus).toBe('failed');
    expect(outcome.source.final?.['error-desc']).toMatch(/Connection refused/);
    expect(outcome.destination).toBeUndefined();
  });

  it('a cancelled migration ends cancelled on the source; the destination gives up', async () => {
    const { src, dst } = await pair();
    const driver = new MigrationDriver({ source: src.qmp, destination: dst.qmp }, plan({ mode: 'precopy', maxBandwidth: 10 * MiB }));
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
    const { src, dst } = await pair();
    // Slow post-copy (32 MiB at 4 MiB/s) so the kill lands inside it.
    const driver = new MigrationDriver({ source: src.qmp, destination: dst.qmp }, plan({ maxPostcopyBandwidth: 4 * MiB }));
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

/** A local port with no listener: bound by the kernel's choice, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}
