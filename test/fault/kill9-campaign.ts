/**
 * The kill -9 campaign of the fault suite (issue 13): real QEMU migrations watched by the exporter
 * as a user runs it (its CLI, a config file, a state file), which is SIGKILLed at a random moment
 * of each migration and started again. Three ways to come back, in turn:
 *
 * - `restart-during`: started again a random 0.2-1.5 s after the kill, the migration may still run;
 * - `down-across-end`: started again only after both QEMUs reported the end (the source QEMU is
 *   left as libvirt leaves it until nova's post-migration work: paused, its monitor answering);
 * - `down-across-end-source-gone`: as above, but the source QEMU has exited too before the
 *   exporter comes back (nova destroyed it), so only the destination can tell how it went.
 *
 * Each trial's record is compared with what QEMU itself said: result (the source's final
 * status), mode (post-copy requested and after which pass) and bytes (the source's final
 * ram.transferred). A record that claims a different figure is wrong; one that leaves a figure
 * out (null) is counted apart. Used by kill9.test.ts and report.ts.
 */
import { join } from 'node:path';
import { MigrationDriver, type MigrationOutcome } from '../../src/lab/migrate.js';
import type { MigrationRecord } from '../../src/records/record.js';
import { ExporterProcess } from '../helpers/exporter-process.js';
import { hybridPlan, MiB, type QemuLab } from '../helpers/qemu-lab.js';
import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';

export const KILL_TIMINGS = ['restart-during', 'down-across-end', 'down-across-end-source-gone'] as const;
export type KillTiming = (typeof KILL_TIMINGS)[number];

export interface KillTrial {
  index: number;
  timing: KillTiming;
  /** When the exporter was killed, ms after `migrate` was sent. */
  killAtMs: number;
  /** The source QEMU's status when the kill came (asked of it right then). */
  statusAtKill: string;
  /** The exporter was down this long. */
  downMs: number;
  /** Records of the trial's VM, closed and open, once it settled. */
  records: number;
  open: number;
  record: Pick<MigrationRecord, 'id' | 'result' | 'mode' | 'resumedAfterRestart'> & { transferred: number | null } | null;
  truth: { result: string; mode: string; transferred: number | null; durationMs: number };
  /** Figures the record claims that QEMU contradicts: 'result', 'mode', 'bytes'. */
  wrong: string[];
  /** Figures the record leaves out (null, or mode unknown). */
  missing: string[];
  /** Figures the record gives as a lower bound, saying so (bytes from the last reply before the end). */
  partial: string[];
}

export interface CampaignOptions {
  kills: number;
  seed: number;
  log?: (line: string) => void;
}

/** A small seeded generator (mulberry32): the same seed gives the same kill moments. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TIMEOUT_MS = 60_000;
/** The 128 MiB guest (64 MiB filled, 32 MiB dirtied) at 20 MiB/s. */
const BANDWIDTH = 20 * MiB;
/** About 6.5 s of migration (136 MB at 20 MiB/s), then the source paused after it: every phase gets kills. */
const KILL_WINDOW_MS = 9_000;

function config(dir: string, vm: string, sockets: { src: string; dst: string }): unknown {
  return {
    polling: { idle_interval: '1s', migrating_interval: '100ms', command_timeout: '2s', reconnect_max_backoff: '1s' },
    records: { stale_migration_timeout: '10s', postcopy_paused_timeout: '5s' },
    state_file: join(dir, `${vm}.state.json`),
    libvirt: { discover: 'off' },
    vms: [
      {
        name: vm,
        flavor: 'm',
        monitors: [
          { host: 'src-host', qmp: { unix: sockets.src } },
          { host: 'dst-host', qmp: { unix: sockets.dst } },
        ],
      },
    ],
  };
}

/** The mode QEMU's run had: post-copy asked for after at least one full pass is hybrid. */
export function trueMode(outcome: MigrationOutcome): string {
  if (!outcome.postcopyRequested) return 'precopy';
  return outcome.postcopyRequested.afterPass >= 1 ? 'hybrid' : 'postcopy';
}

async function settledRecords(exporter: ExporterProcess, vm: string): Promise<{ closed: MigrationRecord[]; open: number }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const body = (await (await exporter.get(`/api/v1/migrations?vm=${vm}`)).json()) as { data: MigrationRecord[]; running: unknown[] };
    if (body.data.length > 0 && body.running.length === 0) {
      // Settled: wait a little more, so that a second record made late would show.
      await new Promise((r) => setTimeout(r, 2_000));
      const again = (await (await exporter.get(`/api/v1/migrations?vm=${vm}`)).json()) as { data: MigrationRecord[]; running: unknown[] };
      return { closed: again.data, open: again.running.length };
    }
    if (Date.now() > deadline) return { closed: body.data, open: body.running.length };
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Exporters of the trial under way, for stopAllExporters() when the run is interrupted. */
const live = new Set<ExporterProcess>();

/** SIGKILLs the exporters a trial started (a Ctrl-C of report.ts). */
export async function stopAllExporters(): Promise<void> {
  await Promise.all([...live].map((e) => e.stop('SIGKILL')));
}

export async function runKill9Campaign(lab: QemuLab, options: CampaignOptions): Promise<KillTrial[]> {
  const random = seededRandom(options.seed);
  const trials: KillTrial[] = [];
  for (let index = 0; index < options.kills; index++) {
    const timing = KILL_TIMINGS[index % KILL_TIMINGS.length] as KillTiming;
    const killAtMs = Math.round(random() * KILL_WINDOW_MS);
    const restartAfterMs = 200 + Math.round(random() * 1_300);
    const vm = `vm-kill-${index}`;
    const { src, dst } = await lab.pair();
    const file = join(lab.dir, `${vm}.yml`);
    await writeFile(file, stringify(config(lab.dir, vm, { src: src.observerSocket, dst: dst.observerSocket })));
    const exporters: ExporterProcess[] = [];
    try {
      const first = await ExporterProcess.start(file);
      exporters.push(first);
      live.add(first);
      await first.waitForMonitors(vm, 2);
      const driver = new MigrationDriver({ source: src.qmp, destination: dst.qmp }, hybridPlan({ maxBandwidth: BANDWIDTH }));
      await driver.prepare();
      const startedAt = Date.now();
      await driver.start();
      let killedAt = 0;
      let statusAtKill = '';
      let second: Promise<ExporterProcess> | undefined;
      const killed = (async () => {
        await new Promise((r) => setTimeout(r, killAtMs));
        await first.stop('SIGKILL');
        killedAt = Date.now();
        statusAtKill = String(((await src.qmp.execute('query-migrate')) as { status?: string }).status ?? 'none');
        if (timing === 'restart-during') {
          await new Promise((r) => setTimeout(r, restartAfterMs));
          second = ExporterProcess.start(file);
        }
      })();
      const outcome = await driver.finish(TIMEOUT_MS);
      await killed;
      if (timing === 'down-across-end-source-gone') await src.vm.stop(1_000);
      // Both "down across the end" kinds come back only now; if the kill came after the end, this is just a restart.
      const restarted = await (second ?? ExporterProcess.start(file));
      exporters.push(restarted);
      live.add(restarted);
      const downMs = Date.now() - killedAt;
      const { closed, open } = await settledRecords(restarted, vm);
      const record = closed[0] ?? null;
      const truth = {
        result: outcome.source.finalStatus,
        mode: trueMode(outcome),
        transferred: outcome.source.final?.ram?.transferred ?? null,
        durationMs: outcome.endedMonoMs - outcome.startedMonoMs,
      };
      const transferred = record?.bytes.transferred?.value ?? null;
      const wrong: string[] = [];
      const missing: string[] = [];
      const partial: string[] = [];
      if (record) {
        if (record.result === null) missing.push('result');
        else if (record.result !== truth.result) wrong.push('result');
        if (record.mode === 'unknown') missing.push('mode');
        else if (record.mode !== truth.mode) wrong.push('mode');
        const lowerBound = record.bytes.transferred?.evidence.endsWith('(last reply before the end)') ?? false;
        if (transferred === null) missing.push('bytes');
        // The last progress reply's figure, said to be one: right if it is not more than QEMU's total.
        else if (lowerBound) (truth.transferred !== null && transferred <= truth.transferred ? partial : wrong).push('bytes');
        else if (transferred !== truth.transferred) wrong.push('bytes');
      }
      const trial: KillTrial = {
        index,
        timing,
        killAtMs: killedAt - startedAt,
        statusAtKill,
        downMs,
        records: closed.length,
        open,
        record: record && { id: record.id, result: record.result, mode: record.mode, resumedAfterRestart: record.resumedAfterRestart, transferred },
        truth,
        wrong,
        missing,
        partial,
      };
      trials.push(trial);
      options.log?.(
        `kill ${index + 1}/${options.kills} ${timing}: killed ${trial.killAtMs} ms in (source ${statusAtKill}), down ${downMs} ms; ` +
          `${closed.length} record(s)${open ? `, ${open} open` : ''}: ${record ? `${record.result} ${record.mode} ${transferred}` : '-'}; ` +
          `QEMU: ${truth.result} ${truth.mode} ${truth.transferred}${wrong.length ? `; WRONG ${wrong.join(',')}` : ''}${missing.length ? `; missing ${missing.join(',')}` : ''}`,
      );
      if (wrong.length > 0 || closed.length !== 1) options.log?.(`  exporter log (last restart):\n${restarted.stderr.slice(-6000)}`);
    } finally {
      await Promise.all(exporters.map((e) => e.stop('SIGKILL')));
      for (const e of exporters) live.delete(e);
      await lab.stopAll();
    }
  }
  return trials;
}

/** The campaign's figures, as report.ts prints them and the test checks them. */
export function summarize(trials: readonly KillTrial[]): {
  kills: number;
  byTiming: Record<string, number>;
  records: number;
  notOneRecord: number;
  wrongResult: number;
  wrongMode: number;
  wrongBytes: number;
  missingBytes: number;
  missingResult: number;
  missingMode: number;
  lowerBoundBytes: number;
} {
  const byTiming: Record<string, number> = {};
  for (const t of trials) byTiming[t.timing] = (byTiming[t.timing] ?? 0) + 1;
  const count = (f: (t: KillTrial) => boolean): number => trials.filter(f).length;
  return {
    kills: trials.length,
    byTiming,
    records: trials.reduce((n, t) => n + t.records, 0),
    notOneRecord: count((t) => t.records !== 1 || t.open !== 0),
    wrongResult: count((t) => t.wrong.includes('result')),
    wrongMode: count((t) => t.wrong.includes('mode')),
    wrongBytes: count((t) => t.wrong.includes('bytes')),
    missingBytes: count((t) => t.missing.includes('bytes')),
    missingResult: count((t) => t.missing.includes('result')),
    missingMode: count((t) => t.missing.includes('mode')),
    lowerBoundBytes: count((t) => t.partial.includes('bytes')),
  };
}
