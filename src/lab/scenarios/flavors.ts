import { dirtySpec, migrateEachOnce } from './common.js';
import type { Scenario } from './types.js';

/**
 * Table 2 scaled to this machine: unloaded VMs of four sizes (RAM 1/8 of the study's 2..16 GB),
 * each with the memory its guest allocated scaled the same way from the study's transferred
 * bytes. The guest touches that memory once and then idles: only allocated memory crosses.
 */
export const FLAVORS = [
  { flavor: 's', memoryMiB: 256, fillMiB: 48 },
  { flavor: 'm', memoryMiB: 512, fillMiB: 54 },
  { flavor: 'l', memoryMiB: 1024, fillMiB: 66 },
  { flavor: 'xl', memoryMiB: 2048, fillMiB: 85 },
] as const;

export function flavors(): Scenario {
  const vms = FLAVORS.map((f) => ({ ...dirtySpec(`flavor-${f.flavor}`, f.flavor, f.memoryMiB, f.fillMiB, 0), labels: {} }));
  return {
    name: 'flavors',
    vms,
    migrations: vms.length,
    needsLinuxGuest: false,
    notes: ['RAM and allocated memory are the study\'s scaled by 1/8; unloaded guests (nothing dirtied), so pre-copy may finish before the switch to post-copy (mode precopy)'],
    run: (ctx) => migrateEachOnce(ctx, vms, (spec) => spec.flavor),
  };
}
