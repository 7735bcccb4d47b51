/**
 * The ping source at 10,000 probes/s (target: at most 0.05 ms of CPU per probe, exporter and
 * fping together).
 *
 * In a network namespace made for the run (`ip route add local 198.18.4.0/22 dev lo` makes every
 * address of it answer), the real PingSource probes N targets 198.18.4.1.. every P ms with fping
 * run inside the namespace (its netns option), sharded as it shards them; its callbacks feed the
 * real ExporterMetrics (onRtt -> pingRtt) and a probe counter plus a lateness measurement
 * (onObservation), and render() is scraped once a second. After a warm-up, for S seconds:
 *   - probes/s: sum of the targets' counters.sent deltas / time; loss from counters.received;
 *   - CPU: this process (process.cpuUsage: the exporter side, every thread) and the fping
 *     processes (/proc/PID/stat utime + stime of the pids in processes(), in CLK_TCK ticks);
 *   - memory: this process's RSS and heap, fping's VmRSS;
 *   - lateness: for each PingObservation, wallMs - sentWallMs (from the probe's send to the
 *     exporter knowing its fate).
 * Baseline, in the same run: the same fping command lines (fpingCommand of src/sources/ping/fping.ts,
 * same shards) with their stdout read and discarded, for the same time: fping's CPU per probe
 * alone, and the ratio (exporter + fping) / (fping alone).
 *
 *   node --import tsx bench/ping.ts [--targets 1000] [--period-ms 100] [--seconds 30] [--warmup-seconds 5]
 *                                   [--baseline 1] [--variant-read-ms -1] [--variant-interval-ms 0]
 * Smoke: --targets 50 --seconds 3 (about 10 s).
 *
 * Needs root (ip netns, fping's raw socket). The namespace and every process the benchmark
 * started are removed at the end, on error and on SIGINT/SIGTERM.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import type { Clock } from '../src/clock.js';
import { ExporterMetrics, type VmView } from '../src/metrics/exporter-metrics.js';
import { pingTargetView } from '../src/metrics/ping-metrics.js';
import type { PingObservation } from '../src/observations.js';
import { BatchedOutput } from '../src/sources/ping/batched-output.js';
import { DEFAULT_READ_INTERVAL_MS, fpingCommand, type FpingSettings } from '../src/sources/ping/fping.js';
import { sendIntervalMs } from '../src/sources/ping/shards.js';
import { PING_DEFAULTS, PingSource } from '../src/sources/ping/source.js';
import type { PingProcessState, PingTarget } from '../src/sources/ping/types.js';
import { TestNetns } from '../test/helpers/netns.js';
import { fixed, flag, loadText, machineCpu, median, otherShare, printHeader, ratio, stopChild, table, verdict } from './common.js';

const TARGETS = Math.max(1, Math.floor(flag('targets', 1000)));
const PERIOD_MS = flag('period-ms', PING_DEFAULTS.periodMs);
const SECONDS = Math.max(1, flag('seconds', 30));
const WARMUP_SECONDS = flag('warmup-seconds', Math.min(5, Math.max(1, SECONDS / 2)));
/** 0 skips the fping-alone baseline (for profiling the exporter side alone). */
const BASELINE = flag('baseline', 1) !== 0;
/**
 * N >= 0 adds a third run (the variant): the same shards with stdout drained every N ms instead
 * of PingSource's DEFAULT_READ_INTERVAL_MS, 0 meaning a pipe read on every wake-up (a read per
 * line, as a plain reader does). Neither variant option changes the exporter side or the
 * PASS/FAIL lines.
 */
const VARIANT_READ_MS = flag('variant-read-ms', -1);
/** X > 0 also runs that variant (or adds to it) with fping's -i set to X ms instead of PingSource's. */
const VARIANT_INTERVAL_MS = flag('variant-interval-ms', 0);
const VARIANT = VARIANT_READ_MS >= 0 || VARIANT_INTERVAL_MS > 0;
const VARIANT_SETTINGS = { readEveryMs: VARIANT_READ_MS >= 0 ? VARIANT_READ_MS : DEFAULT_READ_INTERVAL_MS, intervalMs: VARIANT_INTERVAL_MS };
const TIMEOUT_MS = PING_DEFAULTS.timeoutMs;
const FPING = PING_DEFAULTS.fpingPath;
const TARGET_MS_PER_PROBE = 0.05;
/** "Sustained": at least this share of the nominal rate, and no fping restart. */
const SUSTAINED_SHARE = 0.99;
const FIRST_ADDRESS = ipToInt('198.18.4.0') + 1;
const BLOCK = 1024; // one /22

if (TARGETS > 60_000) throw new Error('--targets: at most 60,000');

const NOMINAL_RATE = (TARGETS * 1000) / PERIOD_MS;

/** pino at info, as the exporter runs by default, writing to /dev/null: log calls cost what they cost. */
const logger = pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: true }));

/**
 * Wall time with sub-millisecond resolution (Date.now(), the exporter's clock, counts whole ms,
 * which would round every lateness to a whole ms). Both are read once per batch of results.
 */
const clock: Clock = {
  wallMs: () => performance.timeOrigin + performance.now(),
  monoMs: () => performance.now(),
};

// A full GC on demand, for the live heap outside the measured window (the same as node --expose-gc).
setFlagsFromString('--expose-gc');
const fullGc = runInNewContext('gc') as () => void;

/** Heap still referenced after a full garbage collection, bytes. */
function liveHeap(): number {
  fullGc();
  return process.memoryUsage().heapUsed;
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const TICK_MS = 1000 / CLK_TCK;

// ---------------------------------------------------------------------------------------------
// Cleanup: the namespace and the processes this run started, also on SIGINT/SIGTERM.

const cleanups: (() => Promise<void>)[] = [];

async function cleanupAll(): Promise<void> {
  while (cleanups.length > 0) {
    const fn = cleanups.pop() as () => Promise<void>;
    try {
      await fn();
    } catch (err) {
      console.error(`cleanup: ${(err as Error).message}`);
    }
  }
}

function forget(fn: () => Promise<void>): void {
  const i = cleanups.indexOf(fn);
  if (i !== -1) cleanups.splice(i, 1);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.log(`\n${signal}: stopping the fping processes and removing the namespace`);
    void cleanupAll().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------
// Helpers

function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

function intToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

function vmName(i: number): string {
  return `instance-${(0x1000 + i).toString(16).padStart(8, '0')}`;
}

/** utime and stime of a process, ms; null once it is gone. */
function processCpuMs(pid: number): { user: number; system: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold spaces: fields are counted after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return { user: Number(fields[11]) * TICK_MS, system: Number(fields[12]) * TICK_MS };
  } catch {
    return null;
  }
}

function processRssKb(pid: number): number | null {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('VmRSS:'));
    return line ? Number(line.split(/\s+/)[1]) : null;
  } catch {
    return null;
  }
}

function processComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

function processCmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  } catch {
    return [];
  }
}

/**
 * CPU of a set of processes over a window: each pid's CPU when first seen in the window (0 for
 * a pid that appeared during it, such as a restarted fping) and when last seen.
 */
class ProcessesCpu {
  private readonly seen = new Map<number, { first: { user: number; system: number }; last: { user: number; system: number } }>();
  private started = false;

  start(pids: readonly number[]): void {
    for (const pid of pids) {
      const cpu = processCpuMs(pid);
      if (cpu !== null) this.seen.set(pid, { first: cpu, last: cpu });
    }
    this.started = true;
  }

  sample(pids: readonly number[]): void {
    if (!this.started) return;
    for (const pid of pids) {
      const cpu = processCpuMs(pid);
      if (cpu === null) continue;
      const entry = this.seen.get(pid);
      if (entry) entry.last = cpu;
      else this.seen.set(pid, { first: { user: 0, system: 0 }, last: cpu });
    }
  }

  perPidMs(): number[] {
    return [...this.seen.values()].map((e) => e.last.user + e.last.system - e.first.user - e.first.system);
  }

  totalMs(): number {
    return this.perPidMs().reduce((a, b) => a + b, 0);
  }

  systemMs(): number {
    return [...this.seen.values()].reduce((sum, e) => sum + e.last.system - e.first.system, 0);
  }
}

/**
 * Latency histogram with buckets 1 % wide (log scale) from 1 us to 100 s: constant memory and
 * a few ns per record, so measuring 300,000 probes changes neither the heap nor the CPU figures.
 */
class LogHistogram {
  private static readonly MIN = 0.001;
  private static readonly GROWTH = Math.log(1.01);
  private readonly counts = new Uint32Array(1900);
  n = 0;
  max = -Infinity;
  /** Values at or below zero (the result was known before the estimated send time). */
  nonPositive = 0;

  record(ms: number): void {
    this.n++;
    if (ms > this.max) this.max = ms;
    if (ms <= 0) this.nonPositive++;
    const index = ms <= LogHistogram.MIN ? 0 : Math.floor(Math.log(ms / LogHistogram.MIN) / LogHistogram.GROWTH);
    const i = Math.min(this.counts.length - 1, index);
    this.counts[i] = (this.counts[i] as number) + 1;
  }

  /** Upper bound of the bucket holding the nearest-rank quantile (at most 1 % high). */
  quantile(q: number): number {
    if (this.n === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let cumulative = 0;
    for (let i = 0; i < this.counts.length; i++) {
      cumulative += this.counts[i] as number;
      if (cumulative >= rank) return Math.min(this.max, LogHistogram.MIN * Math.exp((i + 1) * LogHistogram.GROWTH));
    }
    return this.max;
  }
}

function sumCounters(source: PingSource): { sent: number; received: number; duplicates: number } {
  let sent = 0;
  let received = 0;
  let duplicates = 0;
  for (const t of source.snapshot()) {
    sent += t.counters.sent;
    received += t.counters.received;
    duplicates += t.counters.duplicates;
  }
  return { sent, received, duplicates };
}

const livePids = (processes: readonly PingProcessState[]): number[] => processes.flatMap((p) => (p.pid === null ? [] : [p.pid]));

/** Runs `tick` once a second (on a fixed grid) for `seconds`; returns the window's wall ms. */
async function everySecond(seconds: number, tick: () => Promise<void> | void): Promise<number> {
  const start = performance.now();
  const end = start + seconds * 1000;
  for (let k = 1; ; k++) {
    const next = Math.min(end, start + k * 1000);
    const wait = next - performance.now();
    if (wait > 0) await sleep(wait);
    if (next >= end) return performance.now() - start;
    await tick();
  }
}

// ---------------------------------------------------------------------------------------------
// Exporter side: PingSource + ExporterMetrics

interface ExporterRun {
  seconds: number;
  sent: number;
  received: number;
  duplicates: number;
  observations: number;
  exporterUserMs: number;
  exporterSystemMs: number;
  fpingMs: number;
  fpingSystemMs: number;
  fpingPerProcessMs: number[];
  fpingRssKb: number;
  fpingComm: string;
  restarts: number;
  errors: number;
  firstError: string;
  other: number | null;
  memoryStart: NodeJS.MemoryUsage;
  memoryEnd: NodeJS.MemoryUsage;
  /** [seconds into the window, heap used bytes, RSS bytes], once a second (before each scrape). */
  memoryTimeline: [number, number, number][];
  liveHeapStart: number;
  liveHeapEnd: number;
  lateness: LogHistogram;
  latenessLost: LogHistogram;
  afterReply: LogHistogram;
  renderMs: number[];
  renderBytes: number;
  processes: PingProcessState[];
  cmdlines: string[][];
}

async function runExporter(netns: string, targets: readonly PingTarget[]): Promise<ExporterRun> {
  let measuring = false;
  let observations = 0;
  const lateness = new LogHistogram();
  const latenessLost = new LogHistogram();
  const afterReply = new LogHistogram();
  let errors = 0;
  let firstError = '';

  const vms: VmView[] = targets.map((t) => ({ name: t.vm as string, flavor: 'bench', labels: {} }));
  // Inputs as src/exporter.ts builds them, with no QEMU monitors or migrations: the ping series,
  // livemig_source_up for ping and one livemig_vm_info per VM.
  const metrics = new ExporterMetrics(
    {
      monitors: () => [],
      health: () => [{ source: 'ping', host: 'bench', up: source.health().up }],
      activeMigrations: () => [],
      records: () => [],
      recordCount: () => 0,
      vms: () => vms,
      pingTargets: () =>
        source.snapshot().map(pingTargetView),
    },
    clock,
    3_600_000,
  );
  const source: PingSource = new PingSource({
    clock,
    logger,
    periodMs: PERIOD_MS,
    timeoutMs: TIMEOUT_MS,
    fpingPath: FPING,
    netns,
    onObservation: (o: PingObservation) => {
      if (!measuring) return;
      observations++;
      const late = o.wallMs - o.sentWallMs;
      if (o.rttMs === null) {
        latenessLost.record(late);
      } else {
        lateness.record(late);
        afterReply.record(late - o.rttMs);
      }
    },
    onRtt: (target, rttMs) => metrics.pingRtt(target.vm ?? target.address, rttMs / 1000),
    onError: (err) => {
      errors++;
      firstError ||= err.message;
    },
  });
  const stopSource = () => source.stop();
  cleanups.push(stopSource);

  await source.setTargets(targets);
  const processes = source.processes();
  if (processes.some((p) => p.pid === null)) throw new Error(`fping did not start: ${JSON.stringify(processes)} ${firstError}`);
  await sleep(WARMUP_SECONDS * 1000);
  // A scrape during warm-up, so render()'s code is compiled before the window too.
  await metrics.render();
  if (errors > 0 || !source.health().up) throw new Error(`ping source not healthy after warm-up: ${errors} errors, first: ${firstError}`);

  const cmdlines = livePids(source.processes()).map(processCmdline);
  const fpingComm = [...new Set(livePids(source.processes()).map(processComm))].join(',');
  const renderMs: number[] = [];
  let renderBytes = 0;
  const fping = new ProcessesCpu();
  const liveHeapStart = liveHeap();
  const restarts0 = source.health().restarts;
  const machine0 = machineCpu();
  const memoryStart = process.memoryUsage();
  const memoryTimeline: [number, number, number][] = [[0, memoryStart.heapUsed, memoryStart.rss]];
  const windowStart = performance.now();
  const counters0 = sumCounters(source);
  const cpu0 = process.cpuUsage();
  fping.start(livePids(source.processes()));
  measuring = true;

  const seconds =
    (await everySecond(SECONDS, async () => {
      fping.sample(livePids(source.processes()));
      const m = process.memoryUsage();
      memoryTimeline.push([(performance.now() - windowStart) / 1000, m.heapUsed, m.rss]);
      const t0 = performance.now();
      const text = await metrics.render();
      renderMs.push(performance.now() - t0);
      renderBytes = text.length;
    })) / 1000;

  fping.sample(livePids(source.processes()));
  const cpu = process.cpuUsage(cpu0);
  const counters1 = sumCounters(source);
  measuring = false;
  const memoryEnd = process.memoryUsage();
  const machine1 = machineCpu();
  const fpingRssKb = livePids(source.processes()).reduce((sum, pid) => sum + (processRssKb(pid) ?? 0), 0);
  const liveHeapEnd = liveHeap();
  const restarts = source.health().restarts - restarts0;
  const finalProcesses = source.processes();

  await stopSource();
  forget(stopSource);

  const exporterMs = (cpu.user + cpu.system) / 1000;
  return {
    seconds,
    sent: counters1.sent - counters0.sent,
    received: counters1.received - counters0.received,
    duplicates: counters1.duplicates - counters0.duplicates,
    observations,
    exporterUserMs: cpu.user / 1000,
    exporterSystemMs: cpu.system / 1000,
    fpingMs: fping.totalMs(),
    fpingSystemMs: fping.systemMs(),
    fpingPerProcessMs: fping.perPidMs(),
    fpingRssKb,
    fpingComm,
    restarts,
    errors,
    firstError,
    other: otherShare(machine0, machine1, exporterMs + fping.totalMs()),
    memoryStart,
    memoryEnd,
    memoryTimeline: [...memoryTimeline, [seconds, memoryEnd.heapUsed, memoryEnd.rss]],
    liveHeapStart,
    liveHeapEnd,
    lateness,
    latenessLost,
    afterReply,
    renderMs,
    renderBytes,
    processes: finalProcesses,
    cmdlines,
  };
}

// ---------------------------------------------------------------------------------------------
// Baseline: the same fping command lines alone, stdout read and discarded

interface BaselineRun {
  seconds: number;
  lines: number;
  /** Chunks read from fping's stdout (a 'data' event, or a read() of the FIFO that returned data). */
  reads: number;
  fpingMs: number;
  fpingSystemMs: number;
  fpingPerProcessMs: number[];
  fpingRssKb: number;
  readerMs: number;
  other: number | null;
  cmdlines: string[][];
  exited: string[];
}

function settingsFor(netns: string, addresses: readonly string[], intervalMs = 0): FpingSettings {
  const interval = intervalMs > 0 ? intervalMs : sendIntervalMs(PERIOD_MS, addresses.length);
  return { binary: FPING, periodMs: PERIOD_MS, timeoutMs: TIMEOUT_MS, intervalMs: interval, netns };
}

/** How a baseline run differs from PingSource's way: 0 = the same. */
interface BaselineVariant {
  /** Read stdout from a FIFO every this many ms instead of on every line. */
  readEveryMs: number;
  /** fping -i in ms instead of sendIntervalMs(). */
  intervalMs: number;
}

function describeVariant(v: BaselineVariant): string {
  const parts: string[] = [];
  if (v.intervalMs > 0) parts.push(`-i ${v.intervalMs}`);
  parts.push(v.readEveryMs > 0 ? `stdout drained every ${v.readEveryMs} ms` : 'stdout read per line');
  return `variant: same shards, ${parts.join(', ')}`;
}

async function runBaseline(netns: string, shards: readonly PingProcessState[], variant: BaselineVariant = { readEveryMs: DEFAULT_READ_INTERVAL_MS, intervalMs: 0 }): Promise<BaselineRun> {
  const { readEveryMs } = variant;
  let measuring = false;
  let lines = 0;
  let reads = 0;
  const exited: string[] = [];
  const children: ChildProcess[] = [];
  const outputs: BatchedOutput[] = [];
  const stopChildren = async () => {
    await Promise.all(children.map((c) => stopChild(c)));
    for (const output of outputs.splice(0)) output.finish();
  };
  cleanups.push(stopChildren);
  // One line per probe's fate (reply or timed out); counting them is all this reader does.
  const count = (chunk: Buffer, length: number) => {
    if (!measuring) return;
    reads++;
    for (let i = chunk.indexOf(10); i !== -1 && i < length; i = chunk.indexOf(10, i + 1)) lines++;
  };
  for (const shard of shards) {
    const { command, args } = fpingCommand(settingsFor(netns, shard.targets, variant.intervalMs), shard.targets);
    let child: ChildProcess;
    if (readEveryMs > 0) {
      // Read the way PingSource reads (batched-output.ts).
      const output = new BatchedOutput(readEveryMs, (chunk) => count(chunk, chunk.length));
      outputs.push(output);
      try {
        child = spawn(command, args, { stdio: ['ignore', output.writerFd, 'pipe'] });
      } finally {
        output.closeWriter();
      }
      output.start();
    } else {
      child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout?.on('data', (chunk: Buffer) => count(chunk, chunk.length));
    }
    children.push(child);
    const stderr: string[] = [];
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr.push(chunk.toString('utf8'));
      if (stderr.length > 5) stderr.shift();
    });
    child.once('exit', (code, signal) => {
      if (measuring) exited.push(`shard ${shard.shard}: exited (${code ?? signal}): ${stderr.join('').trim().split('\n').at(-1) ?? ''}`);
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
  }
  const pids = children.map((c) => c.pid as number);
  await sleep(WARMUP_SECONDS * 1000);
  const cmdlines = pids.map(processCmdline);

  const fping = new ProcessesCpu();
  const machine0 = machineCpu();
  const cpu0 = process.cpuUsage();
  fping.start(pids);
  measuring = true;
  const seconds = (await everySecond(SECONDS, () => fping.sample(pids))) / 1000;
  fping.sample(pids);
  const cpu = process.cpuUsage(cpu0);
  measuring = false;
  const machine1 = machineCpu();
  const fpingRssKb = pids.reduce((sum, pid) => sum + (processRssKb(pid) ?? 0), 0);

  await stopChildren();
  forget(stopChildren);
  const readerMs = (cpu.user + cpu.system) / 1000;
  return {
    seconds,
    lines,
    reads,
    fpingMs: fping.totalMs(),
    fpingSystemMs: fping.systemMs(),
    fpingPerProcessMs: fping.perPidMs(),
    fpingRssKb,
    readerMs,
    other: otherShare(machine0, machine1, readerMs + fping.totalMs()),
    cmdlines,
    exited,
  };
}

// ---------------------------------------------------------------------------------------------
// Report

const mb = (bytes: number) => fixed(bytes / 1048576, 1);
const pct = (share: number | null) => (share === null ? '-' : `${share.toFixed(0)}%`);

function report(e: ExporterRun, b: BaselineRun | null, batched: BaselineRun | null): string[] {
  const exporterMs = e.exporterUserMs + e.exporterSystemMs;
  const rate = e.sent / e.seconds;
  const loss = e.sent > 0 ? 1 - e.received / e.sent : NaN;
  const perProbe = (ms: number, probes: number) => (probes > 0 ? ms / probes : NaN);
  const exporterPer = perProbe(exporterMs, e.sent);
  const fpingPer = perProbe(e.fpingMs, e.sent);
  const totalPer = exporterPer + fpingPer;
  const basePer = b ? perProbe(b.fpingMs, b.lines) : NaN;

  console.log(`## ${TARGETS} targets every ${PERIOD_MS} ms (nominal ${fixed(NOMINAL_RATE, 0)} probes/s), ${fixed(e.seconds, 1)} s measured after ${WARMUP_SECONDS} s of warm-up`);
  console.log(
    `fping processes: ${e.processes.length} (${e.processes.map((p) => p.targets.length).join(' + ')} targets), comm ${e.fpingComm}; ` +
      `restarts during the window: ${e.restarts}; source errors: ${e.errors}${e.firstError ? ` (first: ${e.firstError})` : ''}`,
  );
  const first = e.cmdlines[0] ?? [];
  console.log(`fping command line (shard 0, targets elided): ${first.slice(0, first.indexOf('--') + 1).join(' ')} ${first[first.indexOf('--') + 1] ?? ''} ...`);
  console.log('');
  const rows: string[][] = [
    [
      'exporter: PingSource + ExporterMetrics, with fping',
      String(e.sent),
      fixed(rate, 0),
      fixed(100 * loss, 3),
      fixed(exporterMs, 0),
      fixed(e.fpingMs, 0),
      fixed(exporterPer, 4),
      fixed(fpingPer, 4),
      fixed(totalPer, 4),
      b ? ratio(totalPer, basePer) : '-',
      pct(e.other),
    ],
  ];
  if (b) {
    rows.push([
      'baseline: same fping command lines alone',
      String(b.lines),
      fixed(b.lines / b.seconds, 0),
      '-',
      `(${fixed(b.readerMs, 0)})`,
      fixed(b.fpingMs, 0),
      `(${fixed(perProbe(b.readerMs, b.lines), 4)})`,
      fixed(basePer, 4),
      fixed(basePer, 4),
      '1.00x',
      pct(b.other),
    ]);
  }
  if (batched) {
    const per = perProbe(batched.fpingMs, batched.lines);
    rows.push([
      describeVariant(VARIANT_SETTINGS),
      String(batched.lines),
      fixed(batched.lines / batched.seconds, 0),
      '-',
      `(${fixed(batched.readerMs, 0)})`,
      fixed(batched.fpingMs, 0),
      `(${fixed(perProbe(batched.readerMs, batched.lines), 4)})`,
      fixed(per, 4),
      fixed(per, 4),
      b ? ratio(per, basePer) : '-',
      pct(batched.other),
    ]);
  }
  console.log(
    table(
      ['side', 'probes', 'probes/s', 'loss %', 'exporter CPU ms', 'fping CPU ms', 'exporter ms/probe', 'fping ms/probe', 'together ms/probe', 'vs fping alone', 'other procs'],
      rows,
    ),
  );
  const shares = (perPid: number[], seconds: number) => perPid.map((ms) => `${fixed((100 * ms) / (seconds * 1000), 1)}%`).join(', ');
  console.log(
    `exporter process: ${fixed((100 * exporterMs) / (e.seconds * 1000), 1)}% of a core (user ${fixed(e.exporterUserMs, 0)} ms, system ${fixed(e.exporterSystemMs, 0)} ms); ` +
      `fping with the exporter: ${shares(e.fpingPerProcessMs, e.seconds)} of a core per process, ${fixed((100 * e.fpingSystemMs) / Math.max(1, e.fpingMs), 0)}% of it system time` +
      (b ? `; fping alone: ${shares(b.fpingPerProcessMs, b.seconds)}, ${fixed((100 * b.fpingSystemMs) / Math.max(1, b.fpingMs), 0)}% system` : ''),
  );
  console.log(`observations in the window: ${e.observations} (counters.sent delta ${e.sent}); duplicates ${e.duplicates}`);
  if (b) {
    console.log(
      `baseline: probes counted as fping's stdout lines; (parenthesised) the benchmark process reading and discarding them, not part of "fping alone"; ` +
        `${fixed(b.lines / Math.max(1, b.reads), 2)} lines per read` +
        (batched ? ` (variant: ${fixed(batched.lines / Math.max(1, batched.reads), 1)})` : ''),
    );
    const same = b.cmdlines.length === e.cmdlines.length && b.cmdlines.every((c, i) => c.join(' ') === (e.cmdlines[i] ?? []).join(' '));
    console.log(`baseline ran the same command lines as PingSource (/proc/PID/cmdline): ${same ? 'yes' : 'NO'}`);
    for (const line of b.exited) console.log(`baseline ${line}`);
  }
  if (batched) {
    for (const line of batched.exited) console.log(`variant ${line}`);
  }
  console.log('');

  const m0 = e.memoryStart;
  const m1 = e.memoryEnd;
  console.log(
    table(
      ['memory, MB', 'RSS', 'heap used', 'heap total', 'external'],
      [
        ['exporter process at window start', mb(m0.rss), mb(m0.heapUsed), mb(m0.heapTotal), mb(m0.external)],
        ['exporter process at window end', mb(m1.rss), mb(m1.heapUsed), mb(m1.heapTotal), mb(m1.external)],
        [`fping (${e.processes.length} processes, VmRSS) with the exporter`, mb(e.fpingRssKb * 1024), '-', '-', '-'],
        ...(b ? [[`fping alone (VmRSS)`, mb(b.fpingRssKb * 1024), '-', '-', '-']] : []),
      ],
    ),
  );
  const timeline = e.memoryTimeline;
  const points = [0, 0.25, 0.5, 0.75, 1].map((f) => timeline[Math.round(f * (timeline.length - 1))] as [number, number, number]);
  console.log(
    `exporter heap used / RSS over the window, MB: ${points.map(([t, heap, rss]) => `${fixed(t, 0)} s ${mb(heap)}/${mb(rss)}`).join(', ')}; ` +
      `max ${mb(Math.max(...timeline.map(([, heap]) => heap)))}/${mb(Math.max(...timeline.map(([, , rss]) => rss)))}`,
  );
  console.log(`exporter live heap (after a full GC, outside the window): ${mb(e.liveHeapStart)} MB at window start, ${mb(e.liveHeapEnd)} MB at window end`);
  console.log('');

  const row = (label: string, h: LogHistogram) =>
    h.n === 0
      ? [label, '0', '-', '-', '-', '-', '-']
      : [label, String(h.n), fixed(h.quantile(0.5), 2), fixed(h.quantile(0.9), 2), fixed(h.quantile(0.99), 2), fixed(h.max, 2), String(h.nonPositive)];
  console.log('how late probe results reach the metrics, ms (wallMs - sentWallMs of each PingObservation; buckets 1% wide)');
  console.log(
    table(
      ['observations', 'n', 'p50', 'p90', 'p99', 'max', '<= 0'],
      [
        row('answered: send -> exporter knows', e.lateness),
        row('answered: fping got reply -> exporter knows', e.afterReply),
        row('lost: send -> exporter knows', e.latenessLost),
      ],
    ),
  );
  console.log('');
  const renders = [...e.renderMs].sort((a, b2) => a - b2);
  const renderTotal = e.renderMs.reduce((a, x) => a + x, 0);
  console.log(
    `scrapes: render() once a second, ${e.renderMs.length} in the window, ${fixed(e.renderBytes / 1048576, 2)} MB each; wall ms median ${fixed(median(renders), 2)}, ` +
      `max ${fixed(renders.at(-1) ?? NaN, 2)}; ${fixed(renderTotal, 0)} ms in all = at most ${fixed((100 * renderTotal) / Math.max(1, exporterMs), 0)}% of the exporter's CPU`,
  );
  console.log('');

  const sustained = rate >= SUSTAINED_SHARE * NOMINAL_RATE && e.restarts === 0 && e.errors === 0;
  return [
    `${verdict(sustained)}  ${fixed(rate, 0)} probes/s sustained for ${fixed(e.seconds, 0)} s, loss ${fixed(100 * loss, 3)}%, ${e.restarts} fping restarts (target ${fixed(NOMINAL_RATE, 0)}/s; ≥ ${SUSTAINED_SHARE * 100}% counts)`,
    `${verdict(totalPer <= TARGET_MS_PER_PROBE)}  ${fixed(totalPer, 4)} ms CPU per probe, exporter ${fixed(exporterPer, 4)} + fping ${fixed(fpingPer, 4)} (target ≤ ${TARGET_MS_PER_PROBE}; fping alone ${fixed(basePer, 4)}, ${b ? ratio(totalPer, basePer) : 'n/a'})`,
  ];
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  await printHeader(`Ping: PingSource + ExporterMetrics at ${fixed(NOMINAL_RATE, 0)} probes/s, CPU, memory and lateness`);
  const fpingVersion = execFileSync(FPING, ['-v'], { encoding: 'utf8' }).trim();
  const skew = clock.wallMs() - Date.now();
  console.log(
    `${fpingVersion}; CLK_TCK ${CLK_TCK}; logger pino level info -> /dev/null; ` +
      `wall clock performance.timeOrigin + now() (sub-ms; minus Date.now(): ${fixed(skew, 2)} ms)`,
  );

  await TestNetns.removeStale('lmebench');
  const netns = new TestNetns('lmebench');
  cleanups.push(() => netns.cleanup());
  const ns = await netns.namespace('ping');
  const last = FIRST_ADDRESS + TARGETS - 1;
  const routes: string[] = [];
  for (let block = FIRST_ADDRESS - 1; block <= last; block += BLOCK) {
    routes.push(`${intToIp(block)}/22`);
    await netns.route(ns, 'local', `${intToIp(block)}/22`, 'dev', 'lo');
  }
  const targets: PingTarget[] = Array.from({ length: TARGETS }, (_, i) => ({ address: intToIp(FIRST_ADDRESS + i), vm: vmName(i), labels: {} }));
  console.log(`namespace ${ns}: lo up, route local ${routes.join(', ')} dev lo; targets ${targets[0]?.address} .. ${targets.at(-1)?.address}`);
  console.log('');

  const exporter = await runExporter(ns, targets);
  const baseline = BASELINE ? await runBaseline(ns, exporter.processes) : null;
  const batched = VARIANT ? await runBaseline(ns, exporter.processes, VARIANT_SETTINGS) : null;
  const verdicts = report(exporter, baseline, batched);
  console.log(`load average at end: ${loadText()}`);
  console.log('targets:');
  for (const line of verdicts) console.log(`  ${line}`);
}

try {
  await main();
  process.exitCode = 0;
} catch (err) {
  console.log(`BROKEN: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
} finally {
  await cleanupAll();
}
