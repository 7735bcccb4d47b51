import { spawn, type ChildProcess } from 'node:child_process';
import { livemigError } from '../errors.js';
import type { LabNetwork } from './netns.js';

/**
 * The lab's ground truth for "does the VM answer ping": one fping in loop mode (`-l -D -e`,
 * lab-notes "Ping") run from the lab's lan namespace against one address. The exporter has its
 * own ping source; this is what tests hold it against. parseFpingLine() and outages() are pure.
 */

export interface ProbeResult {
  seq: number;
  /** When fping printed the line (its -D epoch time), ms. */
  printedMs: number;
  /** When the probe was sent, ms since the epoch: printed minus RTT, or minus the timeout for a loss. */
  sentMs: number;
  /** Absent for a probe that timed out. */
  rttMs?: number;
}

export interface Outage {
  /** Send time of the first lost probe and of the first answered one after it (ms since the epoch). */
  startMs: number;
  endMs: number;
  lost: number;
  firstSeq: number;
}

export interface LanProbeOptions {
  network: LabNetwork;
  target: string;
  /** fping -p; default 100 ms. */
  periodMs?: number;
  /** fping -t; a reply later than this counts as lost. Default 1000 ms. */
  timeoutMs?: number;
  fping?: string;
}

export const DEFAULT_PROBE_PERIOD_MS = 100;
export const DEFAULT_PROBE_TIMEOUT_MS = 1_000;
const LINE = /^\[(\d+(?:\.\d+)?)\] (\S+)\s*: \[(\d+)\], (?:\d+ bytes, ([\d.]+) ms|(timed out))/;

/** A reply or timeout line of `fping -l -D -e` for `target`, or undefined for any other line. */
export function parseFpingLine(line: string, target: string, timeoutMs: number): ProbeResult | undefined {
  const match = LINE.exec(line);
  if (!match || match[2] !== target || line.includes('(DUP!)')) return undefined;
  const printedMs = Number(match[1]) * 1000;
  const seq = Number(match[3]);
  if (match[5]) return { seq, printedMs, sentMs: printedMs - timeoutMs };
  const rttMs = Number(match[4]);
  return { seq, printedMs, sentMs: printedMs - rttMs, rttMs };
}

/** Runs of consecutive lost probes, in order. A run still open at the end has endMs NaN. */
export function outages(results: readonly ProbeResult[]): Outage[] {
  const found: Outage[] = [];
  let open: Outage | undefined;
  for (const probe of [...results].sort((a, b) => a.seq - b.seq)) {
    if (probe.rttMs === undefined) {
      if (open) open.lost += 1;
      else open = { startMs: probe.sentMs, endMs: Number.NaN, lost: 1, firstSeq: probe.seq };
    } else if (open) {
      found.push({ ...open, endMs: probe.sentMs });
      open = undefined;
    }
  }
  if (open) found.push(open);
  return found;
}

export class LanProbe {
  private readonly probes: ProbeResult[] = [];
  private stderr = '';
  private partial = '';
  private readonly exited: Promise<void>;
  private done = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly target: string,
    readonly periodMs: number,
    readonly timeoutMs: number,
  ) {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.take(chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-4096);
    });
    running.add(child);
    killLeftoversOnExit();
    this.exited = new Promise((resolve) =>
      child.once('close', () => {
        this.done = true;
        running.delete(child);
        resolve();
      }),
    );
  }

  /** Starts fping; resolves once it runs (its first line comes a period later). */
  static async start(options: LanProbeOptions): Promise<LanProbe> {
    const periodMs = options.periodMs ?? DEFAULT_PROBE_PERIOD_MS;
    const timeoutMs = options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
    for (const [field, value] of [['periodMs', periodMs], ['timeoutMs', timeoutMs]] as const) {
      if (!Number.isSafeInteger(value) || value <= 0) throw livemigError('LME_LAB_PROBE', options.target, `${field} ${value} is not a positive whole number`);
    }
    const fping = options.fping ?? 'fping';
    const [command, ...args] = options.network.execArgv('lan', fping, ['-l', '-D', '-e', '-p', String(periodMs), '-t', String(timeoutMs), options.target]);
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(livemigError('LME_LAB_PROBE', options.target, `cannot start ${command}: ${err.message}`)));
    });
    return new LanProbe(child, options.target, periodMs, timeoutMs);
  }

  /** Results so far, in the order fping printed them. */
  results(): readonly ProbeResult[] {
    return this.probes;
  }

  /** Resolves once a reply sent at or after `sinceMs` (epoch) arrives; rejects after timeoutMs. */
  async waitForReply(sinceMs: number, timeoutMs: number): Promise<ProbeResult> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const reply = this.probes.find((probe) => probe.rttMs !== undefined && probe.sentMs >= sinceMs);
      if (reply) return reply;
      if (this.done) throw livemigError('LME_LAB_PROBE', this.target, `fping exited: ${this.stderr.trim()}`);
      if (Date.now() >= deadline) throw livemigError('LME_LAB_PROBE', this.target, `no reply within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, this.periodMs / 2));
    }
  }

  /** Stops fping (SIGINT, so it prints its summary) and returns every result. */
  async stop(): Promise<readonly ProbeResult[]> {
    if (!this.done) this.child.kill('SIGINT');
    await this.exited;
    this.take('\n');
    return this.probes;
  }

  private take(chunk: string): void {
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      const probe = parseFpingLine(line, this.target, this.timeoutMs);
      if (probe) this.probes.push(probe);
    }
  }
}

/** fping processes not yet stopped, killed (by PID) if the process exits first. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function killLeftoversOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}
