import type { LabEngineBase, LabOrchestrator, LabVmSpec } from '../engine.js';
import type { LabMeasurement } from '../report/results.js';
import type { ExporterRecords } from './records.js';

export const SCENARIO_NAMES = ['stress-sweep', 'flavors', 'outage', 'outage-causes', 'demo'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

export interface ScenarioContext {
  engine: LabEngineBase;
  orchestrator: LabOrchestrator;
  records: ExporterRecords;
  /** The exporter follows the hosts' nova logs: records get nova's figures. */
  novaLogs: boolean;
  /** Aborted on Ctrl-C (demo runs until then). */
  signal: AbortSignal;
  /** A migration finished (the progress bar). */
  step(label: string): void;
  /**
   * Resolves once the exporter watches the VM's monitor on that host (before a migration starts)
   * and, with `pingReplies`, has that many answered probes of the VM with none lost since.
   */
  waitForExporter(vm: string, host: string, options?: { pingReplies?: number }): Promise<void>;
  /** The demo's number of migrations (default: until stopped). */
  count?: number;
}

export interface Scenario {
  name: ScenarioName;
  /** Every VM the scenario may run, known up front: the exporter's config lists them. */
  vms: LabVmSpec[];
  /** Migrations it will run (the progress bar's total); null: until stopped. */
  migrations: number | null;
  needsLinuxGuest: boolean;
  /** The destination's announce-rounds (outage: 0). */
  announceRounds?: number;
  /** A blackhole of the VM's address during post-copy (outage). */
  postcopyBlackhole?: { delayMs: number; lengthMs: number };
  /** QEMU max-postcopy-bandwidth in bytes/s, when not the link rate. */
  postcopyBandwidth?: number;
  /** Why it needs a QMP engine (qemu or sim), when it does: the libvirt engine refuses it with this reason. */
  needsQmpEngine?: string;
  /** Why it needs real QEMU on the lab's network (its frames, its page faults), when it does: other engines refuse it with this reason. */
  needsQemuEngine?: string;
  run(ctx: ScenarioContext): Promise<LabMeasurement[]>;
  notes: string[];
}
