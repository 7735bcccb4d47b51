import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LivemigError } from '../../src/errors.js';
import type { HostProcess } from '../../src/hosts/host.js';
import { SshHost, type SshHostOptions } from '../../src/hosts/ssh.js';
import { QmpStreamClient } from '../../src/sources/qmp/client.js';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { TestSshd, freePort } from '../helpers/sshd.js';

const workDir = mkdtempSync(join(tmpdir(), 'lme-ssh-hosts-'));
const hosts: SshHost[] = [];
let sshd: TestSshd;
let knownHosts: string;

function host(overrides: Partial<SshHostOptions> = {}): SshHost {
  const h = sshd.sshHost(`h${hosts.length}`, { knownHostsFile: knownHosts, ...overrides });
  hosts.push(h);
  return h;
}

/** Lines of a followed stream, as they arrive. */
function lines(proc: HostProcess): { seen: string[]; waitFor: (line: string, ms?: number) => Promise<void> } {
  const seen: string[] = [];
  let partial = '';
  proc.stdout.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    seen.push(...parts);
  });
  const waitFor = async (line: string, ms = 10_000) => {
    const deadline = Date.now() + ms;
    while (!seen.includes(line)) {
      if (Date.now() > deadline) throw new Error(`"${line}" not seen within ${ms} ms; seen: ${JSON.stringify(seen)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { seen, waitFor };
}

describe.runIf(requireEnvironment(missingTools('/usr/sbin/sshd', 'ssh-keygen', 'qemu-system-x86_64', 'tail'), needsRoot()))('SSH hosts against a real sshd', () => {
  beforeAll(async () => {
    sshd = await TestSshd.start();
    knownHosts = sshd.writeKnownHosts('known_hosts', [sshd.knownHostsLine()]);
  });

  afterAll(async () => {
    await Promise.all(hosts.map((h) => h.close()));
    await sshd?.cleanup();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('runs a command whose arguments reach the remote program unchanged, however odd', async () => {
    const h = host();
    const args = ['plain', 'two words', "it's", '$(touch /tmp/pwned)', '`id`', '-n', '', 'a\nb', '*', 'ü; rm -rf /', '"quoted"\\'];
    const result = await h.exec(['printf', '%s\\0', ...args]);
    expect(result.code).toBe(0);
    expect(result.stdout.toString().split('\0').slice(0, -1)).toEqual(args);
    const failed = await h.exec(['sh', '-c', 'echo oops >&2; exit 3']);
    expect(failed).toMatchObject({ code: 3, stderr: 'oops\n' });
    const piped = await h.exec(['wc', '-c'], { input: 'twelve bytes' });
    expect(piped.stdout.toString().trim()).toBe('12');
    expect(h.up).toBe(true);
  });

  it('reads /proc/net/dev and carries many channels over one connection', async () => {
    const h = host();
    const reads = await Promise.all(Array.from({ length: 20 }, () => h.readFile('/proc/net/dev')));
    for (const text of reads) expect(text.toString()).toContain('lo:');
    expect(h.connectCount).toBe(1);
    await expect(h.readFile('/nonexistent/file')).rejects.toMatchObject({ code: 'LME_HOST_EXEC' });
  });

  it('reads files with cat where sshd has no sftp subsystem, and with an ECDSA host key', async () => {
    const plain = await TestSshd.start({ sftp: false, hostKeyType: 'ecdsa' });
    try {
      const h = host({ port: plain.port, identityFile: plain.userKey, knownHostsFile: plain.writeKnownHosts('known_hosts', [plain.knownHostsLine()]) });
      expect((await h.readFile('/proc/net/dev')).toString()).toContain('lo:');
      expect(plain.log).toContain('subsystem request for sftp by user root failed, subsystem not found');
      await expect(h.readFile('/nonexistent/file')).rejects.toMatchObject({ code: 'LME_HOST_EXEC' });
    } finally {
      await plain.cleanup();
    }
  });

  it('authenticates with a key held by a real ssh-agent, with no key file configured', async () => {
    const agentSocket = join(workDir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', agentSocket], { stdio: 'ignore' });
    try {
      for (let i = 0; ; i++) {
        try {
          execFileSync('ssh-add', ['-q', sshd.userKey], { env: { ...process.env, SSH_AUTH_SOCK: agentSocket }, stdio: 'pipe' });
          break;
        } catch (err) {
          if (i > 50) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const h = host({ identityFile: undefined, agentSocket });
      expect((await h.exec(['echo', 'agent'])).stdout.toString()).toBe('agent\n');
      expect(sshd.log).toMatch(/Accepted publickey for root .* ED25519/);
    } finally {
      await stopChild(agent);
    }
  });

  it('follows a file with tail over SSH, and the follower ends when killed', async () => {
    const h = host();
    const file = join(workDir, 'followed.log');
    writeFileSync(file, 'old line\n');
    const proc = h.spawn(['tail', '-n', '0', '-F', file]);
    const out = lines(proc);
    // tail -F prints nothing until it watches; append until the first line comes through.
    const deadline = Date.now() + 10_000;
    let n = 0;
    while (out.seen.length === 0 && Date.now() < deadline) {
      appendFileSync(file, `line ${n++}\n`);
      await new Promise((r) => setTimeout(r, 100));
    }
    appendFileSync(file, 'the last line\n');
    await out.waitFor('the last line');
    expect(out.seen).not.toContain('old line');
    proc.kill();
    const exit = await proc.exited;
    expect(exit.code === null ? exit.signal : exit.code).not.toBeUndefined();
  });

  it('forwards a unix socket to a real QEMU monitor and speaks QMP through it', async () => {
    const socketPath = join(workDir, 'qemu.qmp');
    const qemu = spawn('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${socketPath},server=on,wait=off`], {
      stdio: 'ignore',
    });
    try {
      const h = host();
      let stream;
      for (let i = 0; ; i++) {
        try {
          stream = await h.connectUnix(socketPath);
          break;
        } catch (err) {
          if (i > 100) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const qmp = await QmpStreamClient.open(stream, `ssh:${socketPath}`);
      const status = await qmp.execute<{ status: string }>('query-status');
      expect(status.status).toMatch(/prelaunch|running|paused/);
      const migrate = await qmp.execute<{ status?: string }>('query-migrate');
      expect(migrate).toEqual({});
      await qmp.close();
      await expect(h.connectUnix(join(workDir, 'no-such.qmp'))).rejects.toMatchObject({ code: 'LME_SSH_CHANNEL' });
    } finally {
      await stopChild(qemu);
    }
  });

  it('reconnects after sshd is restarted mid-stream', async () => {
    const h = host();
    const file = join(workDir, 'restart.log');
    writeFileSync(file, '');
    const proc = h.spawn(['tail', '-n', '0', '-F', file]);
    const out = lines(proc);
    for (let n = 0; out.seen.length === 0; n++) {
      appendFileSync(file, `before ${n}\n`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const downs: Error[] = [];
    h.on('down', (reason) => downs.push(reason));
    await sshd.stop();
    await proc.exited; // the follower's channel died with its connection
    await waitUntil(() => !h.up);
    await expect(h.exec(['true'])).rejects.toBeInstanceOf(LivemigError);
    await sshd.listen(sshd.port);
    await waitUntil(() => h.up, 15_000);
    expect(h.connectCount).toBe(2);
    expect(downs[0]).toMatchObject({ code: 'LME_SSH_CLOSED' });
    const after = await h.exec(['echo', 'back']);
    expect(after.stdout.toString()).toBe('back\n');
    const again = lines(h.spawn(['tail', '-n', '1', file]));
    await again.waitFor(out.seen.at(-1) as string);
  });

  it('refuses a host whose key differs from known_hosts, and one not in it at all', async () => {
    const other = await TestSshd.start();
    try {
      // known_hosts names other's port with sshd's (different) key: a changed key.
      const changedFile = sshd.writeKnownHosts('known_hosts.changed', [`[127.0.0.1]:${other.port} ${sshd.hostKeyPub.split(' ').slice(0, 2).join(' ')}`]);
      const changed = host({ port: other.port, knownHostsFile: changedFile });
      const err = await changed.exec(['true']).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'LME_SSH_HOST_KEY_CHANGED' });
      expect((err as Error).message).toContain(changedFile);
      expect(changed.up).toBe(false);

      const unknownFile = sshd.writeKnownHosts('known_hosts.unknown', [sshd.knownHostsLine()]);
      const unknown = host({ port: other.port, knownHostsFile: unknownFile });
      await expect(unknown.exec(['true'])).rejects.toMatchObject({ code: 'LME_SSH_HOST_KEY_UNKNOWN' });

      // The right key, hashed as `ssh-keygen -H` writes it, is accepted.
      const hashedFile = sshd.writeKnownHosts('known_hosts.hashed', [sshd.knownHostsLine(), other.hashedKnownHostsLine()]);
      const hashed = host({ port: other.port, knownHostsFile: hashedFile, identityFile: other.userKey });
      expect((await hashed.exec(['echo', 'ok'])).stdout.toString()).toBe('ok\n');
      expect(other.log).toContain('Accepted publickey for root');
    } finally {
      await other.cleanup();
    }
  });

  it('a host that accepts TCP but never speaks SSH does not hold up another host', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => sockets.push(socket));
    const silentPort = await freePort();
    await new Promise<void>((resolve) => silent.listen(silentPort, '127.0.0.1', resolve));
    try {
      const dead = host({ port: silentPort, connectTimeoutMs: 4000 });
      const alive = host();
      let deadSettled = false;
      const deadCall = dead.exec(['true']).then(
        () => 'resolved',
        (err: unknown) => err,
      );
      void deadCall.finally(() => {
        deadSettled = true;
      });
      const results = await Promise.all(Array.from({ length: 5 }, (_, i) => alive.exec(['echo', String(i)])));
      expect(results.map((r) => r.stdout.toString().trim())).toEqual(['0', '1', '2', '3', '4']);
      // The live host answered five times while the silent one was still in its handshake.
      expect(deadSettled).toBe(false);
      expect(sockets.length).toBe(1);
      const err = await deadCall;
      expect(err).toMatchObject({ code: 'LME_SSH_CONNECT' });
      expect((err as Error).message).toMatch(/handshake/i);
      // Down now, between retries: calls fail at once instead of waiting for another handshake.
      await expect(dead.exec(['true'])).rejects.toMatchObject({ code: expect.stringMatching(/LME_SSH_(DOWN|CONNECT)/) });
      // close() during a handshake ends it at once (a silent host never holds up a shutdown).
      await dead.close();
      const seen = sockets.length;
      const another = host({ port: silentPort, connectTimeoutMs: 60_000 });
      another.start();
      await waitUntil(() => sockets.length > seen);
      const handshaking = sockets[seen] as Socket;
      const ended = new Promise<void>((resolve) => handshaking.once('close', () => resolve()));
      handshaking.resume(); // 'close' comes once the client's end has been read
      await another.close();
      await ended;
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });
});

async function waitUntil(condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}
