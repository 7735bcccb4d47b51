import { dirtySpec, migrateEachOnce } from './common.js';
import type { Scenario } from './types.js';

/**
 * Tables 3 and 4 scaled to this machine: one VM size, the stressed (dirtied) memory in steps.
 * Every step is its own VM (sweep-64, sweep-128, ...): the dashboards' per-VM gauges hold one
 * migration per VM, and the guest's load is fixed at boot. Steps start above what pre-copy could
 * finish within QEMU's 300 ms downtime-limit at 1 Gbit/s (about 34 MiB), so every step is hybrid.
 */
export const SWEEP_MEMORY_MIB = 512;
export const SWEEP_FILL_MIB = 32;
export const SWEEP_STEPS_MIB = [64, 128, 192, 256] as const;

export function stressSweep(steps: readonly number[] = SWEEP_STEPS_MIB): Scenario {
  const vms = steps.map((mib) => dirtySpec(`sweep-${mib}`, 'xl', SWEEP_MEMORY_MIB, SWEEP_FILL_MIB, mib));
  return {
    name: 'stress-sweep',
    vms,
    migrations: vms.length,
    needsLinuxGuest: false,
    notes: [
      `one ${SWEEP_MEMORY_MIB} MiB VM (flavor label xl), ${SWEEP_FILL_MIB} MiB touched once, stressed memory ${steps.join(', ')} MiB; the study: a 16 GB x-large VM, 256..8192 MB`,
    ],
    run: (ctx) => migrateEachOnce(ctx, vms, (spec) => String(spec.stressedMiB)),
  };
}
