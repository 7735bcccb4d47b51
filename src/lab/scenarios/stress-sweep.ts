import { dirtySpec, migrateEachOnce } from './common.js';
import type { Scenario } from './types.js';

/**
 * Tables 3 and 4 scaled to this machine: one VM size, the stressed (dirtied) memory in steps.
 * Every step is its own VM (sweep-64, sweep-128, ...): the dashboards' per-VM gauges hold one
 * migration per VM, and the guest's load is fixed at boot. Steps start above what pre-copy could
 * finish within QEMU's 300 ms downtime-limit at 1 Gbit/s (about 34 MiB), so every step is hybrid.
 * Each VM is labelled `stressed_mib` (its step) and `stress_step_mib` (the sweep's step, see
 * sweepStepMiB): the study's Tables 3 and 4 both have 1024 and 2048 MB, and only their step
 * (256 or 1024 MB) tells them apart, so the study dashboard shows each step's sweep apart.
 */
export const SWEEP_MEMORY_MIB = 512;
export const SWEEP_FILL_MIB = 32;
export const SWEEP_STEPS_MIB = [64, 128, 192, 256] as const;

/**
 * The step of a sweep: the smallest gap between its distinct stressed sizes (the size itself for
 * a sweep of one), so 256, 512, ... 2048 is a sweep in 256 MiB steps, as the study's Table 3.
 */
export function sweepStepMiB(steps: readonly number[]): number {
  const sorted = [...new Set(steps)].sort((a, b) => a - b);
  let step = sorted.length === 1 ? (sorted[0] as number) : Infinity;
  for (let i = 1; i < sorted.length; i++) step = Math.min(step, (sorted[i] as number) - (sorted[i - 1] as number));
  return step;
}

export function stressSweep(steps: readonly number[] = SWEEP_STEPS_MIB): Scenario {
  const step = String(sweepStepMiB(steps));
  const vms = steps.map((mib) => {
    const spec = dirtySpec(`sweep-${mib}`, 'xl', SWEEP_MEMORY_MIB, SWEEP_FILL_MIB, mib);
    return { ...spec, labels: { ...spec.labels, stress_step_mib: step } };
  });
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
