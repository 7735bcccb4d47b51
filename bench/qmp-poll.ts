/**
 * CPU time of the exporter per query-migrate poll (target: at most 1 ms of CPU per poll).
 *
 * The exporter side is the real code path: QmpSource -> QmpMonitor -> openQmpSession ->
 * QmpStreamClient over a unix socket, the real framing and parseQueryMigrate, and every
 * observation fed to the real MigrationTracker (and its MigrationStore). Two peers:
 *   - replay: bench/qmp-replay-peer.ts in a child process, answering query-migrate with the
 *     captured QEMU 7.2 source reply in post-copy (the biggest reply) and query-status with the
 *     captured finish-migrate run state. A migration is in progress, so each poll is two round
 *     trips (query-migrate + query-status), as in production.
 *   - qemu: a real qemu-system-x86_64 (-machine none), idle: `{}` to query-migrate, one round
 *     trip per poll.
 * Only this process's CPU is counted (process.cpuUsage: user + system, all threads, GC included);
 * the peers are other processes. Baseline, in the same run: a bare loop on a plain socket to the
 * same peer that sends the same commands and JSON.parses each reply, nothing else.
 *
 *   node --import tsx bench/qmp-poll.ts [--polls 2000] [--warmup 200] [--rounds 5] [--interval-ms 1] [--peer 1|2]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { systemClock } from '../src/clock.js';
import type { VmConfig } from '../src/config/schema.js';
import { MigrationStore } from '../src/records/store.js';
import { MigrationTracker } from '../src/tracker/tracker.js';
import type { Observation } from '../src/observations.js';
import { QmpMonitor } from '../src/sources/qmp/monitor.js';
import { QmpSource } from '../src/sources/qmp/source.js';
import { fixed, flag, LineReader, loadText, printHeader, ratio, spawnTsx, stopChild, table, verdict } from './common.js';

const POLLS = Math.max(1, flag('polls', 2000));
const WARMUP = Math.max(1, flag('warmup', 200));
const ROUNDS = Math.max(1, flag('rounds', 5));
const INTERVAL_MS = flag('interval-ms', 1);
/** 1 runs the replay peer only, 2 the real QEMU only; 0 both. */
const ONLY_PEER = flag('peer', 0);
const TARGET_US_PER_POLL = 1000;
const RUN_TIMEOUT_MS = 120_000;
const QEMU_BINARY = process.env.QEMU_BINARY ?? 'qemu-system-x86_64';

const MIGRATE_FIXTURE = 'query-migrate.7.2.src.postcopy-active.json';
const STATUS_FIXTURE = 'query-status.7.2.src.finish-migrate-after-dst-killed.json';

type Variant = 'tracker' | 'no-op sink' | 'bare';

interface Run {
  polls: number;
  userUs: number;
  systemUs: number;
  wallMs: number;
  errors: number;
  /** Wall µs inside MigrationTracker.observe() per observation (tracker runs only). */
  observeUs?: number;
}

interface Peer {
  name: string;
  describe: string;
  socket: string;
  /** Commands one poll sends once the migration state is settled. */
  commandsPerPoll: string[];
  stop(): Promise<string>;
}

/** pino at info, as the exporter runs by default, writing to /dev/null: log calls cost what they cost. */
const logger = pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: true }));

async function runExporter(socket: string, sinkKind: 'tracker' | 'no-op sink'): Promise<Run> {
  const vm = 'bench-vm';
  const store = new MigrationStore({ maxRecords: 1000, maxAgeMs: 30 * 86_400_000, clock: systemClock });
  const tracker = new MigrationTracker({ clock: systemClock, logger, store, vms: [{ name: vm, labels: { flavor: 'bench' } }] });
  // Time inside tracker.observe(), measured apart: the tracker's share without the noise of a difference.
  let observeMs = 0;
  let observed = 0;
  const timedObserve = (o: Observation) => {
    const t0 = performance.now();
    tracker.observe(o);
    if (cpu0) {
      observeMs += performance.now() - t0;
      observed++;
    }
  };
  const sink: (o: Observation) => void = sinkKind === 'tracker' ? timedObserve : () => {};

  let polls = 0;
  let errors = 0;
  let cpu0: NodeJS.CpuUsage | undefined;
  let wall0 = 0;
  let finish: (run: Run) => void = () => {};
  const finished = new Promise<Run>((resolve) => (finish = resolve));

  const source = new QmpSource({
    clock: systemClock,
    logger,
    idleIntervalMs: INTERVAL_MS,
    migratingIntervalMs: INTERVAL_MS,
    commandTimeoutMs: 5_000,
    createMonitor: (endpoint) => new QmpMonitor({ endpoint, logger, sessionOptions: { connectTimeoutMs: 5_000, commandTimeoutMs: 5_000 } }),
    onObservation: (o) => {
      sink(o);
      if (o.kind !== 'qmp-status') return;
      polls++;
      if (polls === WARMUP) {
        cpu0 = process.cpuUsage();
        wall0 = performance.now();
      } else if (polls === WARMUP + POLLS && cpu0) {
        const cpu = process.cpuUsage(cpu0);
        finish({ polls: POLLS, userUs: cpu.user, systemUs: cpu.system, wallMs: performance.now() - wall0, errors, observeUs: (observeMs * 1000) / Math.max(1, observed) });
      }
    },
    onError: () => {
      errors++;
    },
    random: () => 0,
  });
  const config: VmConfig = {
    name: vm,
    flavor: 'bench',
    pingAddress: null,
    labels: {},
    monitors: [{ id: `bench-host/unix:${socket}`, host: 'bench-host', endpoint: { kind: 'unix', path: socket } }],
  };
  await source.setVms([config]);
  try {
    return await withTimeout(finished, RUN_TIMEOUT_MS, () => `exporter (${sinkKind}) made ${polls} polls with ${errors} errors`);
  } finally {
    await source.stop();
  }
}

/** The baseline: the same commands over a plain unix socket, each reply JSON.parsed, nothing else. */
async function runBare(socket: string, commands: readonly string[]): Promise<Run> {
  const conn = createConnection({ path: socket });
  await new Promise<void>((resolve, reject) => {
    conn.once('connect', resolve);
    conn.once('error', reject);
  });
  conn.setEncoding('utf8');
  let buffer = '';
  const lines: string[] = [];
  let waiter: ((line: string) => void) | null = null;
  conn.on('data', (chunk: string) => {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (waiter) {
        const w = waiter;
        waiter = null;
        w(line);
      } else {
        lines.push(line);
      }
    }
  });
  const next = (): Promise<string> => (lines.length > 0 ? Promise.resolve(lines.shift() as string) : new Promise((resolve) => (waiter = resolve)));

  let id = 0;
  const exchange = async (command: string): Promise<unknown> => {
    conn.write(`${JSON.stringify({ execute: command, id: ++id })}\n`);
    return JSON.parse(await next()) as unknown;
  };
  try {
    JSON.parse(await next()); // greeting
    await exchange('qmp_capabilities');
    let cpu0: NodeJS.CpuUsage | undefined;
    let wall0 = 0;
    for (let poll = 1; poll <= WARMUP + POLLS; poll++) {
      for (const command of commands) await exchange(command);
      if (poll === WARMUP) {
        cpu0 = process.cpuUsage();
        wall0 = performance.now();
      }
      if (poll < WARMUP + POLLS) await sleep(INTERVAL_MS);
    }
    const cpu = process.cpuUsage(cpu0);
    return { polls: POLLS, userUs: cpu.user, systemUs: cpu.system, wallMs: performance.now() - wall0, errors: 0 };
  } finally {
    conn.destroy();
  }
}

async function startReplayPeer(dir: string): Promise<Peer> {
  const socket = join(dir, 'replay.qmp');
  const child = spawnTsx('qmp-replay-peer.ts', [socket, MIGRATE_FIXTURE, STATUS_FIXTURE]);
  const reader = new LineReader(child, 'replay peer');
  const ready = await reader.next(20_000).catch(async (err: unknown) => {
    await stopChild(child);
    throw err;
  });
  if (ready !== 'ready') {
    await stopChild(child);
    throw new Error(`replay peer said ${JSON.stringify(ready)}`);
  }
  return {
    name: 'replay',
    describe: `replay peer (child process), QEMU 7.2 capture: ${MIGRATE_FIXTURE} + ${STATUS_FIXTURE}`,
    socket,
    commandsPerPoll: ['query-migrate', 'query-status'],
    stop: async () => {
      await stopChild(child);
      return reader.rest();
    },
  };
}

async function startQemu(dir: string): Promise<Peer> {
  const socket = join(dir, 'qemu.qmp');
  const args = ['-machine', 'none', '-nodefaults', '-no-user-config', '-display', 'none', '-qmp', `unix:${socket},server=on,wait=off`];
  const version = await qemuVersion();
  const child = spawn(QEMU_BINARY, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
  const deadline = Date.now() + 10_000;
  while (!existsSync(socket)) {
    if (child.exitCode !== null) throw new Error(`QEMU exited (${child.exitCode}): ${stderr}`);
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`QEMU made no QMP socket within 10 s: ${stderr}`);
    }
    await Promise.race([sleep(10), spawnError]);
  }
  return {
    name: 'qemu',
    describe: `${version}: ${QEMU_BINARY} ${args.join(' ')}`,
    socket,
    commandsPerPoll: ['query-migrate'],
    stop: async () => {
      await stopChild(child, 3_000);
      return '';
    },
  };
}

function qemuVersion(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(QEMU_BINARY, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('exit', () => resolve(out.split('\n')[0]?.trim() || QEMU_BINARY));
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what()}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const usPerPoll = (r: Run) => (r.userUs + r.systemUs) / r.polls;

/** The round whose CPU per poll is the median of the rounds. */
function medianRun(runs: readonly Run[]): Run {
  const sorted = [...runs].sort((a, b) => usPerPoll(a) - usPerPoll(b));
  return sorted[(sorted.length - 1) >> 1] as Run;
}

async function measure(peer: Peer): Promise<Map<Variant, Run[]>> {
  const runs = new Map<Variant, Run[]>([
    ['tracker', []],
    ['no-op sink', []],
    ['bare', []],
  ]);
  const order: Variant[] = ['tracker', 'no-op sink', 'bare'];
  const runOne = (variant: Variant) => (variant === 'bare' ? runBare(peer.socket, peer.commandsPerPoll) : runExporter(peer.socket, variant));
  // A round that is not counted: the JIT compiles (on its own threads, counted in this
  // process's CPU time) while code is new, whichever side runs first.
  for (const variant of order) await runOne(variant);
  for (let round = 0; round < ROUNDS; round++) {
    // Rotated each round, so neither side always runs first (warm caches, CPU frequency).
    for (let i = 0; i < order.length; i++) {
      const variant = order[(i + round) % order.length] as Variant;
      runs.get(variant)?.push(await runOne(variant));
    }
  }
  return runs;
}

function report(peer: Peer, runs: Map<Variant, Run[]>): { exporterUsPerPoll: number } {
  const bare = medianRun(runs.get('bare') ?? []);
  const labels: Record<Variant, string> = {
    tracker: 'exporter: QmpSource + MigrationTracker',
    'no-op sink': 'exporter: QmpSource, no-op sink',
    bare: 'baseline: bare socket loop + JSON.parse',
  };
  const rows = (['tracker', 'no-op sink', 'bare'] as const).map((variant) => {
    const all = runs.get(variant) ?? [];
    const r = medianRun(all);
    const perPoll = all.map(usPerPoll);
    return [
      labels[variant],
      String(r.polls),
      fixed((r.userUs + r.systemUs) / 1000, 1),
      fixed(r.userUs / 1000, 1),
      fixed(r.systemUs / 1000, 1),
      fixed(usPerPoll(r), 1),
      `${fixed(Math.min(...perPoll), 0)}-${fixed(Math.max(...perPoll), 0)}`,
      fixed(r.wallMs, 0),
      ratio(usPerPoll(r), usPerPoll(bare)),
      String(r.errors),
    ];
  });
  console.log(`## ${peer.name}: ${peer.describe}`);
  console.log(
    `commands per poll: ${peer.commandsPerPoll.join(' + ')}; interval ${INTERVAL_MS} ms; ${POLLS} polls measured after ${WARMUP} warm-up polls, ` +
      `median of ${ROUNDS} rounds after one uncounted round`,
  );
  console.log(
    table(['side', 'polls', 'CPU ms', 'user ms', 'sys ms', 'CPU µs/poll', 'rounds µs/poll', 'wall ms', 'vs bare', 'errors'], rows),
  );
  const observe = (runs.get('tracker') ?? []).map((r) => r.observeUs ?? NaN).sort((a, b) => a - b);
  console.log(`MigrationTracker.observe(): ${fixed(observe[(observe.length - 1) >> 1] ?? NaN, 1)} µs per observation (wall time inside it, median round)`);
  console.log('');
  return { exporterUsPerPoll: usPerPoll(medianRun(runs.get('tracker') ?? [])) };
}

async function main(): Promise<void> {
  await printHeader('QMP poll: exporter CPU per query-migrate poll');
  console.log(`MigrationTracker: real (src/tracker/tracker.ts) with MigrationStore; logger pino level info -> /dev/null`);
  console.log('');
  const dir = mkdtempSync(join(tmpdir(), 'livemig-bench-'));
  const verdicts: string[] = [];
  let broken = false;
  try {
    for (const [i, start] of [startReplayPeer, startQemu].entries()) {
      if (ONLY_PEER !== 0 && ONLY_PEER !== i + 1) continue;
      let peer: Peer;
      try {
        peer = await start(dir);
      } catch (err) {
        console.log(`## ${start === startQemu ? 'qemu' : 'replay'}: NOT RUN: ${(err as Error).message}\n`);
        broken = true;
        continue;
      }
      try {
        const runs = await measure(peer);
        const { exporterUsPerPoll } = report(peer, runs);
        verdicts.push(
          `${verdict(exporterUsPerPoll <= TARGET_US_PER_POLL)}  ${peer.name}: ${fixed(exporterUsPerPoll, 1)} µs CPU per poll = ${fixed(exporterUsPerPoll, 1)} ms per 1,000 polls (target ≤ ${TARGET_US_PER_POLL} µs per poll)`,
        );
      } catch (err) {
        console.log(`## ${peer.name}: FAILED: ${(err as Error).stack ?? String(err)}\n`);
        broken = true;
      } finally {
        const peerReport = await peer.stop();
        if (peerReport) console.log(`(${peer.name} peer, not counted: ${peerReport})\n`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`load average at end: ${loadText()}`);
  console.log('targets:');
  for (const line of verdicts) console.log(`  ${line}`);
  process.exitCode = broken ? 1 : 0;
}

await main();
