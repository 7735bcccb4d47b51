import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Wall-clock ms, sub-millisecond. */
const wallNow = (): number => performance.timeOrigin + performance.now();

/** A span of wall-clock ms within which something happened. */
export interface Interval {
  startMs: number;
  endMs: number;
}

/**
 * Network namespaces for tests: namespaces, veth pairs, addresses, routes and blackhole routes,
 * through `ip` with argument arrays only. Names are unique per run (PREFIX-PID-RANDOM-LABEL), and
 * cleanup() deletes by name exactly the namespaces this instance created (devices inside go with
 * them). removeStale() deletes namespaces of the same prefix left by test processes that died.
 */
export class TestNetns {
  readonly id: string;
  private readonly created: string[] = [];

  constructor(readonly prefix = 'lmetest') {
    this.id = `${prefix}-${process.pid}-${randomBytes(2).toString('hex')}`;
  }

  /** Runs `ip ARGS...`; rejects with ip's stderr. */
  async ip(...args: string[]): Promise<string> {
    try {
      const { stdout } = await run('ip', args);
      return stdout;
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr?.trim();
      throw new Error(`ip ${args.join(' ')} failed: ${stderr || (err as Error).message}`, { cause: err });
    }
  }

  /** Creates namespace ID-LABEL with its loopback up; returns its name. */
  async namespace(label: string): Promise<string> {
    const name = `${this.id}-${label}`;
    await this.ip('netns', 'add', name);
    this.created.push(name);
    await this.ip('-n', name, 'link', 'set', 'lo', 'up');
    return name;
  }

  /** A veth pair between two namespaces, both ends up. Device names are per namespace. */
  async veth(a: { ns: string; dev: string }, b: { ns: string; dev: string }): Promise<void> {
    await this.ip('link', 'add', a.dev, 'netns', a.ns, 'type', 'veth', 'peer', 'name', b.dev, 'netns', b.ns);
    await this.ip('-n', a.ns, 'link', 'set', a.dev, 'up');
    await this.ip('-n', b.ns, 'link', 'set', b.dev, 'up');
  }

  async address(ns: string, cidr: string, dev: string): Promise<void> {
    await this.ip('-n', ns, 'addr', 'add', cidr, 'dev', dev);
  }

  /** `ip -n NS route add ARGS...` */
  async route(ns: string, ...args: string[]): Promise<void> {
    await this.ip('-n', ns, 'route', 'add', ...args);
  }

  /** `ip -n NS rule add ARGS...` */
  async rule(ns: string, ...args: string[]): Promise<void> {
    await this.ip('-n', ns, 'rule', 'add', ...args);
  }

  /** Adds a blackhole route; returns when the `ip` command ran (the route took effect in between). */
  async blackhole(ns: string, prefix: string, table?: string): Promise<Interval> {
    return this.timed(['-n', ns, 'route', 'add', 'blackhole', prefix, ...(table ? ['table', table] : [])]);
  }

  /** Removes a blackhole route added by blackhole(); returns when the `ip` command ran. */
  async unblackhole(ns: string, prefix: string, table?: string): Promise<Interval> {
    return this.timed(['-n', ns, 'route', 'del', 'blackhole', prefix, ...(table ? ['table', table] : [])]);
  }

  /** Deletes the namespaces this instance created; never throws. */
  async cleanup(): Promise<void> {
    for (const name of this.created.splice(0).reverse()) await deleteNamespace(name);
  }

  /** Deletes PREFIX-PID-* namespaces whose test process is gone. */
  static async removeStale(prefix = 'lmetest'): Promise<void> {
    const { stdout } = await run('ip', ['netns', 'list']);
    for (const line of stdout.split('\n')) {
      const name = line.split(' ')[0] ?? '';
      const match = new RegExp(`^${prefix}-(\\d+)-`).exec(name);
      if (match && !isAlive(Number(match[1]))) await deleteNamespace(name);
    }
  }

  private async timed(args: string[]): Promise<Interval> {
    const startMs = wallNow();
    await this.ip(...args);
    return { startMs, endMs: wallNow() };
  }
}

async function deleteNamespace(name: string): Promise<void> {
  try {
    await run('ip', ['netns', 'del', name]);
  } catch {
    // Already gone.
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
