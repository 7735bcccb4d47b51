/**
 * What a valid config allows but probably does not mean. A host name that no `hosts` entry
 * declares is this machine (so configs written before `hosts` existed keep working): a typo of a
 * declared name, or a forgotten entry, silently reads that host's sockets and logs here.
 */
import { closest } from './places.js';
import type { Config } from './schema.js';

export interface UndeclaredHost {
  /** Key path of the reference, e.g. ['vms', 0, 'monitors', 1, 'host']. */
  path: (string | number)[];
  name: string;
  /** What to do, with a leading separator: ` (did you mean "hv1"?)`. */
  hint: string;
}

/** Every `host` in vms[].monitors[] and logs[] that no hosts entry declares, nor names this machine. */
export function undeclaredHosts(config: Config, localNames: readonly string[]): UndeclaredHost[] {
  const declared = config.hosts.map((h) => h.name);
  // `local` is what an absent logs[].host means; libvirt.host names this machine's domains.
  const here = new Set(['local', ...localNames, ...(config.libvirt.host ? [config.libvirt.host] : [])]);
  const references: { path: (string | number)[]; name: string }[] = [
    ...config.vms.flatMap((vm, i) => vm.monitors.map((m, j) => ({ path: ['vms', i, 'monitors', j, 'host'], name: m.host }))),
    ...config.logs.map((log, i) => ({ path: ['logs', i, 'host'], name: log.host })),
  ];
  return references
    .filter((ref) => !declared.includes(ref.name) && !here.has(ref.name))
    .map((ref) => {
      const typo = closest(ref.name, declared);
      const hint = typo ? ` (did you mean "${typo}"?)` : declared.length ? ` (hosts declares ${declared.join(', ')})` : '; declare it in hosts if it is another machine';
      return { ...ref, hint };
    });
}
