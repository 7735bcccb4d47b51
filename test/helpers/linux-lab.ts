import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { buildLinuxGuest, type LinuxGuestImage, type LinuxGuestParams } from '../../src/lab/guest/linux.js';
import { LinuxVmMigration } from '../../src/lab/linux-migration.js';
import type { MigrationOutcome } from '../../src/lab/migrate.js';
import { LabNetwork } from '../../src/lab/netns.js';

/**
 * The lab's Linux guest that answers ping (src/lab/linux-migration.ts) for integration tests: the
 * image built once, a fresh namespace network per test (the bridges' forwarding tables and the
 * LAN's ARP cache must not remember the previous test's VM), a source VM booted on it, and
 * everything stopped again (QEMU by PID, namespaces by name).
 */

export const MiB = 1024 * 1024;
/** The VM's address on the lab's LAN (198.19.0.0/24, the lan namespace is .1). */
export const VM_ADDRESS = '198.19.0.10';
export const LINUX_GUEST: LinuxGuestParams = { address: `${VM_ADDRESS}/24`, arpNotify: true, fillMiB: 32, dirtyMiB: 16 };
export const LINUX_MEMORY_MIB = 128;
/** Pre-copy bandwidth of the lab's migrations. */
export const LINUX_MIGRATION_BANDWIDTH = 100 * MiB;
/** What building the guest, the network and pinging need on the machine. */
export const LINUX_LAB_TOOLS = ['qemu-system-x86_64', 'ip', 'tc', 'fping', 'gcc', 'apt-get', 'dpkg-deb'] as const;

export class LinuxLab {
  image!: LinuxGuestImage;
  socketDir = '';
  private currentNetwork: LabNetwork | undefined;
  private currentMigration: LinuxVmMigration | undefined;
  private counter = 0;

  /** Builds the guest (or takes it from the cache) and makes the socket directory; for beforeAll. */
  async init(): Promise<void> {
    const started = Date.now();
    this.image = await buildLinuxGuest();
    const { kernelRelease, packages, modules } = this.image;
    console.log(`Linux guest ${kernelRelease} (${Object.entries(packages).map(([n, v]) => `${n} ${v}`).join(', ')}; modules ${modules.join(' ')}) ready in ${Date.now() - started} ms`);
    this.socketDir = await mkdtemp(join(tmpdir(), 'lme-linux-'));
  }

  /** This test's network; for beforeEach. */
  async createNetwork(): Promise<LabNetwork> {
    this.currentNetwork = await LabNetwork.create();
    return this.currentNetwork;
  }

  get network(): LabNetwork {
    if (!this.currentNetwork) throw new Error('LinuxLab: createNetwork() first');
    return this.currentNetwork;
  }

  /** Boots a source VM (NAME-src; its destination would be NAME-dst) on this test's network. */
  async bootSource(guest: LinuxGuestParams = LINUX_GUEST, name = `linux${++this.counter}`): Promise<{ migration: LinuxVmMigration; bootMs: number }> {
    const started = Date.now();
    this.currentMigration = await LinuxVmMigration.bootSource({ name, network: this.network, image: this.image, guest, memoryMiB: LINUX_MEMORY_MIB, socketDir: this.socketDir });
    return { migration: this.currentMigration, bootMs: Date.now() - started };
  }

  /** Stops this test's QEMUs, then deletes its namespaces; for afterEach (after whatever uses them). */
  async stopTest(): Promise<void> {
    const migration = this.currentMigration;
    const network = this.currentNetwork;
    this.currentMigration = undefined;
    this.currentNetwork = undefined;
    try {
      await migration?.stop();
    } finally {
      await network?.destroy();
    }
  }

  /** For afterAll. */
  async cleanup(): Promise<void> {
    if (this.socketDir) await rm(this.socketDir, { recursive: true, force: true });
  }
}

/** The source went setup, active, postcopy-active, completed; the destination completed; post-copy after the first pass. */
export function expectCompletedHybrid(outcome: MigrationOutcome): void {
  expect(outcome.source.statuses.map((s) => s.status)).toEqual(['setup', 'active', 'postcopy-active', 'completed']);
  expect(outcome.destination?.finalStatus).toBe('completed');
  expect(outcome.postcopyRequested?.afterPass).toBe(2);
}

/** QEMU's time stamp of the first `name` event, ms since the epoch. */
export function eventMs(events: readonly { event: string; timestamp: { seconds: number; microseconds: number } }[], name: string): number {
  const event = events.find((e) => e.event === name);
  if (!event) throw new Error(`no ${name} event among ${events.map((e) => e.event).join(', ')}`);
  return event.timestamp.seconds * 1000 + event.timestamp.microseconds / 1000;
}
