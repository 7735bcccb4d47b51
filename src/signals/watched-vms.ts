import type { VmConfig } from '../config/schema.js';
import type { VmMeta } from '../tracker/tracker.js';

/** The VMs the exporter watches: those of the config, then libvirt's domains of other names. */
export class WatchedVms {
  private discovered: VmConfig[] = [];

  constructor(private configured: readonly VmConfig[]) {}

  /** The config was reloaded. */
  configure(vms: readonly VmConfig[]): void {
    this.configured = vms;
  }

  /** libvirt's running domains; a configured VM of the same name wins over the domain. Whether they changed. */
  discover(vms: readonly VmConfig[]): boolean {
    const configured = new Set(this.configured.map((vm) => vm.name));
    const discovered = vms.filter((vm) => !configured.has(vm.name));
    const changed = JSON.stringify(discovered) !== JSON.stringify(this.discovered);
    this.discovered = discovered;
    return changed;
  }

  all(): VmConfig[] {
    return [...this.configured, ...this.discovered];
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
