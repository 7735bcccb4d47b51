import type { VmConfig } from '../config/schema.js';
import type { VmMeta } from '../tracker/tracker.js';

/**
 * The VMs the exporter watches: those of the config, then libvirt's domains of other names, from
 * every host whose libvirt is watched. A domain on two hosts (during its migration) is one VM.
 */
export class WatchedVms {
  private readonly discovered = new Map<string, VmConfig[]>();
  private merged: VmConfig[] = [];

  constructor(private configured: readonly VmConfig[]) {}

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
    this.merged = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
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
