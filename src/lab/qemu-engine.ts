import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { QmpSession } from '../sources/qmp/client.js';
import { openQmpSession } from '../sources/qmp/transports.js';
import { detectAccel, type Accel } from './accel.js';
import { setAnnounceRounds } from './announce.js';
import { labHostsIn, type LabEngine, type LabHostInfo, type LabHostName, type LabVmSpec, type QmpVm } from './engine.js';
import { runTool } from './exec.js';
import { buildDirtyGuest } from './guest/build.js';
import { buildLinuxGuest, type LinuxGuestImage } from './guest/linux.js';
import { linuxVmQemuOptions, macForAddress } from './linux-vm.js';
import { LabNetwork } from './netns.js';
import { startQemu, type QemuHandle, type QemuOptions } from './qemu.js';
import { recordPid, type RunDir } from './run-dir.js';
import { LAB_PREFIX } from './run-dir.js';
import { livemigError } from '../errors.js';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The real lab: hosts src and dst as network namespaces joined by a tbf-limited veth, a lan
 * namespace that pings the VMs, and real QEMU in the host namespaces: the memory-dirtying guest
 * (KVM or TCG) or the Linux guest (TCG). Needs root and QEMU.
 */

export interface QemuEngineOptions {
  run: RunDir;
  /** tc rate of the migration link, e.g. 1gbit. */
  rate: string;
  needLinuxGuest: boolean;
  /** The destination's announce-rounds (the outage scenario: 0). */
  announceRounds?: number;
  /**
   * A post-copy outage of known length: `lengthMs` after `delayMs` past the destination's
   * RESUME, a blackhole route for the VM's address in the lan namespace (lab-notes: exact).
   */
  postcopyBlackhole?: { delayMs: number; lengthMs: number };
  accel?: Accel;
}

const BOOT_TIMEOUT_MS = 30_000;


export async function checkQemuPrerequisites(): Promise<void> {
  if (process.geteuid?.() !== 0) {
    throw livemigError('LME_LAB_NEEDS_ROOT', 'create network namespaces and run QEMU in them', `running as uid ${process.geteuid?.() ?? 'unknown'}; run as root, or use --engine sim`);
  }
  for (const [tool, pkg] of [['qemu-system-x86_64', 'qemu-system-x86'], ['ip', 'iproute2'], ['tc', 'iproute2'], ['nasm', 'nasm']] as const) {
    await runTool({ tool, args: ['-V'], packageName: pkg, failure: { code: 'LME_LAB_QEMU', subject: tool } }).catch((err: unknown) => {
      if ((err as { code?: string }).code === 'LME_LAB_TOOL_MISSING') throw err;
    });
  }
}

export class QemuEngine implements LabEngine {
  readonly kind = 'qemu' as const;
  readonly hosts: Record<LabHostName, LabHostInfo>;
  readonly pingNetns: string;
  private readonly vms = new Set<QemuHandle>();
  private readonly sessions = new Set<QmpSession>();

  private constructor(
    private readonly options: QemuEngineOptions,
    readonly network: LabNetwork,
    private readonly dirtyImage: string,
    private readonly linuxImage: LinuxGuestImage | undefined,
    readonly accel: Accel,
  ) {
    this.hosts = labHostsIn(network, options.run.path);
    this.pingNetns = network.namespaces.lan;
  }

  static async create(options: QemuEngineOptions): Promise<QemuEngine> {
    await checkQemuPrerequisites();
    const dirtyImage = await buildDirtyGuest();
    const linuxImage = options.needLinuxGuest ? await buildLinuxGuest() : undefined;
    const network = await LabNetwork.create({ prefix: LAB_PREFIX, rate: options.rate });
    const engine = new QemuEngine(options, network, dirtyImage, linuxImage, options.accel ?? detectAccel());
    for (const name of ['src', 'dst'] as const) await writeFile(engine.hosts[name].novaLog, '');
    return engine;
  }

  observerSocket(vm: string, host: LabHostName): string {
    return join(this.options.run.path, `${vm}-${host}.observer.qmp`);
  }

  async startVm(spec: LabVmSpec, host: LabHostName, incoming: boolean): Promise<QmpVm> {
    if (this.closed) throw livemigError('LME_LAB_QEMU', `${spec.name}-${host}`, 'the lab is shutting down');
    const name = `${spec.name}-${host}`;
    const qmpSockets = [join(this.options.run.path, `${name}.qmp`), this.observerSocket(spec.name, host)];
    const qemuOptions = this.qemuOptions(spec, host, name, qmpSockets, incoming);
    const vm = await startQemu(qemuOptions);
    recordPid(this.options.run, vm.pid);
    this.vms.add(vm);
    const stop = async (): Promise<void> => {
      await vm.stop(1_000);
      this.vms.delete(vm);
    };
    try {
      await vm.waitForMonitor();
      const qmp = await openQmpSession({ kind: 'unix', path: qmpSockets[0] as string });
      this.sessions.add(qmp);
      // An unloaded guest (nothing stressed) says `filled` and then idles.
      if (!incoming) await vm.waitForGuest(spec.stressedMiB > 0 || spec.guest === 'linux' ? 'dirtying' : 'filled', BOOT_TIMEOUT_MS);
      return {
        spec,
        host,
        qmp,
        pid: vm.pid,
        stop: async () => {
          this.sessions.delete(qmp);
          await qmp.close();
          await stop();
        },
      };
    } catch (err) {
      await stop();
      throw err;
    }
  }

  private qemuOptions(spec: LabVmSpec, host: LabHostName, name: string, qmpSockets: string[], incoming: boolean): QemuOptions {
    if (spec.guest === 'linux') {
      if (!this.linuxImage || !spec.pingAddress) throw livemigError('LME_LAB_QEMU', name, 'the Linux guest needs its image and a ping address');
      return linuxVmQemuOptions({
        name,
        image: this.linuxImage,
        guest: { address: `${spec.pingAddress}/24`, arpNotify: spec.arpNotify ?? true, fillMiB: spec.fillMiB, dirtyMiB: spec.stressedMiB },
        network: this.network,
        host,
        memoryMiB: spec.memoryMiB,
        qmpSockets,
        incoming,
        stopGraceMs: 1_000,
      });
    }
    return {
      name,
      memoryMiB: spec.memoryMiB,
      guest: { image: this.dirtyImage, fillMiB: spec.fillMiB, dirtyMiB: spec.stressedMiB },
      qmpSockets,
      accel: this.accel,
      incoming,
      netns: this.network.namespaces[host],
      stopGraceMs: 1_000,
    };
  }

  migrationUri(to: LabHostName): string {
    return `tcp:${this.network.migrationAddress(to)}:0`;
  }

  nicOf(spec: LabVmSpec): { device: string; mac: string } | null {
    return spec.guest === 'linux' && spec.pingAddress ? { device: this.network.layout.tap, mac: macForAddress(spec.pingAddress) } : null;
  }

  async beforeMigrate(destination: QmpVm): Promise<void> {
    const rounds = destination.spec.faults?.announceRounds ?? this.options.announceRounds;
    if (rounds !== undefined) await setAnnounceRounds(destination.qmp, rounds);
  }

  async duringPostcopy(destination: QmpVm): Promise<void> {
    const faults = destination.spec.faults;
    const blackhole = faults && 'postcopyBlackhole' in faults ? faults.postcopyBlackhole : this.options.postcopyBlackhole;
    const address = destination.spec.pingAddress;
    if (!blackhole || !address) return;
    const lan = this.network.namespaces.lan;
    const route = (verb: 'add' | 'del') =>
      runTool({ tool: 'ip', args: ['-n', lan, 'route', verb, 'blackhole', `${address}/32`], packageName: 'iproute2', failure: { code: 'LME_LAB_NETWORK', subject: lan } });
    await sleep(blackhole.delayMs);
    await route('add');
    try {
      await sleep(blackhole.lengthMs);
    } finally {
      await route('del');
    }
  }

  private closed = false;

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.sessions].map((s) => s.close().catch(() => undefined)));
    await Promise.all([...this.vms].map((vm) => vm.stop(1_000)));
    this.vms.clear();
    await this.network.destroy();
  }
}
