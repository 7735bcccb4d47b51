/**
 * `lab --scenario outage-causes`: each cause of an outage made on purpose with real QEMU (the
 * Linux guest under TCG, tcpdump on the destination's tap, postcopy-blocktime), and the cause the
 * exporter named for it. LME_CAUSE_RUNS runs of each cause (default 5; .ci/run sets fewer to keep
 * CI short; bench/outage-causes.ts runs more).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { confusionTable, injectedCauseOf, namedCause, OUTAGE_CAUSE_KINDS, outageCauses, tallyCauses } from '../../src/lab/scenarios/outage-causes.js';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { LabRun, leftovers, noLeftovers } from '../helpers/lab-cli.js';

const RUNS = Number(process.env.LME_CAUSE_RUNS ?? 5);
/** About 25 s a migration (boot, migrate, the ping figures' `after`). */
const PER_RUN_MS = 45_000;

describe.runIf(requireEnvironment(missingTools('qemu-system-x86_64', 'ip', 'tc', 'fping', 'tcpdump', 'gcc', 'runuser'), needsRoot()))('lab --scenario outage-causes', () => {
  let out = '';
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'lme-causes-'));
  });
  afterAll(async () => {
    if (out) await rm(out, { recursive: true, force: true });
  });

  it(`names the injected cause of ${RUNS} run(s) of each cause, at least 90 % right per cause; nothing left behind`, async () => {
    const lab = LabRun.start(['--scenario', 'outage-causes', '--engine', 'qemu', '--count', String(RUNS), '--out', out]);
    await lab.finished();
    const measurements = lab.report().measurements;
    const specs = outageCauses(RUNS).vms;
    expect(measurements.map((m) => m.vm)).toEqual(specs.map((s) => s.name));
    const runs = measurements.map((m, i) => ({ injected: injectedCauseOf(specs[i] as (typeof specs)[number]), named: namedCause(m), m }));
    for (const r of runs) {
      console.log(`${r.m.vm} injected ${r.injected}: named ${r.named}; blackout ${r.m.blackoutSeconds} s ${r.m.blackoutCause}; post-copy ${JSON.stringify(r.m.postcopyOutageCauses)}`);
    }
    const tallies = tallyCauses(runs);
    console.log(confusionTable(tallies));
    for (const r of runs) expect(r.m, r.m.vm).toMatchObject({ result: 'completed', mode: 'hybrid' });
    for (const t of tallies) {
      expect(t.runs).toBe(RUNS);
      expect(t.right / t.runs, `${t.injected}: ${JSON.stringify(t.named)}`).toBeGreaterThanOrEqual(0.9);
    }
    expect(leftovers(lab.pid)).toEqual(noLeftovers());
  }, 60_000 + RUNS * OUTAGE_CAUSE_KINDS.length * PER_RUN_MS);

  it('refuses the SIMULATED engine, naming why, before building anything', async () => {
    const lab = LabRun.start(['--scenario', 'outage-causes', '--engine', 'sim', '--out', out]);
    await lab.finished(2);
    expect(lab.stderr).toMatch(/flag --scenario: outage-causes cannot run on engine sim: .*real frames on the destination's tap.*use --engine qemu/);
  }, 30_000);
});
