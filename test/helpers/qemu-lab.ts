import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectAccel, type Accel } from '../../src/lab/accel.js';
import { buildDirtyGuest } from '../../src/lab/guest/build.js';
import type { MigrationPlan } from '../../src/lab/migrate.js';
import { startQemu, type QemuHandle } from '../../src/lab/qemu.js';
import type { QmpSession } from '../../src/sources/qmp/client.js';
import { openQmpSession } from '../../src/sources/qmp/transports.js';
import { freePort } from './ports.js';

export const MiB = 1024 * 1024;

export interface Booted {
  vm: QemuHandle;
  /** The orchestrator's monitor (plays libvirt). */
  qmp: QmpSession;
  /** A second monitor of the same QEMU, for the exporter or an observer. */
  observerSocket: string;
}

export interface GuestSize {
  memoryMiB: number;
  fillMiB: number;
  dirtyMiB: number;
}

/** Real QEMU processes with the memory-dirtying guest, cleaned up by cleanup() (by PID). */
export class QemuLab {
  readonly accel: Accel = detectAccel();
  private image = '';
  dir = '';
  private counter = 0;
  private readonly vms: QemuHandle[] = [];
  private readonly sessions: QmpSession[] = [];

  constructor(readonly size: GuestSize) {}

  async init(): Promise<void> {
    this.image = await buildDirtyGuest();
    this.dir = await mkdtemp(join(tmpdir(), 'lme-lab-'));
  }

  async boot(role: string, options: { accel?: Accel; incoming?: boolean; dirtyMiB?: number } = {}): Promise<Booted> {
    const name = `${role}-${++this.counter}`;
    const qmpSockets = [join(this.dir, `${name}.qmp`), join(this.dir, `${name}.observer.qmp`)];
    const vm = await startQemu({
      name,
      memoryMiB: this.size.memoryMiB,
      guest: { image: this.image, fillMiB: this.size.fillMiB, dirtyMiB: options.dirtyMiB ?? this.size.dirtyMiB },
      qmpSockets,
      accel: options.accel ?? this.accel,
      incoming: options.incoming,
    });
    this.vms.push(vm);
    await vm.waitForMonitor();
    const qmp = await openQmpSession({ kind: 'unix', path: qmpSockets[0] as string });
    this.sessions.push(qmp);
    return { vm, qmp, observerSocket: qmpSockets[1] as string };
  }

  /** A source that is dirtying memory and a destination waiting for it. */
  async pair(options: { accel?: Accel; dirtyMiB?: number } = {}): Promise<{ src: Booted; dst: Booted }> {
    // allSettled: if one boot fails, the other has registered its QEMU before cleanup runs.
    const [src, dst] = await Promise.allSettled([this.boot('src', options), this.boot('dst', { ...options, incoming: true })]);
    if (src.status === 'rejected') throw src.reason;
    if (dst.status === 'rejected') throw dst.reason;
    await src.value.vm.waitForGuest('dirtying');
    return { src: src.value, dst: dst.value };
  }

  track(session: QmpSession): QmpSession {
    this.sessions.push(session);
    return session;
  }

  /** Closes sessions and stops every QEMU started since the last call. */
  async stopAll(): Promise<void> {
    await Promise.all(this.sessions.splice(0).map((session) => session.close()));
    await Promise.all(this.vms.splice(0).map((vm) => vm.stop(1_000)));
  }

  async cleanup(): Promise<void> {
    await this.stopAll();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}

export function hybridPlan(overrides: Partial<MigrationPlan> = {}): MigrationPlan {
  return { mode: 'hybrid', uri: 'tcp:127.0.0.1:0', maxBandwidth: 100 * MiB, ...overrides };
}

/** A local port with no listener (a migration to it fails with Connection refused). */
export const closedPort = freePort;
