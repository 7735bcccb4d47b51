import type { MonitorConfig, VmConfig } from '../../config/schema.js';
import type { DomainDescription } from './domain-xml.js';

/**
 * A discovered domain as a watched VM: named by its domain name, its UUID as the instance UUID
 * (nova's domain UUID is the instance's), nova's flavor, and nova's display name and project as
 * labels (shown on livemig_vm_info, one series per VM).
 */
export function domainVm(domain: DomainDescription, monitors: MonitorConfig[] = []): VmConfig {
  const labels: Record<string, string> = {};
  if (domain.nova?.name) labels.nova_name = domain.nova.name;
  if (domain.nova?.project) labels.nova_project = domain.nova.project;
  return {
    name: domain.name,
    flavor: domain.nova?.flavor ?? '',
    labels,
    pingAddress: null,
    instanceUuid: domain.uuid,
    monitors,
    ...(domain.interfaces.length > 0 ? { interfaces: domain.interfaces.map((i) => ({ ...i })) } : {}),
  };
}
