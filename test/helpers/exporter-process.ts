import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { MigrationRecord } from '../../src/records/record.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const CLI = join(ROOT, 'src/cli.ts');

/** The exporter started as a user starts it: its CLI, a config file, a listen address. */
export class ExporterProcess {
  readonly logs: Record<string, unknown>[] = [];
  stderr = '';
  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
  ) {}

  /** `prefix`: a command that execs the rest (e.g. unshare), so that the child is still the exporter's PID. */
  static async start(configFile: string | null, extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}, prefix: string[] = []): Promise<ExporterProcess> {
    const args = ['--import', 'tsx', CLI, '--web.listen-address', '127.0.0.1:0', '--log.level', 'debug', ...extraArgs];
    if (configFile) args.push('--config', configFile);
    const [command, ...rest] = [...prefix, process.execPath, ...args] as [string, ...string[]];
    const child = spawn(command, rest, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const logs: Record<string, unknown>[] = [];
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        // Not left running behind the failed test; SIGTERM, so that it stops its fping too.
        child.kill('SIGTERM');
        reject(new Error(`exporter did not start listening within 20 s:\n${stderr}`));
      }, 20_000);
      let partial = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        partial += chunk.toString();
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          // not JSON or logfmt: pino-pretty or a crash trace, kept in stderr
          const entry = parseLogLine(line);
          if (!entry) continue;
          logs.push(entry);
          if (entry.msg === 'listening' && typeof entry.url === 'string') {
            clearTimeout(timer);
            resolve(entry.url);
          }
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`exporter exited with ${code} before listening:\n${stderr}`));
      });
    });
    const proc = new ExporterProcess(child, url);
    proc.stderr = stderr;
    child.stderr?.on('data', (chunk: Buffer) => {
      proc.stderr += chunk.toString();
      for (const line of chunk.toString().split('\n')) {
        // partial lines and other output are skipped
        const entry = parseLogLine(line);
        if (entry) proc.logs.push(entry);
      }
    });
    proc.logs.push(...logs);
    return proc;
  }

  async get(path: string): Promise<Response> {
    return fetch(this.url + path);
  }

  async metrics(): Promise<string> {
    return (await this.get('/metrics')).text();
  }

  async migrations(query = ''): Promise<MigrationRecord[]> {
    const res = await this.get(`/api/v1/migrations${query}`);
    const body = (await res.json()) as { data: MigrationRecord[] };
    return body.data;
  }

  /** Waits until the exporter has polled `count` monitors of `vm` (so nothing that follows is missed). */
  async waitForMonitors(vm: string, count: number, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = await this.metrics();
      const polled = text.split('\n').filter((l) => l.startsWith(`livemig_qemu_migration_status{vm="${vm}",`) && l.endsWith(' 1')).length;
      if (polled >= count) return;
      if (Date.now() > deadline) throw new Error(`exporter did not poll ${count} monitors of ${vm} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Polls the API until a record passes `match` (closed records only unless told otherwise). */
  async waitForRecord(match: (r: MigrationRecord) => boolean, timeoutMs = 30_000): Promise<MigrationRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = (await this.migrations()).find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching migration record within ${timeoutMs} ms; logs:\n${this.stderr.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGTERM and wait for the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((resolve) => this.child.once('exit', (code) => resolve(code)));
    this.child.kill(signal);
    return exited;
  }
}

/**
 * One log line of the exporter: JSON (--log.format json) or logfmt (`time=… level=… msg=…`, its
 * values as strings); null for anything else.
 */
export function parseLogLine(line: string): Record<string, unknown> | null {
  try {
    const entry = JSON.parse(line) as unknown;
    return entry !== null && typeof entry === 'object' ? (entry as Record<string, unknown>) : null;
  } catch {
    if (!line.startsWith('time=')) return null;
    const entry: Record<string, unknown> = {};
    for (const [, key, value] of line.matchAll(/(\S+?)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
      entry[key as string] = (value as string).startsWith('"') ? (JSON.parse(value as string) as string) : value;
    }
    return entry;
  }
}

/** The value of one series (name and labels exactly as the exporter writes them), or undefined. */
export function metricValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

export async function writeConfig(dir: string, config: unknown): Promise<string> {
  const file = join(dir, 'livemig.yml');
  await writeFile(file, stringify(config));
  return file;
}

/** Runs the CLI to completion (check-config, bad flags) and returns its exit code and output. */
export function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
