import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Duplex } from 'node:stream';
import { connectTcpLocal, connectUnixLocal, execLocal, spawnLocal } from './child.js';
import type { ExecOptions, ExecResult, Host, HostProcess } from './host.js';

/** This machine, in the exporter's own network namespace. */
export class LocalHost implements Host {
  readonly kind = 'local' as const;
  readonly up = true;

  constructor(readonly name: string) {}

  exec(argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    return execLocal(this.name, argv, options);
  }

  spawn(argv: readonly string[]): HostProcess {
    return spawnLocal(argv);
  }

  readFile(path: string): Promise<Buffer> {
    return readFile(path);
  }

  connectUnix(path: string): Promise<Duplex> {
    return connectUnixLocal(path);
  }

  connectTcp(host: string, port: number): Promise<Duplex> {
    return connectTcpLocal(host, port);
  }

  async close(): Promise<void> {
    // nothing held open
  }
}

/** This machine, for a source used without a host (the lab's own QMP sessions, tests). */
export function thisMachine(): LocalHost {
  return new LocalHost(hostname());
}
