/**
 * Fault suite, kill -9: the exporter SIGKILLed at seeded random moments of real QEMU migrations,
 * coming back during the migration or only after its end (with the source QEMU kept or gone).
 * Every migration gets exactly one record, and no record claims a result, mode or byte count that
 * QEMU contradicts. `node --import tsx test/fault/report.ts` prints the same figures as a table.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { QemuLab } from '../helpers/qemu-lab.js';
import { KILL_TIMINGS, runKill9Campaign, summarize } from './kill9-campaign.js';

const KILLS = Number(process.env.LME_FAULT_KILLS ?? 21);
const SEED = Number(process.env.LME_FAULT_SEED ?? 13);

describe.runIf(requireEnvironment(missingTools('qemu-system-x86_64', 'nasm'), needsRoot()))('fault suite: kill -9 of the exporter during real migrations', () => {
  const lab = new QemuLab({ memoryMiB: 128, fillMiB: 64, dirtyMiB: 32 });
  beforeAll(() => lab.init());
  afterAll(() => lab.cleanup());

  it(`${KILLS} kills (seed ${SEED}): one record per migration, none wrong`, { timeout: KILLS * 40_000 }, async () => {
    const trials = await runKill9Campaign(lab, { kills: KILLS, seed: SEED, log: (line) => console.log(line) });
    const s = summarize(trials);
    console.log(JSON.stringify(s));
    expect(s.kills).toBeGreaterThanOrEqual(20);
    for (const timing of KILL_TIMINGS) expect(s.byTiming[timing]).toBeGreaterThan(0);
    expect(trials.filter((t) => t.records !== 1 || t.open !== 0).map((t) => t.index)).toEqual([]);
    expect(trials.filter((t) => t.wrong.length > 0).map((t) => `${t.index}: ${t.wrong.join(',')}`)).toEqual([]);
    expect(s.missingResult).toBe(0);
    // A figure is left out (mode unknown) or given as a lower bound only where no QEMU could
    // give it any more: the source gone before the exporter came back.
    const unexplained = trials.filter((t) => (t.missing.length > 0 || t.partial.length > 0) && t.timing !== 'down-across-end-source-gone');
    expect(unexplained.map((t) => `${t.index} ${t.timing}: ${[...t.missing, ...t.partial].join(',')}`)).toEqual([]);
  });
});
