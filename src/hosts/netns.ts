import type { Duplex } from 'node:stream';
import { connectUnixLocal, execFailure, execLocal, spawnLocal } from './child.js';
import type { ExecOptions, ExecResult, Host, HostProcess } from './host.js';

export const NETNS_NAME = /^[A-Za-z0-9._-]+$/;
const READ_TIMEOUT_MS = 5_000;

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
    return [this.ipPath, 'netns', 'exec', this.netns, ...argv];
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

  async close(): Promise<void> {
    // nothing held open
  }
}
