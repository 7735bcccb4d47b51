import type { MonitorConfig, VmConfig } from '../../config/schema.js';
import type { DomainDescription } from './domain-xml.js';

/**
 * A discovered domain as a watched VM: named by its domain name, its UUID as the instance UUID
 * (nova's domain UUID is the instance's), nova's flavor, and nova's display name and project as
 * labels (shown on livemig_vm_info, one series per VM).
 */
export function domainVm(domain: DomainDescription, monitors: MonitorConfig[] = []): VmConfig {
  const labels: Record<string, string> = {};
  if (domain.nova?.name) labels.nova_name = bounded(domain.nova.name);
  if (domain.nova?.project) labels.nova_project = bounded(domain.nova.project);
  return {
    name: domain.name,
    flavor: bounded(domain.nova?.flavor ?? ''),
    labels,
    pingAddress: null,
    instanceUuid: domain.uuid,
    monitors,
    ...(domain.interfaces.length > 0 ? { interfaces: domain.interfaces.map((i) => ({ ...i })) } : {}),
  };
}

/** A label value from a domain's XML, cut as the config's label values are (128 characters). */
function bounded(value: string): string {
  return value.length > 128 ? value.slice(0, 128) : value;
}
