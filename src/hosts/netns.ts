import { spawn } from 'node:child_process';
import { Duplex } from 'node:stream';
import { LivemigError } from '../errors.js';
import { connectUnixLocal, execFailure, execLocal, spawnLocal } from './child.js';
import type { ExecOptions, ExecResult, Host, HostProcess } from './host.js';

export const NETNS_NAME = /^[A-Za-z0-9._-]+$/;

/** The command line that runs argv inside a network namespace of this machine (needs root). */
export function netnsExec(netns: string, argv: readonly string[], ipPath = 'ip'): string[] {
  return [ipPath, 'netns', 'exec', netns, ...argv];
}

const READ_TIMEOUT_MS = 5_000;
const CONNECT_TIMEOUT_MS = 5_000;
/**
 * A byte relay run inside the namespace (this process cannot enter one): connects to
 * argv[1]:argv[2], says `connected` (or the errno) on stderr, then copies stdin and stdout.
 * Host and port arrive as arguments, never inside the script.
 */
const TCP_RELAY = [
  "const s = require('node:net').connect({ host: process.argv[1], port: Number(process.argv[2]) });",
  "s.once('connect', () => { process.stderr.write('connected\\n'); process.stdin.pipe(s); s.pipe(process.stdout); });",
  "s.once('error', (e) => { process.stderr.write(`${e.code ?? 'ERROR'} ${e.message}\\n`); process.exit(1); });",
  "s.once('close', () => process.exit(0));",
].join('\n');

/**
 * A Linux network namespace on this machine (the lab's hosts). Commands run through
 * `ip netns exec NS`, so /proc/net/dev and /sys/class/net are that namespace's; unix sockets live
 * in the file system and are reached directly.
 */
export class NetnsHost implements Host {
  readonly kind = 'netns' as const;
  readonly up = true;

  constructor(
    readonly name: string,
    readonly netns: string,
    private readonly ipPath = 'ip',
  ) {
    if (!NETNS_NAME.test(netns)) throw new TypeError(`host ${name}: "${netns}" is not a network namespace name`);
  }

  private wrap(argv: readonly string[]): string[] {
    return netnsExec(this.netns, argv, this.ipPath);
  }

  exec(argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    return execLocal(this.name, this.wrap(argv), options);
  }

  spawn(argv: readonly string[]): HostProcess {
    return spawnLocal(this.wrap(argv));
  }

  async readFile(path: string): Promise<Buffer> {
    // `--` so a path can never be taken for an option of cat.
    const argv = ['cat', '--', path];
    const result = await this.exec(argv, { timeoutMs: READ_TIMEOUT_MS });
    if (result.code !== 0) throw execFailure(this.name, this.wrap(argv), result);
    return result.stdout;
  }

  connectUnix(path: string): Promise<Duplex> {
    return connectUnixLocal(path);
  }

  /** Through a relay process inside the namespace: its loopback and addresses are not this process's. */
  connectTcp(host: string, port: number): Promise<Duplex> {
    const argv = this.wrap([process.execPath, '-e', TCP_RELAY, '--', host, String(port)]);
    const [program, ...args] = argv as [string, ...string[]];
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const target = `${host}:${port}`;
    return new Promise((resolve, reject) => {
      let said = '';
      const fail = (err: Error) => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(err);
      };
      const timer = setTimeout(() => fail(new LivemigError('LME_HOST_EXEC', [this.name, `tcp relay to ${target}`, `no connection within ${CONNECT_TIMEOUT_MS} ms`])), CONNECT_TIMEOUT_MS);
      child.once('error', (err) => fail(new LivemigError('LME_HOST_EXEC', [this.name, `tcp relay to ${target}`, err.message], { cause: err })));
      child.once('close', (code) => {
        const [errno = '', ...rest] = said.trim().split(' ');
        // The errno as the relay saw it, so that a refused port reads as "QEMU not running".
        const cause = Object.assign(new Error(`connect ${target}: ${rest.join(' ') || said.trim() || `relay exited with ${code}`}`), { code: errno || undefined });
        fail(new LivemigError('LME_HOST_EXEC', [this.name, `tcp relay to ${target}`, cause.message], { cause }));
      });
      const onStderr = (chunk: Buffer) => {
        said += chunk.toString('utf8');
        if (!said.startsWith('connected\n')) return;
        clearTimeout(timer);
        child.stderr.off('data', onStderr);
        child.removeAllListeners('close');
        child.stderr.resume();
        const stream = Duplex.from({ readable: child.stdout, writable: child.stdin });
        stream.once('close', () => child.kill('SIGTERM'));
        child.once('close', () => stream.destroy());
        resolve(stream);
      };
      child.stderr.on('data', onStderr);
    });
  }

  async close(): Promise<void> {
    // nothing held open
  }
}
