import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { QmpSession } from '../../sources/qmp/client.js';
import { openQmpSession } from '../../sources/qmp/transports.js';
import { livemigError } from '../../errors.js';
import { LAB_HOSTS, type LabEngine, type LabHostInfo, type LabHostName, type LabVmSpec, type QmpVm } from '../engine.js';
import { SimCloud, SIM_INTERFACE, type SimQemu } from './cloud.js';

const MiB = 1024 * 1024;
/** What an idle guest has in RAM besides its load (lab-notes: an idle guest migrates 1.6 MB). */
export const SIM_BASE_MIB = 2;

/** The SIMULATED engine: no root, no QEMU; everything under `dir`. */
export class SimEngine implements LabEngine {
  readonly kind = 'sim' as const;
  readonly accel = 'SIMULATED';
  readonly hosts: Record<LabHostName, LabHostInfo>;
  readonly fpingPath: string;
  private readonly sessions = new Set<QmpSession>();

  private constructor(
    private readonly dir: string,
    private readonly cloud: SimCloud,
    private readonly postcopyBlackhole?: { delayMs: number; lengthMs: number },
  ) {
    this.fpingPath = join(dir, 'fping-SIMULATED');
    this.hosts = {
      src: this.hostInfo('src', 4101),
      dst: this.hostInfo('dst', 4102),
    };
  }

  static async create(dir: string, linkBytesPerSecond: number, postcopyBlackhole?: { delayMs: number; lengthMs: number }): Promise<SimEngine> {
    for (const host of LAB_HOSTS) await mkdir(join(dir, host), { recursive: true });
    const cloud = new SimCloud(dir, LAB_HOSTS, linkBytesPerSecond);
    const engine = new SimEngine(dir, cloud, postcopyBlackhole);
    for (const host of LAB_HOSTS) await writeFile(engine.hosts[host].novaLog, '');
    await cloud.writeCounters();
    await cloud.writePingState();
    await writeFile(engine.fpingPath, simFpingScript(cloud.pingStatePath));
    await chmod(engine.fpingPath, 0o755);
    return engine;
  }

  async duringPostcopy(destination: QmpVm): Promise<void> {
    const address = destination.spec.pingAddress;
    if (!this.postcopyBlackhole || !address) return;
    const from = Date.now() + this.postcopyBlackhole.delayMs;
    this.cloud.blackhole(address, from, from + this.postcopyBlackhole.lengthMs);
    await new Promise((resolve) => setTimeout(resolve, this.postcopyBlackhole ? this.postcopyBlackhole.delayMs + this.postcopyBlackhole.lengthMs : 0));
  }

  private hostInfo(name: LabHostName, novaPid: number): LabHostInfo {
    return { name, interfaces: [SIM_INTERFACE], netdevPath: this.cloud.netdevPath(name), novaLog: join(this.dir, name, 'nova-compute.log'), novaPid };
  }

  observerSocket(vm: string, host: LabHostName): string {
    return join(this.dir, `${vm}-${host}.observer.qmp`);
  }

  async startVm(spec: LabVmSpec, host: LabHostName, incoming: boolean): Promise<QmpVm> {
    if (this.closed) throw livemigError('LME_LAB_QEMU', `${spec.name}-${host}`, 'the lab is shutting down');
    const allocated = SIM_BASE_MIB + spec.fillMiB + spec.stressedMiB;
    const qemu: SimQemu = await this.cloud.startQemu({
      name: `${spec.name}-${host}`,
      host,
      guest: { ramBytes: spec.memoryMiB * MiB, allocatedBytes: Math.min(allocated, spec.memoryMiB) * MiB, stressedBytes: spec.stressedMiB * MiB },
      qmpSockets: [join(this.dir, `${spec.name}-${host}.qmp`), this.observerSocket(spec.name, host)],
      incoming,
      ...(spec.pingAddress ? { pingAddress: spec.pingAddress } : {}),
    });
    const qmp = await openQmpSession({ kind: 'unix', path: qemu.qmpSockets[0] as string });
    this.sessions.add(qmp);
    return {
      spec,
      host,
      qmp,
      pid: null,
      stop: async () => {
        this.sessions.delete(qmp);
        await qmp.close();
        await qemu.stop();
      },
    };
  }

  migrationUri(to: LabHostName, vm: string): string {
    return `unix:${join(this.dir, `${vm}-${to}.migration`)}`;
  }

  private closed = false;

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.sessions].map((s) => s.close().catch(() => undefined)));
    await this.cloud.close();
  }
}

/**
 * The SIMULATED fping as an executable: this Node running ./fping (through tsx when run from
 * sources). In the packaged bundle (scripts/package) this module is part of one file, and the
 * SIMULATED fping is bundled beside it as lab-sim-fping.js.
 */
function simFpingScript(statePath: string): string {
  const here = fileURLToPath(import.meta.url);
  const script = /engine\.(ts|js)$/.test(here) ? here.replace(/engine\.(ts|js)$/, 'fping.$1') : join(dirname(here), 'lab-sim-fping.js');
  const loader = here.endsWith('.ts') ? ` --import ${quote(import.meta.resolve('tsx'))}` : '';
  return `#!/bin/sh\n# SIMULATED fping of the livemig-exporter lab (--engine sim): sends nothing.\nLIVEMIG_SIM_PING_STATE=${quote(statePath)} exec ${quote(process.execPath)}${loader} ${quote(script)} "$@"\n`;
}

function quote(text: string): string {
  return `'${text.replace(/'/g, "'\\''")}'`;
}
