/**
 * Shared by the benchmarks: the machine they ran on, percentiles, a plain text table, PASS/FAIL
 * lines, child processes started with tsx, and QEMU's own JSON layout for replayed replies.
 * Benchmarks print figures; they never assert on time.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '../test/helpers/ports.js';

export const ROOT = new URL('..', import.meta.url).pathname;

export function fixturePath(name: string): string {
  return join(ROOT, 'test/fixtures/qmp', name);
}

export function readFixture(name: string): unknown {
  return JSON.parse(readFileSync(fixturePath(name), 'utf8')) as unknown;
}

export interface Machine {
  cpu: string;
  cores: number;
  node: string;
  kernel: string;
}

export function machine(): Machine {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'));
    if (line) cpu = line.slice(line.indexOf(':') + 1).trim();
  } catch {
    // not Linux: os.cpus() is as good
  }
  return { cpu, cores: cpus().length, node: process.version, kernel: `${process.platform} ${release()}` };
}

export async function printHeader(title: string): Promise<void> {
  const m = machine();
  console.log(`# ${title}`);
  console.log(`machine: ${m.cpu}, ${m.cores} cores; node ${m.node}; ${m.kernel}`);
  const busy = await otherCpuPercent();
  const note = busy === null ? '' : `; other processes used ${busy.toFixed(0)}% of all cores in the second before start`;
  const warn = busy !== null && busy > 10 ? '  (OTHER WORK IS RUNNING: figures will be noisy)' : '';
  console.log(`load average: ${loadText()}${note}${warn}`);
  console.log('');
}

export function loadText(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

/** CPU time of the whole machine so far, from /proc/stat (ms summed over cores); null off Linux. */
export function machineCpu(): { busyMs: number; totalMs: number } | null {
  try {
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    // USER_HZ is 100 on Linux: one tick is 10 ms.
    const total = fields.reduce((a, b) => a + b, 0) * 10;
    const idle = ((fields[3] ?? 0) + (fields[4] ?? 0)) * 10;
    return { busyMs: total - idle, totalMs: total };
  } catch {
    return null;
  }
}

/**
 * Share of all cores (percent) that processes other than the benchmark's own used between two
 * machineCpu() readings, given the benchmark's own CPU ms over the same time.
 */
export function otherShare(
  before: ReturnType<typeof machineCpu>,
  after: ReturnType<typeof machineCpu>,
  ownMs: number,
): number | null {
  if (!before || !after || after.totalMs <= before.totalMs) return null;
  return Math.max(0, (100 * (after.busyMs - before.busyMs - ownMs)) / (after.totalMs - before.totalMs));
}

/** Share of all cores busy with other processes over one second; null off Linux. */
async function otherCpuPercent(): Promise<number | null> {
  const before = machineCpu();
  const own = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const after = machineCpu();
  const ownUs = process.cpuUsage(own);
  // This process may still be settling (JIT, module loading): its own time is not "other work".
  return otherShare(before, after, (ownUs.user + ownUs.system) / 1000);
}

/** Nearest-rank quantile of an ascending array. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function summary(values: readonly number[]): { n: number; median: number; p90: number; p99: number; min: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    median: median(sorted),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    min: sorted[0] ?? NaN,
    max: sorted[sorted.length - 1] ?? NaN,
  };
}

/** Fixed decimals, for table cells. */
export function fixed(value: number, decimals = 2): string {
  return Number.isFinite(value) ? value.toFixed(decimals) : String(value);
}

export function ratio(value: number, baseline: number): string {
  return baseline > 0 ? `${(value / baseline).toFixed(2)}x` : 'n/a';
}

/** Left-aligned first column, right-aligned others. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const line = (r: readonly string[]) =>
    r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] as number) : cell.padStart(widths[c] as number))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function verdict(pass: boolean): 'PASS' | 'FAIL' {
  return pass ? 'PASS' : 'FAIL';
}

/** `--name value` or `--name=value` from argv, else the fallback. */
export function flag(name: string, fallback: number): number {
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === `--${name}` && args[i + 1] !== undefined) return parseNumber(name, args[i + 1] as string);
    if (arg.startsWith(`--${name}=`)) return parseNumber(name, arg.slice(name.length + 3));
  }
  return fallback;
}

function parseNumber(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name}: "${text}" is not a number`);
  return value;
}

/** A TypeScript file of bench/ in a child node process (its CPU is not this process's). */
export function spawnTsx(file: string, args: readonly string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', file), ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
}

/** Reads a child's stdout line by line: its "ready" line, then its report. */
export class LineReader {
  private buffer = '';
  private readonly lines: string[] = [];
  private waiter: ((line: string | null) => void) | null = null;
  private ended = false;

  constructor(
    private readonly child: ChildProcess,
    private readonly what: string,
  ) {
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      this.buffer += chunk;
      let newline: number;
      while ((newline = this.buffer.indexOf('\n')) !== -1) {
        this.deliver(this.buffer.slice(0, newline));
        this.buffer = this.buffer.slice(newline + 1);
      }
    });
    child.once('exit', () => {
      this.ended = true;
      this.waiter?.(null);
      this.waiter = null;
    });
  }

  /** The next line; rejects on timeout or when the child exits first. */
  next(timeoutMs: number): Promise<string> {
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.ended) return Promise.reject(new Error(`${this.what}: exited (${this.child.exitCode ?? this.child.signalCode})`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`${this.what}: no output within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (line) => {
        clearTimeout(timer);
        if (line === null) reject(new Error(`${this.what}: exited (${this.child.exitCode ?? this.child.signalCode}) before its next line`));
        else resolve(line);
      };
    });
  }

  /** Lines not read yet (what the child printed as it ended). */
  rest(): string {
    return [...this.lines.splice(0), this.buffer].join('\n').trim();
  }

  private deliver(line: string): void {
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter(line);
    } else {
      this.lines.push(line);
    }
  }
}

/** Ends a child this benchmark started: SIGTERM, then SIGKILL; resolves once it has exited. */
export function stopChild(child: ChildProcess, graceMs = 2_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * JSON as QEMU writes it on a QMP socket: one line, `", "` and `": "` separators, keys in the
 * order given (qobject_to_json). The replay peer sends replies byte for byte in this layout.
 */
export function qemuJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(qemuJson).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}: ${qemuJson(v)}`)
      .join(', ')}}`;
  }
  return JSON.stringify(value);
}

/**
 * `--built 1`: the exporter compiled by tsc (as `npm run build` makes it, but into a cache
 * directory so dist/ is left alone) instead of run through tsx, whose loader adds memory that a
 * deployment does not have.
 */
export const BUILT = flag('built', 0) === 1;
const BUILT_DIR = join(ROOT, 'node_modules/.cache/livemig-bench-dist');

/** Compiles the exporter for `--built 1` (once per benchmark run). */
export function buildExporterIfAsked(): void {
  if (BUILT) execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', BUILT_DIR], { cwd: ROOT, stdio: 'inherit' });
}

/** Writes `name`.yml in `dir` and starts the exporter's CLI with it on a free loopback port, as a user runs it. */
export async function spawnExporter(dir: string, name: string, config: unknown, stderr: 'inherit' | 'pipe', extraArgs: readonly string[] = []): Promise<{ child: ChildProcess; url: string }> {
  const file = join(dir, `${name}.yml`);
  await writeFile(file, stringify(config));
  const port = await freePort();
  const entry = BUILT ? [join(BUILT_DIR, 'cli.js')] : ['--import', 'tsx', join(ROOT, 'src/cli.ts')];
  const child = spawn(process.execPath, [...entry, '--config', file, '--web.listen-address', `127.0.0.1:${port}`, '--log.level', 'warn', ...extraArgs], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', stderr],
  });
  return { child, url: `http://127.0.0.1:${port}` };
}
