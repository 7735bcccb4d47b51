/**
 * Shared by the benchmarks: the machine they ran on, percentiles, a plain text table, PASS/FAIL
 * lines, child processes started with tsx, and QEMU's own JSON layout for replayed replies.
 * Benchmarks print figures; they never assert on time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';

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

export function printHeader(title: string): void {
  const m = machine();
  console.log(`# ${title}`);
  console.log(`machine: ${m.cpu}, ${m.cores} cores; node ${m.node}; ${m.kernel}`);
  console.log('');
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

/** Resolves with the child's first stdout line (its "ready" line, or its report). */
export function firstLine(child: ChildProcess, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no output within ${timeoutMs} ms`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const newline = text.indexOf('\n');
      if (newline === -1) return;
      cleanup();
      resolve(text.slice(0, newline));
    };
    const onExit = (code: number | null, signal: string | null) => {
      cleanup();
      reject(new Error(`${what}: exited (${code ?? signal}) before its first line`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
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
