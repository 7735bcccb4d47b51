import { randomUUID } from 'node:crypto';
import { LivemigError } from '../../errors.js';
import type { LabVmFaults, LabVmSpec } from '../engine.js';
import type { LabMeasurement } from '../report/results.js';
import { migrateEachOnce, nthLanAddress } from './common.js';
import type { Scenario } from './types.js';

/**
 * Each cause of a post-copy outage, made on purpose, so that the exporter's naming of it can be
 * checked (docs/outage-causes.md). The Linux guest (TCG, pinged every 100 ms from the lan
 * namespace) migrates hybrid; with --count N, N runs of each cause, in turn, each on a VM of
 * its own (its own address and MAC, so the LAN keeps nothing from the one before):
 * - not-announced: the destination announces nothing (announce-rounds 0, arp_notify 0);
 * - announced-network-slow: announcements on, but the LAN loses the VM's address (a blackhole
 *   route in the lan namespace) from RESUME for NETWORK_SLOW_BLACKHOLE.lengthMs;
 * - guest-stalled: post-copy at GUEST_STALLED_BANDWIDTH while the guest dirties its memory, so
 *   its vCPU waits for pages and answers late (postcopy-blocktime stays off: docs/outage-causes.md);
 * - clean: announcements on, no fault: at most a blackout of the switch-over itself.
 */
export const OUTAGE_CAUSE_KINDS = ['clean', 'not-announced', 'announced-network-slow', 'guest-stalled'] as const;
export type InjectedCause = (typeof OUTAGE_CAUSE_KINDS)[number];

export const CAUSES_FIRST_ADDRESS = '198.19.0.100';
/** Addresses .100 to .249 of the lab's LAN, four a round. */
export const OUTAGE_CAUSES_MAX_COUNT = 37;
export const NETWORK_SLOW_BLACKHOLE = { delayMs: 0, lengthMs: 2_500 };
export const GUEST_STALLED_BANDWIDTH = 2 * 1024 * 1024;

const FAULTS: Record<InjectedCause, LabVmFaults & { arpNotify: boolean }> = {
  clean: { arpNotify: true, postcopyBlackhole: null },
  'not-announced': { arpNotify: false, announceRounds: 0, postcopyBlackhole: null },
  'announced-network-slow': { arpNotify: true, postcopyBlackhole: NETWORK_SLOW_BLACKHOLE },
  'guest-stalled': { arpNotify: true, postcopyBlackhole: null, postcopyBandwidth: GUEST_STALLED_BANDWIDTH },
};

export function outageCauses(count = 1): Scenario {
  if (count > OUTAGE_CAUSES_MAX_COUNT) throw new LivemigError('LME_FLAG_INVALID', ['--count', `outage-causes runs at most ${OUTAGE_CAUSES_MAX_COUNT} rounds (one address per VM), not ${count}`]);
  const vms = Array.from({ length: count }, (_, round) => OUTAGE_CAUSE_KINDS.map((cause, i) => causeVm(cause, round * OUTAGE_CAUSE_KINDS.length + i))).flat();
  return {
    name: 'outage-causes',
    vms,
    migrations: vms.length,
    needsLinuxGuest: true,
    needsQmpEngine:
      'it sets each destination QEMU\'s announcements and post-copy bandwidth over QMP and pings the VM on the lab\'s LAN, ' +
      'but libvirt owns its domains\' monitors and the libvirt engine\'s guest has user-mode networking (nothing to ping)',
    needsQemuEngine: 'its causes are real frames on the destination\'s tap and real post-copy page faults, which the SIMULATED engine does not have',
    notes: [
      `the Linux guest under TCG, pinged every 100 ms from the lan namespace; ${count} run(s) of each cause in turn: ${OUTAGE_CAUSE_KINDS.join(', ')}`,
      'not-announced: announce-rounds 0 and arp_notify 0 at the destination',
      `announced-network-slow: the LAN loses the VM for ${NETWORK_SLOW_BLACKHOLE.lengthMs / 1000} s from RESUME (blackhole route in the lan namespace)`,
      `guest-stalled: post-copy at ${GUEST_STALLED_BANDWIDTH / 1024 / 1024} MiB/s while the guest dirties 32 MiB`,
    ],
    run: (ctx) => migrateEachOnce(ctx, vms, (spec) => injectedCauseOf(spec)),
  };
}

/** The cause a VM of this scenario was made for (its `injected_cause` label). */
export function injectedCauseOf(spec: LabVmSpec): InjectedCause {
  return spec.labels.injected_cause as InjectedCause;
}

function causeVm(cause: InjectedCause, i: number): LabVmSpec {
  const { arpNotify, ...faults } = FAULTS[cause];
  return {
    name: `cause-${i + 1}`,
    flavor: 's',
    memoryMiB: 128,
    fillMiB: 16,
    stressedMiB: 32,
    instanceUuid: randomUUID(),
    guest: 'linux',
    labels: { stressed_mib: '32', injected_cause: cause },
    pingAddress: nthLanAddress(CAUSES_FIRST_ADDRESS, i),
    arpNotify,
    faults,
  };
}

/** A post-copy outage this short (one probe period, and the probe's own slack) is no outage of the run's. */
export const CLEAN_MAX_OUTAGE_SECONDS = 0.2;

/**
 * What the exporter named for one run: the cause of its longest post-copy outage longer than
 * one period; else guest-stalled when a shorter one was named so (a stalled guest answers late
 * and loses a probe here and there rather than a block of them); else the cause of its
 * blackout, `clean` when there is none or it was the switch-over itself. Pure.
 */
export function namedCause(m: Pick<LabMeasurement, 'blackoutCause' | 'postcopyOutageCauses'>): string {
  const all = m.postcopyOutageCauses ?? [];
  const outages = all.filter((o) => o.seconds > CLEAN_MAX_OUTAGE_SECONDS);
  const longest = outages.reduce<{ cause: string; seconds: number } | null>((a, o) => (a && a.seconds >= o.seconds ? a : o), null);
  if (longest) return longest.cause;
  if (all.some((o) => o.cause === 'guest-stalled')) return 'guest-stalled';
  if (!m.blackoutCause || m.blackoutCause === 'switch-over') return 'clean';
  return m.blackoutCause;
}

export interface CauseTally {
  injected: InjectedCause;
  runs: number;
  right: number;
  /** Named cause -> runs. */
  named: Record<string, number>;
}

/** Per injected cause, how the runs were named. */
export function tallyCauses(runs: readonly { injected: InjectedCause; named: string }[]): CauseTally[] {
  return OUTAGE_CAUSE_KINDS.map((injected) => {
    const mine = runs.filter((r) => r.injected === injected);
    const named: Record<string, number> = {};
    for (const r of mine) named[r.named] = (named[r.named] ?? 0) + 1;
    return { injected, runs: mine.length, right: mine.filter((r) => r.named === injected).length, named };
  });
}

/** The confusion table in markdown: injected causes as rows, named causes as columns. */
export function confusionTable(tallies: readonly CauseTally[]): string {
  const columns = [...OUTAGE_CAUSE_KINDS, ...new Set(tallies.flatMap((t) => Object.keys(t.named)).filter((c) => !(OUTAGE_CAUSE_KINDS as readonly string[]).includes(c)))];
  const head = `| injected \\ named | ${columns.join(' | ')} | right |`;
  const rule = `|---|${columns.map(() => '---').join('|')}|---|`;
  const rows = tallies.map((t) => `| ${t.injected} | ${columns.map((c) => t.named[c] ?? 0).join(' | ')} | ${t.right}/${t.runs} (${t.runs ? Math.round((100 * t.right) / t.runs) : 0} %) |`);
  return [head, rule, ...rows].join('\n');
}
