/**
 * Follows a log file on a Host (an SSH host, or any host), the way FileFollower does locally:
 * `tail -c +N -f` (following the open file, not the name) started through host.spawn with a fixed
 * argv (the path is one argument after `--`, quoted for the remote shell by the Host), and `stat`
 * run through host.exec every `pollMs` to see rotations:
 *
 * - another inode at the path (rename + create, or deletion and re-creation): the old tail keeps
 *   running for `retireMs` (the writer may not have reopened yet; its lines still come), then is
 *   ended; a new tail reads the new file from byte 0;
 * - the file shorter than what was read (copytruncate): a new tail from byte 0.
 *
 * Each tail process carries the bytes of one file only, so the position (file identity and byte
 * offset) is exact and a restart resumes from it. Known limit: a copytruncate whose file grew past
 * the old position before the next `stat` is not seen (locally the file's first bytes tell).
 */
import type { Host, HostProcess } from '../../hosts/host.js';
import { errorMessage, LivemigError } from '../../errors.js';
import type { LineScanner } from './line-scanner.js';
import type { Follower, FollowerOptions, FollowPosition } from './follower.js';

/** As a local follower's, plus the host; `pollMs` is also tail's own sleep between reads. */
export interface HostFollowerOptions extends FollowerOptions {
  host: Host;
}

const HEAD_BYTES = 256;
const EXEC_TIMEOUT_MS = 10_000;

interface Stat {
  dev: number;
  ino: number;
  size: number;
}

interface Tail {
  proc: HostProcess;
  scanner: LineScanner;
  dev: number;
  ino: number;
  /** Byte offset in the file after the last byte received. */
  offset: number;
  /** base64 of the file's first bytes; '' until read. */
  head: string;
  ended: boolean;
}

export class HostFollower implements Follower {
  private current: Tail | undefined;
  private retired: { tail: Tail; untilMs: number }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private stopped = false;
  private seenFile = false;
  private failing = false;
  private finalPosition: FollowPosition | undefined;

  constructor(private readonly options: HostFollowerOptions) {}

  async start(): Promise<void> {
    try {
      const st = await this.stat();
      if (st) {
        this.seenFile = true;
        const head = await this.readHead();
        const resume = this.options.resume;
        let from = 0;
        if (resume && resume.dev === st.dev && resume.ino === st.ino && st.size >= resume.offset && startsWith(head, resume.head)) from = resume.offset;
        else if (!resume && (this.options.startAt ?? 'end') === 'end') from = st.size;
        this.spawnTail(st, from, head);
      }
    } catch (err) {
      this.fail(err);
    }
    this.timer = setInterval(() => void this.look(), this.options.pollMs ?? 500);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.finalPosition = this.position();
    const all = [...this.retired.map((r) => r.tail), ...(this.current ? [this.current] : [])];
    this.retired = [];
    this.current = undefined;
    await Promise.all(
      all.map(async (t) => {
        t.ended = true;
        t.proc.kill();
        await t.proc.exited;
      }),
    );
  }

  position(): FollowPosition | undefined {
    const t = this.current;
    if (!t) return this.finalPosition;
    if (!t.head && t.offset > 0) return undefined;
    return { path: this.options.path, dev: t.dev, ino: t.ino, offset: t.offset - t.scanner.pendingBytes, head: t.head };
  }

  private spawnTail(st: Stat, from: number, head: string): void {
    const sleep = String(Math.max(0.05, (this.options.pollMs ?? 500) / 1000));
    const argv = ['tail', '-c', `+${from + 1}`, '-f', '-s', sleep, '--', this.options.path];
    const tail: Tail = { proc: undefined as unknown as HostProcess, scanner: this.options.makeScanner(), dev: st.dev, ino: st.ino, offset: from, head, ended: false };
    try {
      tail.proc = this.options.host.spawn(argv);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.current = tail;
    tail.proc.stdout.on('data', (chunk: Buffer) => {
      if (this.failing) this.options.onRead?.();
      this.failing = false;
      tail.offset += chunk.length;
      tail.scanner.push(chunk);
    });
    let errText = '';
    tail.proc.stderr.on('data', (chunk: Buffer) => {
      if (errText.length < 4096) errText += chunk.toString('utf8');
    });
    void tail.proc.exited.then(({ code, signal }) => {
      if (tail.ended || this.stopped) return;
      tail.ended = true;
      if (this.current === tail) this.current = undefined;
      const why = errText.trim().split('\n').pop() || `exit status ${code ?? `signal ${signal ?? '?'}`}`;
      // The next look starts a new tail from this one's position when the file is the same.
      this.resumeFrom = { dev: tail.dev, ino: tail.ino, offset: tail.offset - tail.scanner.pendingBytes, head: tail.head };
      this.fail(new Error(`tail ended: ${why.replace(/^tail: /, '')}`));
    });
  }

  private resumeFrom: { dev: number; ino: number; offset: number; head: string } | undefined;

  private async look(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      const now = Date.now();
      for (const r of [...this.retired]) {
        if (now < r.untilMs) continue;
        this.retired.splice(this.retired.indexOf(r), 1);
        r.tail.ended = true;
        r.tail.proc.kill();
        r.tail.scanner.flush();
      }
      // Taken before the stat: bytes tail delivers while the stat runs must not look like a truncation.
      const readBefore = this.current?.offset ?? 0;
      const st = await this.stat();
      if (this.stopped) return;
      const cur = this.current;
      if (cur && cur.head === '' && st && st.ino === cur.ino) cur.head = await this.readHead();
      let counted = false;
      if (cur && (!st || st.ino !== cur.ino || st.dev !== cur.dev)) {
        this.retire(cur);
        if (st) this.options.onRotate?.('rename');
        counted = true;
      } else if (cur && st && st.size < Math.min(readBefore, cur.offset)) {
        cur.ended = true;
        cur.proc.kill();
        cur.scanner.flush();
        this.current = undefined;
        this.options.onRotate?.('truncate');
        this.spawnTail(st, 0, '');
        return;
      }
      if (!this.current && st) {
        const back = this.resumeFrom;
        this.resumeFrom = undefined;
        if (back && back.dev === st.dev && back.ino === st.ino && st.size >= back.offset) {
          this.spawnTail(st, back.offset, back.head);
        } else {
          if (!counted && this.seenFile) this.options.onRotate?.('recreate');
          this.seenFile = true;
          this.spawnTail(st, 0, '');
        }
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.busy = false;
    }
  }

  private retire(tail: Tail): void {
    this.retired.push({ tail, untilMs: Date.now() + (this.options.retireMs ?? 2000) });
    this.current = undefined;
  }

  private async stat(): Promise<Stat | null> {
    const argv = ['stat', '-L', '-c', '%d %i %s', '--', this.options.path];
    const result = await this.options.host.exec(argv, { timeoutMs: EXEC_TIMEOUT_MS });
    if (result.code !== 0) {
      if (/No such file/.test(result.stderr)) return null;
      throw new Error(`stat: ${result.stderr.trim() || `exit status ${result.code}`}`);
    }
    const text = result.stdout.toString('utf8').trim();
    const [dev, ino, size] = text.split(' ').map(Number);
    if (![dev, ino, size].every((n) => Number.isSafeInteger(n))) throw new Error(`stat printed ${JSON.stringify(text.slice(0, 80))}`);
    return { dev: dev!, ino: ino!, size: size! };
  }

  private async readHead(): Promise<string> {
    const result = await this.options.host.exec(['head', '-c', String(HEAD_BYTES), '--', this.options.path], { timeoutMs: EXEC_TIMEOUT_MS });
    return result.code === 0 ? result.stdout.toString('base64') : '';
  }

  private fail(err: unknown): void {
    this.failing = true;
    this.options.onError?.(err instanceof LivemigError ? err : new LivemigError('LME_LOG_READ', [this.options.path, this.options.host.name, errorMessage(err)]));
  }
}

function startsWith(headBase64: string, savedBase64: string): boolean {
  const now = Buffer.from(headBase64, 'base64');
  const saved = Buffer.from(savedBase64, 'base64');
  return now.length >= saved.length && now.subarray(0, saved.length).equals(saved);
}
