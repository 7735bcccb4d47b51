import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHmac, randomBytes } from 'node:crypto';
import { SshHost, type SshHostOptions } from '../../src/hosts/ssh.js';
import { freePort } from './ports.js';

export const SSHD = '/usr/sbin/sshd';

/**
 * A real OpenSSH server on a loopback port, with its own host key, a user key for the test and
 * an authorized_keys file, all in a temp dir. Started as `sshd -D -e -f CONFIG -p PORT`; stopped
 * by PID (the listener and the per-connection processes it forked).
 */
export class TestSshd {
  private child: ChildProcess | undefined;
  port = 0;
  log = '';

  private constructor(
    readonly dir: string,
    readonly hostKeyPub: string,
    readonly userKey: string,
    /** Where it listens (127.0.0.1 unless told). */
    readonly address = '127.0.0.1',
    /** The network namespace it runs in (`ip netns exec`), if any: its forwarded TCP connections start there. */
    readonly netns?: string,
  ) {}

  /**
   * `sftp: false`: no sftp subsystem (hosts then read files with cat). `tcpForwarding`: writes
   * `AllowTcpForwarding yes|no` (unset: sshd's default, yes). `netns` with `address`: runs in that
   * namespace, listening on an address of it that this machine reaches. `logLevel`: DEBUG1 logs
   * each forwarded TCP connection.
   */
  static async start(
    options: { port?: number; hostKeyType?: 'ed25519' | 'ecdsa' | 'rsa'; sftp?: boolean; tcpForwarding?: boolean; netns?: string; address?: string; logLevel?: 'VERBOSE' | 'DEBUG1' } = {},
  ): Promise<TestSshd> {
    const dir = await mkdtemp(join(tmpdir(), 'lme-sshd-'));
    const type = options.hostKeyType ?? 'ed25519';
    const hostKey = join(dir, `host_${type}`);
    const userKey = join(dir, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', 'lme-test-host', '-f', hostKey]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'lme-test-user', '-f', userKey]);
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${userKey}.pub`));
    chmodSync(join(dir, 'authorized_keys'), 0o600);
    // Debian's sshd refuses to start without its privilege-separation directory (the service unit makes it).
    if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 });
    writeFileSync(
      join(dir, 'sshd_config'),
      [
        `ListenAddress ${options.address ?? '127.0.0.1'}`,
        `HostKey ${hostKey}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'AllowStreamLocalForwarding yes',
        ...(options.tcpForwarding === undefined ? [] : [`AllowTcpForwarding ${options.tcpForwarding ? 'yes' : 'no'}`]),
        ...(options.sftp === false ? [] : ['Subsystem sftp internal-sftp']),
        // One connection per host carries every channel; the default of 10 sessions is too few for the tests.
        'MaxSessions 200',
        'MaxStartups 200',
        `LogLevel ${options.logLevel ?? 'VERBOSE'}`,
        '',
      ].join('\n'),
    );
    const sshd = new TestSshd(dir, readFileSync(`${hostKey}.pub`, 'utf8').trim(), userKey, options.address, options.netns);
    await sshd.listen(options.port ?? (await freePort()));
    return sshd;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts (or restarts) the listener on `port` and waits until it sends its banner. */
  async listen(port: number): Promise<void> {
    this.port = port;
    const argv = [SSHD, '-D', '-e', '-f', join(this.dir, 'sshd_config'), '-p', String(port)];
    // `ip netns exec` execs sshd in place, so the PID stays sshd's (stop() kills by it).
    const [program, ...args] = (this.netns ? ['ip', 'netns', 'exec', this.netns, ...argv] : argv) as [string, ...string[]];
    const child = spawn(program, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.log += chunk.toString();
    });
    this.child = child;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}:\n${this.log}`);
      if (await banner(this.address, port)) return;
      if (Date.now() > deadline) throw new Error(`sshd did not answer on ${this.address}:${port} within 10 s:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Kills the listener and every connection process it forked (by PID): clients see their connection drop. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    const pids = [...descendants(child.pid), child.pid];
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
    this.child = undefined;
  }

  /** `[127.0.0.1]:PORT KEYTYPE BASE64`: the known_hosts line for this server. */
  knownHostsLine(host = this.address): string {
    const [type, key] = this.hostKeyPub.split(' ');
    return `[${host}]:${this.port} ${type} ${key}`;
  }

  /** The same line with the host field hashed as `ssh-keygen -H` writes it. */
  hashedKnownHostsLine(host = this.address): string {
    const [type, key] = this.hostKeyPub.split(' ');
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update(`[${host}]:${this.port}`).digest();
    return `|1|${salt.toString('base64')}|${hash.toString('base64')} ${type} ${key}`;
  }

  writeKnownHosts(name: string, lines: string[]): string {
    const path = join(this.dir, name);
    writeFileSync(path, `${lines.join('\n')}\n`);
    return path;
  }

  /** An SshHost for this server as root with the test's user key, its host key known (hashed), short timers for tests. */
  sshHost(name: string, overrides: Partial<SshHostOptions> = {}): SshHost {
    return new SshHost({
      name,
      address: this.address,
      port: this.port,
      user: 'root',
      identityFile: this.userKey,
      knownHostsFile: overrides.knownHostsFile ?? this.writeKnownHosts(`known_hosts.${name}`, [this.hashedKnownHostsLine()]),
      keepaliveIntervalMs: 1000,
      connectTimeoutMs: 5000,
      backoff: { baseMs: 100, capMs: 500 },
      ...overrides,
    });
  }

  async cleanup(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** PIDs of every process below `pid` (from /proc), deepest last. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

export { freePort } from './ports.js';

function banner(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('data', (chunk: Buffer) => done(chunk.toString().startsWith('SSH-')));
    socket.once('error', () => done(false));
    setTimeout(() => done(false), 1000);
  });
}
