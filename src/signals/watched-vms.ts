import type { VmConfig } from '../config/schema.js';
import type { VmMeta } from '../tracker/tracker.js';

/** The cap on discovered VMs: about 30 series each, for months. */
export const MAX_DISCOVERED_VMS = 5_000;

/**
 * The VMs the exporter watches: those of the config, then libvirt's domains of other names, from
 * every host whose libvirt is watched. A domain on two hosts (during its migration) is one VM.
 */
export class WatchedVms {
  private readonly discovered = new Map<string, VmConfig[]>();
  private merged: VmConfig[] = [];
  /** Names of discovered domains left out by the cap, already told. */
  private readonly refused = new Set<string>();

  /**
   * `maxDiscovered`: libvirt's domains watched at most (each is a set of series for months); those
   * past it, in name order, are refused and told to `onRefused` once each.
   */
  constructor(
    private configured: readonly VmConfig[],
    private readonly maxDiscovered = MAX_DISCOVERED_VMS,
    private readonly onRefused: (names: string[]) => void = () => {},
  ) {}

  /** The config was reloaded. */
  configure(vms: readonly VmConfig[]): void {
    this.configured = vms;
    this.merge();
  }

  /**
   * libvirt's running domains on one host (`from`: the host's name); a configured VM of the same
   * name wins over the domain. Whether the watched VMs changed.
   */
  discover(vms: readonly VmConfig[], from = ''): boolean {
    const before = JSON.stringify(this.merged);
    this.discovered.set(from, [...vms]);
    this.merge();
    return JSON.stringify(this.merged) !== before;
  }

  all(): VmConfig[] {
    return [...this.configured, ...this.merged];
  }

  /** The configured VM a libvirt domain is (by name, else by instance UUID), else the domain's own name. */
  vmOfDomain(name: string, uuid: string | null): string {
    const configured = this.configured.find((vm) => vm.name === name) ?? (uuid ? this.configured.find((vm) => vm.instanceUuid === uuid) : undefined);
    return configured?.name ?? name;
  }

  private merge(): void {
    const configured = new Set(this.configured.map((vm) => vm.name));
    const uuids = new Set(this.configured.flatMap((vm) => (vm.instanceUuid ? [vm.instanceUuid] : [])));
    const byName = new Map<string, VmConfig>();
    for (const [, vms] of [...this.discovered].sort(([a], [b]) => a.localeCompare(b))) {
      for (const vm of vms) {
        if (configured.has(vm.name) || (vm.instanceUuid && uuids.has(vm.instanceUuid))) continue;
        const seen = byName.get(vm.name);
        // The same domain on two hosts: one VM, whose monitors are both hosts'.
        if (seen) byName.set(vm.name, { ...seen, monitors: [...seen.monitors, ...vm.monitors.filter((m) => !seen.monitors.some((s) => s.id === m.id))] });
        else byName.set(vm.name, vm);
      }
    }
    const all = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
    this.merged = all.slice(0, this.maxDiscovered);
    const refused = all.slice(this.maxDiscovered).map((vm) => vm.name).filter((name) => !this.refused.has(name));
    if (this.refused.size > 100_000) this.refused.clear();
    for (const name of refused) this.refused.add(name);
    if (refused.length > 0) this.onRefused(refused);
  }

  named(name: string): VmConfig | undefined {
    return this.all().find((vm) => vm.name === name);
  }

  /** The VM of a nova instance UUID (VMs configured with instance_uuid). */
  withInstanceUuid(uuid: string): VmConfig | undefined {
    return this.all().find((vm) => vm.instanceUuid === uuid);
  }

  labelsOf(name: string): Record<string, string> {
    return this.meta().find((vm) => vm.name === name)?.labels ?? {};
  }

  /** Name and labels (flavor among them) of each VM, as records carry them. */
  meta(): VmMeta[] {
    return this.all().map((vm) => ({ name: vm.name, labels: { ...vm.labels, ...(vm.flavor ? { flavor: vm.flavor } : {}) } }));
  }
}
