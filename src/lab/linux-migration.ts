import { join } from 'node:path';
import type { QmpSession } from '../sources/qmp/client.js';
import { openQmpSession } from '../sources/qmp/transports.js';
import { setAnnounceRounds } from './announce.js';
import type { LinuxGuestImage, LinuxGuestParams } from './guest/linux.js';
import { startLinuxVm } from './linux-vm.js';
import { migrateOnce, type MigrationOutcome, type MigrationPlan } from './migrate.js';
import type { Host, LabNetwork } from './netns.js';
import type { QemuHandle } from './qemu.js';

/**
 * One Linux VM that answers ping, migrated from the lab's src host to its dst host over the
 * migration link, as nova/libvirt would: the source boots first; the destination is started
 * (`-incoming defer`, same MAC and address) only when asked, just before the migration.
 *
 * Start the destination late on purpose: a destination QEMU does not read its tap until it
 * runs, so broadcasts on the LAN (ARP requests) queue up there and reach the guest right after
 * the switch-over; its answers would move the bridges' forwarding entries by accident.
 */

export interface LinuxMigrationSetup {
  /** VM name; the two QEMUs are NAME-src and NAME-dst. */
  name: string;
  network: LabNetwork;
  image: LinuxGuestImage;
  guest: LinuxGuestParams;
  memoryMiB: number;
  /** Directory for the QMP sockets (two per QEMU: the orchestrator's and an observer's). */
  socketDir: string;
}

export interface LinuxVmSide {
  vm: QemuHandle;
  /** The orchestrator's monitor. */
  qmp: QmpSession;
  /** A second monitor of the same QEMU, for the exporter or an observer. */
  observerSocket: string;
}

export interface LinuxMigrationRun {
  /** Default: hybrid. */
  mode?: MigrationPlan['mode'];
  /** Bytes per second (`max-bandwidth`). */
  maxBandwidth: number;
  /** Bytes per second in post-copy (`max-postcopy-bandwidth`); default maxBandwidth. */
  maxPostcopyBandwidth?: number;
  /** The destination's `announce-rounds` (src/lab/announce.ts); default QEMU's own. */
  announceRounds?: number;
  timeoutMs: number;
}

export const BOOT_TIMEOUT_MS = 30_000;

export class LinuxVmMigration {
  destination: LinuxVmSide | undefined;
  private readonly sides: LinuxVmSide[] = [];

  private constructor(
    private readonly setup: LinuxMigrationSetup,
    readonly source: LinuxVmSide,
  ) {
    this.sides.push(source);
  }

  /** Boots the source VM and waits until its guest dirties memory (eth0 is up by then). */
  static async bootSource(setup: LinuxMigrationSetup, bootTimeoutMs: number = BOOT_TIMEOUT_MS): Promise<LinuxVmMigration> {
    const side = await startSide(setup, 'src', false);
    const pair = new LinuxVmMigration(setup, side);
    try {
      await side.vm.waitForGuest('dirtying', bootTimeoutMs);
    } catch (err) {
      await pair.stop();
      throw err;
    }
    return pair;
  }

  /** Starts the destination QEMU in the dst host, waiting for an incoming migration. */
  async startDestination(): Promise<LinuxVmSide> {
    this.destination ??= await startSide(this.setup, 'dst', true);
    if (!this.sides.includes(this.destination)) this.sides.push(this.destination);
    return this.destination;
  }

  /** Starts the destination if needed, then migrates over the migration link; returns the outcome. */
  async migrate(run: LinuxMigrationRun): Promise<MigrationOutcome> {
    const destination = await this.startDestination();
    if (run.announceRounds !== undefined) await setAnnounceRounds(destination.qmp, run.announceRounds);
    const plan: MigrationPlan = {
      mode: run.mode ?? 'hybrid',
      uri: `tcp:${this.setup.network.migrationAddress('dst')}:0`,
      maxBandwidth: run.maxBandwidth,
      ...(run.maxPostcopyBandwidth !== undefined ? { maxPostcopyBandwidth: run.maxPostcopyBandwidth } : {}),
    };
    return migrateOnce({ source: this.source.qmp, destination: destination.qmp }, plan, run.timeoutMs);
  }

  /** Closes the monitors and stops both QEMUs (by PID). */
  async stop(): Promise<void> {
    const sides = this.sides.splice(0);
    await Promise.all(sides.map((side) => side.qmp.close()));
    await Promise.all(sides.map((side) => side.vm.stop(1_000)));
  }
}

async function startSide(setup: LinuxMigrationSetup, host: Host, incoming: boolean): Promise<LinuxVmSide> {
  const name = `${setup.name}-${host}`;
  const qmpSockets = [join(setup.socketDir, `${name}.qmp`), join(setup.socketDir, `${name}.observer.qmp`)];
  const vm = await startLinuxVm({ name, image: setup.image, guest: setup.guest, network: setup.network, host, memoryMiB: setup.memoryMiB, qmpSockets, incoming });
  try {
    await vm.waitForMonitor();
    const qmp = await openQmpSession({ kind: 'unix', path: qmpSockets[0] as string });
    return { vm, qmp, observerSocket: qmpSockets[1] as string };
  } catch (err) {
    await vm.stop(1_000);
    throw err;
  }
}
