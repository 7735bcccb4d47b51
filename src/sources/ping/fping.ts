/**
 * One long-lived fping process for a fixed list of addresses: started with an argument array (no
 * shell ever sees a target), its stdout and stderr framed into lines and parsed, restarted with
 * exponential backoff and full jitter when it exits. It knows nothing of targets' state.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Backoff } from '../../backoff.js';
import type { Clock } from '../../clock.js';
import { LivemigError } from '../../errors.js';
import { netnsExec } from '../../hosts/netns.js';
import { LineSplitter, type LineFrame } from '../qmp/framing.js';
import { BatchedOutput } from './batched-output.js';
import { parseFpingLine, type FpingLine } from './parse.js';

export interface FpingSettings {
  /** Path or name of the fping binary. */
  binary: string;
  periodMs: number;
  timeoutMs: number;
  /** fping -i: least time between two sends of the process (shards.ts sendIntervalMs). */
  intervalMs: number;
  /** fping -S: source address of the probes. */
  sourceAddress?: string;
  /** Run fping inside this network namespace (`ip netns exec NS fping ...`; needs root). */
  netns?: string;
  /** Path or name of `ip`, for `netns`. */
  ipBinary?: string;
  /** Run fping as this user (spawn's uid/gid; supplementary groups are dropped). */
  user?: { uid: number; gid: number };
}

export type FpingStream = 'stdout' | 'stderr';

export interface FpingRun {
  /** Counts the processes started by this runner, from 1. */
  run: number;
  pid: number;
  startedWallMs: number;
}

export interface FpingProcessOptions {
  settings: FpingSettings;
  addresses: readonly string[];
  clock: Clock;
  restartBackoff: { baseMs: number; capMs: number; random?: () => number };
  /** A process that ran at least this long before it exited restarts without accumulated backoff. */
  stableAfterMs?: number;
  /** How often fping's stdout is drained (batched-output.ts); results reach the tracker up to this late. */
  readIntervalMs?: number;
  onStart(run: FpingRun): void;
  onLine(line: FpingLine, stream: FpingStream, run: number): void;
  /** The process ended on its own (or never started); it is restarted after `restartInMs`. */
  onExit(error: LivemigError, restartInMs: number): void;
}

/** fping's flags: loop, epoch stamps, elapsed time per reply, outage in the summary. */
export function fpingArgs(settings: FpingSettings, addresses: readonly string[]): string[] {
  const args = ['-l', '-D', '-e', '-o', '-p', String(settings.periodMs), '-t', String(settings.timeoutMs), '-i', String(settings.intervalMs)];
  if (settings.sourceAddress !== undefined) args.push('-S', settings.sourceAddress);
  // '--': nothing after it is taken for an option, whatever a target looks like.
  return [...args, '--', ...addresses];
}

/** fping runs on this machine only (hosts/host.ts says why); in a namespace through the hosts' one `ip netns exec`. */
export function fpingCommand(settings: FpingSettings, addresses: readonly string[]): { command: string; args: string[] } {
  const args = fpingArgs(settings, addresses);
  if (settings.netns === undefined) return { command: settings.binary, args };
  const [command, ...rest] = netnsExec(settings.netns, [settings.binary, ...args], settings.ipBinary) as [string, ...string[]];
  return { command, args: rest };
}

/** How a process ended, for exitError. */
export interface FpingEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all. */
  spawnError?: NodeJS.ErrnoException;
  /** The fatal line fping printed before it exited, if any. */
  fatal?: Extract<FpingLine, { kind: 'fatal' }>;
  /** Last lines of stderr. */
  stderrTail: readonly string[];
}

/** The error that explains an ended process. Pure. */
export function exitError(binary: string, end: FpingEnd): LivemigError {
  const setcapPath = binary.includes('/') ? binary : `$(command -v ${binary})`;
  const { spawnError, fatal } = end;
  if (spawnError?.code === 'EPERM') {
    const detail = 'exec refused (EPERM): CAP_NET_RAW is not in the capability bounding set; add it to the container or service unit';
    return new LivemigError('LME_PING_PERMISSION', [binary, detail, setcapPath], { cause: spawnError });
  }
  if (spawnError) {
    const hint = spawnError.code === 'ENOENT' ? ' (install the fping package or set the fping path)' : '';
    return new LivemigError('LME_PING_SPAWN', [binary, `${spawnError.message}${hint}`], { cause: spawnError });
  }
  if (fatal?.reason === 'permission') return new LivemigError('LME_PING_PERMISSION', [binary, fatal.message, setcapPath]);
  const how = end.signal ? `signal ${end.signal}` : `code ${end.code}`;
  const said = fatal?.message ?? end.stderrTail.at(-1) ?? 'nothing on stderr';
  return new LivemigError('LME_PING_EXITED', [binary, how, said]);
}

const STDERR_TAIL = 5;
const KILL_AFTER_MS = 2000;
const MAX_LINE_BYTES = 4096;
export const DEFAULT_READ_INTERVAL_MS = 20;

export class FpingProcess {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private restartTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private runs = 0;
  private unexpectedExits = 0;
  private readonly backoff: Backoff;

  constructor(private readonly options: FpingProcessOptions) {
    this.backoff = new Backoff(options.restartBackoff);
  }

  get isUp(): boolean {
    return this.child !== null && this.child.pid !== undefined;
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** Times the process ended without being asked to. */
  get restarts(): number {
    return this.unexpectedExits;
  }

  start(): void {
    if (this.child || this.stopped) return;
    this.spawnOnce();
  }

  /** Ends the process (SIGTERM, then SIGKILL after 2 s) and cancels any restart. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const child = this.child;
    if (!child || child.pid === undefined) return;
    const kill = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
    child.kill('SIGTERM');
    await this.exited;
    clearTimeout(kill);
  }

  private spawnOnce(): void {
    this.restartTimer = null;
    const { settings, addresses, clock } = this.options;
    const { command, args } = fpingCommand(settings, addresses);
    const run = ++this.runs;
    const startedMono = clock.monoMs();
    const stderrTail: string[] = [];
    let fatal: FpingEnd['fatal'];
    const onFrames = (frames: LineFrame[], stream: FpingStream): void => {
      for (const frame of frames) {
        const line = frame.kind === 'line' ? parseFpingLine(frame.line) : overflowLine(frame);
        if (stream === 'stderr' && frame.kind === 'line' && frame.line.trim() !== '') {
          stderrTail.push(frame.line);
          if (stderrTail.length > STDERR_TAIL) stderrTail.shift();
        }
        if (line.kind === 'fatal') fatal ??= line;
        if (!this.stopped) this.options.onLine(line, stream, run);
      }
    };
    const stdoutLines = new LineSplitter(MAX_LINE_BYTES);
    const stdout = new BatchedOutput(this.options.readIntervalMs ?? DEFAULT_READ_INTERVAL_MS, (chunk) => onFrames(stdoutLines.push(chunk), 'stdout'));
    let child: ChildProcess;
    try {
      child = spawn(command, args, {
        stdio: ['ignore', stdout.writerFd, 'pipe'],
        ...(settings.user ? { uid: settings.user.uid, gid: settings.user.gid } : {}),
      });
    } finally {
      stdout.closeWriter();
    }
    stdout.start();
    this.child = child;
    const stderrLines = new LineSplitter(MAX_LINE_BYTES);
    child.stderr!.on('data', (chunk: Buffer) => onFrames(stderrLines.push(chunk), 'stderr'));
    child.stderr!.on('end', () => onFrames(stderrLines.finish(), 'stderr'));

    this.exited = new Promise<void>((resolve) => {
      let spawnError: NodeJS.ErrnoException | undefined;
      child.once('spawn', () => {
        if (!this.stopped) this.options.onStart({ run, pid: child.pid!, startedWallMs: clock.wallMs() });
      });
      child.on('error', (err: NodeJS.ErrnoException) => {
        // Only a failed spawn matters here; a failed kill of a live child is not an end.
        if (child.pid === undefined) spawnError = err;
      });
      // 'close' comes after stderr ended; stdout is read to its end here, so every line is in before the end is judged.
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        stdout.finish();
        onFrames(stdoutLines.finish(), 'stdout');
        if (this.child === child) this.child = null;
        resolve();
        if (this.stopped) return;
        const ranMs = clock.monoMs() - startedMono;
        if (ranMs >= (this.options.stableAfterMs ?? 10_000)) this.backoff.reset();
        const end: FpingEnd = { code, signal, stderrTail, ...(spawnError ? { spawnError } : {}), ...(fatal ? { fatal } : {}) };
        this.unexpectedExits++;
        const delay = this.backoff.nextDelayMs();
        this.options.onExit(exitError(settings.binary, end), delay);
        this.restartTimer = setTimeout(() => this.spawnOnce(), delay);
      });
    });
  }
}

function overflowLine(frame: Extract<LineFrame, { kind: 'overflow' }>): FpingLine {
  const raw = frame.excerpt;
  return { kind: 'unknown', raw, error: new LivemigError('LME_PING_LINE', [`${JSON.stringify(raw)} (longer than ${frame.limit} bytes)`]) };
}
