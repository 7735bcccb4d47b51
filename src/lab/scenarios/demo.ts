import type { RunningVm } from '../engine.js';
import type { LabMeasurement } from '../report/results.js';
import { dirtySpec, migrateAndMeasure } from './common.js';
import type { Scenario } from './types.js';

/** VMs with different loads migrating back and forth, for the dashboards, until stopped (or --count). */
export const DEMO_PAUSE_MS = 2_000;

export function demo(count?: number): Scenario {
  const vms = [
    dirtySpec('demo-a', 's', 256, 32, 16),
    dirtySpec('demo-b', 'm', 512, 32, 64),
    dirtySpec('demo-c', 'l', 512, 64, 128),
  ];
  return {
    name: 'demo',
    vms,
    migrations: count ?? null,
    needsLinuxGuest: false,
    notes: ['three VMs (stressed 16, 64, 128 MiB) migrate in turn between src and dst until stopped'],
    run: async (ctx) => {
      const running: RunningVm[] = [];
      const out: LabMeasurement[] = [];
      try {
        for (const spec of vms) running.push(await ctx.orchestrator.boot(spec, 'src'));
        for (let i = 0; !ctx.signal.aborted && (ctx.count === undefined || i < ctx.count); i++) {
          const index = i % running.length;
          const vm = running[index] as RunningVm;
          const result = await migrateAndMeasure(ctx, vm, `${vm.spec.name} ${vm.host}->${vm.host === 'src' ? 'dst' : 'src'}`);
          running[index] = result.running;
          out.push(result.measurement);
          await new Promise((resolve) => setTimeout(resolve, DEMO_PAUSE_MS));
        }
      } finally {
        await Promise.all(running.map((vm) => vm.stop().catch(() => undefined)));
      }
      return out;
    },
  };
}
