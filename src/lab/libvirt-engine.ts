import { randomUUID } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { livemigError } from '../errors.js';
import type { Accel } from './accel.js';
import { labHostsIn, type LabEngineBase, type LabHostInfo, type LabHostName, type LabVmSpec, type RunningVm } from './engine.js';
import { runTool } from './exec.js';
import { buildLinuxGuest, type LinuxGuestImage } from './guest/linux.js';
import { libvirtKvmProblem } from './libvirt-accel.js';
import { LabLibvirt, type LibvirtDaemon } from './libvirt-daemons.js';
import { labDomainSerialPath, labDomainXml, type LabDomainOwner } from './libvirt-domain.js';
import { LabNetwork } from './netns.js';
import { LAB_PREFIX, recordPid, type RunDir } from './run-dir.js';

/**
 * The libvirt engine: the lab's network (src and dst namespaces joined by the tbf-limited
 * migration link), a private libvirt daemon in each host namespace (./libvirt-daemons.ts), and
 * each VM a libvirt domain of the lab's Linux guest with nova's metadata (./libvirt-domain.ts).
 * Its migrations are libvirt's own, driven as nova drives them by ./libvirt-orchestrator.ts; the
 * exporter watches both daemons through their read-only sockets. Needs root, libvirt and QEMU.
 *
 * KVM is used when libvirt's QEMU can open /dev/kvm, else TCG. The Linux guest hangs early
 * under KVM on some machines (lab-notes: nested KVM): a first boot under KVM that writes nothing
 * on its console within KVM_FIRST_OUTPUT_MS is destroyed, and every domain from then on is TCG.
 */

export interface LibvirtEngineOptions {
  run: RunDir;
  /** tc rate of the migration link, e.g. 1gbit. */
  rate: string;
  /** Default: KVM where libvirt's QEMU can use it, else TCG. */
  accel?: Accel;
}

const BOOT_TIMEOUT_MS = 60_000;
/** Under TCG the guest's kernel writes its first console line after about 1.5 s (measured here); under KVM sooner. */
const KVM_FIRST_OUTPUT_MS = 5_000;
const POLL_MS = 200;

export async function checkLibvirtPrerequisites(): Promise<void> {
  if (process.geteuid?.() !== 0) {
    throw livemigError('LME_LAB_NEEDS_ROOT', 'create network namespaces and run libvirt daemons in them', `running as uid ${process.geteuid?.() ?? 'unknown'}; run as root, or use --engine sim`);
  }
  const tools = [
    ['libvirtd', 'libvirt-daemon-system', '--version'], ['virtlogd', 'libvirt-daemon-system', '--version'], ['virsh', 'libvirt-clients', '--version'],
    ['qemu-system-x86_64', 'qemu-system-x86', '--version'], ['ip', 'iproute2', '-V'], ['tc', 'iproute2', '-V'], ['unshare', 'util-linux', '--version'],
  ] as const;
  for (const [tool, pkg, flag] of tools) {
    await runTool({ tool, args: [flag], packageName: pkg, failure: { code: 'LME_LAB_LIBVIRTD', subject: tool } }).catch((err: unknown) => {
      if ((err as { code?: string }).code === 'LME_LAB_TOOL_MISSING') throw err;
    });
  }
}

export class LibvirtEngine implements LabEngineBase {
  readonly kind = 'libvirt' as const;
  readonly hosts: Record<LabHostName, LabHostInfo>;
  /** nova's owner of every instance: the domains' metadata and the log lines' request context. */
  readonly owner: LabDomainOwner = { user: 'lab', userId: randomUUID().replace(/-/g, ''), project: 'livemig-lab', projectId: randomUUID().replace(/-/g, '') };
  /** What the report should say about this engine's runs. */
  readonly notes: string[] = [];
  private currentAccel: Accel;
  private kvmBooted = false;
  private closed = false;

  private constructor(
    private readonly options: LibvirtEngineOptions,
    readonly network: LabNetwork,
    readonly libvirt: LabLibvirt,
    private readonly image: LinuxGuestImage,
    accel: Accel,
  ) {
    this.hosts = labHostsIn(network, options.run.path);
    this.currentAccel = accel;
  }

  static async create(options: LibvirtEngineOptions): Promise<LibvirtEngine> {
    await checkLibvirtPrerequisites();
    const image = await buildLinuxGuest();
    const accel = options.accel ?? (libvirtKvmProblem() === null ? 'kvm' : 'tcg');
    const network = await LabNetwork.create({ prefix: LAB_PREFIX, rate: options.rate });
    let libvirt: LabLibvirt;
    try {
      libvirt = await LabLibvirt.start(network, options.run.path);
    } catch (err) {
      await network.destroy().catch(() => undefined);
      throw err;
    }
    const engine = new LibvirtEngine(options, network, libvirt, image, accel);
    try {
      // A killed run's daemons are found by their pid files' paths in the run directory.
      for (const daemon of Object.values(libvirt.daemons)) {
        for (const name of ['libvirtd', 'virtlogd']) {
          const pid = await readPid(join(daemon.dir, `${name}.pid`));
          if (pid !== null) recordPid(options.run, pid);
        }
      }
      for (const name of ['src', 'dst'] as const) await writeFile(engine.hosts[name].novaLog, '');
      // A new daemon probes QEMU's capabilities when first asked (4 s here): in a cloud that is long
      // done before a migration, so it is done now, not inside the first migration's destination.
      await Promise.all(Object.values(libvirt.daemons).map((d) => d.virsh('domcapabilities', '--virttype', 'qemu')));
    } catch (err) {
      await engine.close().catch(() => undefined);
      throw err;
    }
    return engine;
  }

  get accel(): Accel {
    return this.currentAccel;
  }

  daemon(host: LabHostName): LibvirtDaemon {
    return this.libvirt.daemons[host];
  }

  /** What the exporter watches: each host's libvirt through its read-only socket. */
  readOnlySockets(): { host: LabHostName; socket: string }[] {
    return (['src', 'dst'] as const).map((host) => ({ host, socket: this.daemon(host).roSocket }));
  }

  /** Creates the VM's domain on a host and waits until its guest dirties its memory. */
  async boot(spec: LabVmSpec, host: LabHostName): Promise<RunningVm> {
    for (;;) {
      if (this.closed) throw livemigError('LME_LAB_QEMU', `${spec.name} on ${host}`, 'the lab is shutting down');
      const accel = this.currentAccel;
      const started = Date.now();
      const pid = await this.create(spec, host, accel);
      try {
        if (accel === 'kvm' && !this.kvmBooted) {
          if (!(await this.waitForConsole(spec, host, () => true, KVM_FIRST_OUTPUT_MS))) {
            await this.destroy(spec.name, host);
            this.currentAccel = 'tcg';
            this.notes.push(`KVM: the Linux guest wrote nothing on its console within ${KVM_FIRST_OUTPUT_MS / 1000} s under KVM (it hangs early on some machines), so the domains run under TCG`);
            continue;
          }
          this.kvmBooted = true;
        }
        const dirtying = await this.waitForConsole(spec, host, (lines) => lines.includes('dirtying'), BOOT_TIMEOUT_MS - (Date.now() - started));
        if (!dirtying) throw livemigError('LME_LAB_QEMU', `${spec.name} on ${host}`, `the guest did not start dirtying its memory within ${BOOT_TIMEOUT_MS} ms; console: ${JSON.stringify((await this.console(spec.name, host)).slice(-500))}`);
      } catch (err) {
        await this.destroy(spec.name, host).catch(() => undefined);
        throw err;
      }
      return this.vmOn(spec, host, pid);
    }
  }

  /** The VM as it runs on a host now (after a migration there). */
  vmOn(spec: LabVmSpec, host: LabHostName, pid: number | null): RunningVm {
    return { spec, host, pid, stop: () => this.destroy(spec.name, host) };
  }

  /** The domain's QEMU on a host, by its libvirt pid file; noted in the run's pids so that a killed run's QEMU is found. */
  async qemuPid(name: string, host: LabHostName): Promise<number | null> {
    const pid = await readPid(join(this.daemon(host).dir, 'run', 'qemu', `${name}.pid`));
    if (pid !== null) recordPid(this.options.run, pid);
    return pid;
  }

  /** Whether the domain runs on a host. */
  async runs(name: string, host: LabHostName): Promise<boolean> {
    const { stdout } = await this.daemon(host).virsh('list', '--name');
    return stdout.split('\n').map((l) => l.trim()).includes(name);
  }

  async close(): Promise<void> {
    this.closed = true;
    const failures: unknown[] = [];
    await this.libvirt.stop().catch((err: unknown) => failures.push(err));
    await this.network.destroy().catch((err: unknown) => failures.push(err));
    if (failures.length > 0) throw failures[0];
  }

  private async create(spec: LabVmSpec, host: LabHostName, accel: Accel): Promise<number | null> {
    const daemon = this.daemon(host);
    const file = join(this.options.run.path, `${spec.name}.xml`);
    await writeFile(file, labDomainXml({ spec, image: this.image, accel, owner: this.owner, createdAtMs: Date.now(), runDir: this.options.run.path }));
    await rm(this.consolePath(spec.name, host), { force: true });
    await daemon.virsh('create', file);
    return this.qemuPid(spec.name, host);
  }

  /** `virsh destroy`; a domain already gone (migrated away, or never started) is fine. */
  private async destroy(name: string, host: LabHostName): Promise<void> {
    await this.daemon(host).virsh('destroy', name).catch(async (err: unknown) => {
      if (await this.runs(name, host).catch(() => true)) throw err;
    });
  }

  private consolePath(name: string, host: LabHostName): string {
    return join(this.daemon(host).qemuLogDir, labDomainSerialPath(name).slice('/var/log/libvirt/qemu/'.length));
  }

  private async console(name: string, host: LabHostName): Promise<string> {
    return readFile(this.consolePath(name, host), 'utf8').catch(() => '');
  }

  /** Polls the console file until there is output and `done` holds for its complete lines; false after timeoutMs. */
  private async waitForConsole(spec: LabVmSpec, host: LabHostName, done: (lines: string[]) => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + Math.max(0, timeoutMs);
    for (;;) {
      const text = await this.console(spec.name, host);
      if (text.length > 0 && done(text.split(/\r?\n/).slice(0, -1))) return true;
      if (this.closed) throw livemigError('LME_LAB_QEMU', `${spec.name} on ${host}`, 'the lab is shutting down');
      if (Date.now() > deadline) return false;
      await sleep(POLL_MS);
    }
  }
}

async function readPid(path: string): Promise<number | null> {
  const text = await readFile(path, 'utf8').catch(() => null);
  const pid = Number(text?.trim());
  return Number.isSafeInteger(pid) && pid > 1 ? pid : null;
}
