import { randomUUID } from 'node:crypto';
import type { LabVmSpec, RunningVm } from '../engine.js';
import type { LabMeasurement } from '../report/results.js';
import { toMeasurement } from './records.js';
import type { ScenarioContext } from './types.js';

export const RECORD_TIMEOUT_MS = 60_000;
/**
 * Answered probes a pinged VM needs before it migrates: the exporter's ping.before window (3 s at
 * 100 ms, src/lab/exporter-config.ts), so that window holds a VM that answers, not its boot.
 */
export const PING_REPLIES_BEFORE_MIGRATING = 30;

/** The i-th address from `first` (IPv4, last octet counted up): each lab VM its own address, and so its own MAC. */
export function nthLanAddress(first: string, i: number): string {
  const [a, b, c, d] = first.split('.').map(Number) as [number, number, number, number];
  return `${a}.${b}.${c}.${d + i}`;
}

export function dirtySpec(name: string, flavor: string, memoryMiB: number, fillMiB: number, stressedMiB: number): LabVmSpec {
  return { name, flavor, memoryMiB, fillMiB, stressedMiB, instanceUuid: randomUUID(), guest: 'dirty', labels: { stressed_mib: String(stressedMiB) } };
}

/** One live migration by the orchestrator, measured by the exporter (its closed record). */
export async function migrateAndMeasure(ctx: ScenarioContext, running: RunningVm, step: string): Promise<{ measurement: LabMeasurement; running: RunningVm }> {
  const pinged = running.spec.pingAddress !== undefined;
  await ctx.waitForExporter(running.spec.name, running.host, pinged ? { pingReplies: PING_REPLIES_BEFORE_MIGRATING } : {});
  const since = Date.now();
  const gauge = pinged ? ctx.records.watchSeries(`livemig_migration_current_postcopy_outage_seconds{vm="${running.spec.name}"}`) : undefined;
  let migration;
  try {
    migration = await ctx.orchestrator.migrate(running);
  } catch (err) {
    await gauge?.stop();
    throw err;
  }
  const record = await ctx.records.waitForRecord(running.spec.name, since, {
    withPing: pinged,
    withNova: ctx.novaLogs,
    // Not cut short by Ctrl-C: the demo's first Ctrl-C lets the migration under way be measured.
    timeoutMs: RECORD_TIMEOUT_MS,
  });
  const liveMax = (await gauge?.stop()) ?? null;
  ctx.step(step);
  return { measurement: toMeasurement(record, running.spec, step, 0, liveMax), running: migration.running };
}

/** Boots each VM, migrates it once src -> dst, stops it. */
export async function migrateEachOnce(ctx: ScenarioContext, vms: readonly LabVmSpec[], stepOf: (spec: LabVmSpec) => string): Promise<LabMeasurement[]> {
  const out: LabMeasurement[] = [];
  for (const spec of vms) {
    if (ctx.signal.aborted) break;
    let running = await ctx.orchestrator.boot(spec, 'src');
    try {
      const result = await migrateAndMeasure(ctx, running, stepOf(spec));
      running = result.running;
      out.push(result.measurement);
    } finally {
      await running.stop();
    }
  }
  return out;
}
