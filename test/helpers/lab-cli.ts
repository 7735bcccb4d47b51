import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ScenarioReport } from '../../src/lab/report/results.js';
import type { MigrationRecord } from '../../src/records/record.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const CLI = join(ROOT, 'src/cli.ts');

/** `livemig-exporter lab ...` run as a user runs it, its output collected, /metrics reachable while it runs. */
export class LabRun {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (c: Buffer) => (this.stdout += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (this.stderr += c.toString()));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** `listen`: the exporter's address (default a free loopback port, which the lab prints). */
  static start(args: string[], env: NodeJS.ProcessEnv = {}, { listen = '127.0.0.1:0' }: { listen?: string } = {}): LabRun {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'lab', '--web.listen-address', listen, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    return new LabRun(child);
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** The exporter's URL, once the lab has said it. */
  async url(timeoutMs = 120_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = /the exporter serves (http:\/\/\S+)\/metrics/.exec(this.stderr);
      if (match) return match[1] as string;
      if (this.child.exitCode !== null) throw new Error(`lab exited before serving:\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`lab did not serve within ${timeoutMs} ms:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** With `--linger`: waits until the report is written and the exporter keeps serving; throws if the lab exits first. */
  async lingering(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!/lab: the exporter keeps serving \S+ for \d+ s/.test(this.stderr)) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`lab exited before lingering (${this.child.exitCode ?? this.child.signalCode})\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`lab did not finish its scenario within ${timeoutMs} ms\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The records of the lab's exporter (its /api/v1/migrations, newest first), while it serves. */
  async migrations(): Promise<MigrationRecord[]> {
    const res = await fetch(`${await this.url()}/api/v1/migrations?limit=10000`);
    if (!res.ok) throw new Error(`lab exporter /api/v1/migrations: HTTP ${res.status}`);
    return ((await res.json()) as { data: MigrationRecord[] }).data;
  }

  /** Stops a lab still running (SIGINT by PID: it cleans up) and waits for it; for afterAll. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGINT');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Waits for the exit; throws with the output unless it is `code`. */
  async finished(code = 0): Promise<void> {
    const exit = await this.exited;
    if (exit.code !== code) throw new Error(`lab exited with ${exit.code ?? exit.signal}, expected ${code}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
  }

  /** The JSON results file the lab said it wrote. */
  report(): ScenarioReport {
    const match = /wrote (\S+\.csv) and (\S+\.json)/.exec(this.stdout);
    if (!match) throw new Error(`no results files in the output:\n${this.stdout}`);
    return JSON.parse(readFileSync(match[2] as string, 'utf8')) as ScenarioReport;
  }

  csvPath(): string {
    const match = /wrote (\S+\.csv) and/.exec(this.stdout);
    if (!match) throw new Error('no CSV file in the output');
    return match[1] as string;
  }
}

/** What a lab process (by pid) may leave: namespaces, QEMU processes, temp dirs; all named lmelab-PID-*. */
export function leftovers(pid: number): { namespaces: string[]; processes: string[]; dirs: string[] } {
  const prefix = `lmelab-${pid}-`;
  const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(prefix));
  const processes: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.startsWith('qemu-system') && cmdline.includes(prefix)) processes.push(entry);
    } catch {
      // gone meanwhile
    }
  }
  const dirs = readdirSync(tmpdir()).filter((d) => d.startsWith(prefix));
  return { namespaces, processes, dirs };
}

export function noLeftovers(): { namespaces: string[]; processes: string[]; dirs: string[] } {
  return { namespaces: [], processes: [], dirs: [] };
}
