import type { HostRegistry } from '../hosts/registry.js';
import type { MetricsInputs } from '../metrics/exporter-metrics.js';
import { isPostcopyOutagePhase } from '../qemu/status.js';
import type { MigrationStore } from '../records/store.js';
import type { MigrationTracker } from '../tracker/tracker.js';
import type { Signals } from './signals.js';
import type { WatchedVms } from './watched-vms.js';

/** What /metrics reads at scrape time: the signals' views and health, the tracker, the records. */
export function metricsInputs(parts: { signals: Signals; hosts: HostRegistry; tracker: MigrationTracker; store: MigrationStore; vms: WatchedVms }): MetricsInputs {
  const { signals, hosts, tracker, store, vms } = parts;
  return {
    monitors: () => signals.views.monitors(),
    health: () => [...signals.health(), ...hosts.health()],
    activeMigrations: () => {
      const outages = signals.views.currentOutages();
      const causes = signals.views.outageCauses(outages);
      return tracker.activeMigrations().map((m) => {
        const outage = isPostcopyOutagePhase(m.phase) ? outages.get(m.vm) : undefined;
        return {
          vm: m.vm,
          phase: m.phase,
          sourceHost: m.source.host,
          destinationHost: m.destination?.host ?? null,
          startedAtMs: m.startedAtMs,
          ...(outage !== undefined ? { postcopyOutageSeconds: outage } : {}),
          ...(outage && causes.has(m.vm) ? { postcopyOutageCause: causes.get(m.vm) } : {}),
        };
      });
    },
    records: () => store.all(),
    recordCount: () => store.size,
    // A discovered domain's interfaces (its XML's target devices) go on livemig_vm_info only.
    vms: () =>
      vms.all().map((vm) => ({
        name: vm.name,
        flavor: vm.flavor,
        labels: vm.interfaces?.length ? { ...vm.labels, interfaces: vm.interfaces.map((i) => i.device).join(',') } : vm.labels,
      })),
    pingTargets: () => signals.views.pingTargets(),
  };
}
