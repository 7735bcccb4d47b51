import { linearFit, type LinearFit } from './linear-fit.js';

/** What the lab reports about one migration: every figure read from the exporter's record. */
export interface LabMeasurement {
  /** Step label in the scenario's table: the flavor (s, m, l, xl) or the stressed memory. */
  step: string;
  vm: string;
  flavor: string;
  memoryMiB: number;
  /** Memory the guest touched before the migration (filled once, plus the stressed range). */
  allocatedMiB: number;
  stressedMiB: number;
  /** From here on: the exporter's record (/api/v1/migrations). */
  recordId: string;
  result: string | null;
  mode: string;
  durationSeconds: number | null;
  transferredBytes: number | null;
  precopyBytes: number | null;
  postcopyBytes: number | null;
  qemuDowntimeMs: number | null;
  /** Ping figures (VMs that answer ping only). */
  blackoutSeconds: number | null;
  postcopyOutageSeconds: number | null;
  /** The largest value of the live gauge livemig_migration_current_postcopy_outage_seconds scraped while it ran. */
  livePostcopyOutageMaxSeconds: number | null;
  /** Bytes the source sent on its migration interfaces (the hosts' counters: the study's iftop), when the record has them. */
  interfaceBytes: number | null;
  /** Migration time from nova-compute's log lines (the study's method), when the record has them. */
  novaSeconds: number | null;
  novaResult: string | null;
  durationEvidence: string | null;
  transferredEvidence: string | null;
  /** The causes the record named: the switch-over blackout's, and each post-copy outage's (with its seconds). */
  blackoutCause?: string | null;
  postcopyOutageCauses?: { cause: string; seconds: number }[];
}

export interface ScenarioReport {
  scenario: string;
  engine: 'qemu' | 'sim' | 'libvirt';
  /** True for --engine sim: every output says SIMULATED. */
  simulated: boolean;
  /** Migration link rate as given (tc syntax) and in bytes per second. */
  bandwidth: string;
  bandwidthBytesPerSecond: number;
  accel: string | null;
  startedAt: string;
  measurements: LabMeasurement[];
  /** Fits against stressed memory (bytes): present when at least two different stressed sizes completed. */
  fits: { transferred: LinearFit; time: LinearFit; timeVsBytes: LinearFit } | null;
  notes: string[];
}

export const MiB = 1024 * 1024;

/** Linear fits of transferred bytes and time against stressed bytes, over completed migrations. */
export function stressFits(measurements: readonly LabMeasurement[]): ScenarioReport['fits'] {
  const usable = measurements.filter((m) => m.result === 'completed' && m.transferredBytes !== null && m.durationSeconds !== null);
  if (new Set(usable.map((m) => m.stressedMiB)).size < 2) return null;
  return {
    transferred: linearFit(usable.map((m) => [m.stressedMiB * MiB, m.transferredBytes as number])),
    time: linearFit(usable.map((m) => [m.stressedMiB * MiB, m.durationSeconds as number])),
    // Time against bytes: its slope is one over the rate the migrations ran at.
    timeVsBytes: linearFit(usable.map((m) => [m.transferredBytes as number, m.durationSeconds as number])),
  };
}
