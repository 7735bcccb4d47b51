import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canConnect, isAlive, run, waitFor } from './libvirtd.js';

/**
 * A libvirtd (and its virtlogd) of our own, for tests that restart the daemon or must not be
 * disturbed by other users of the machine's libvirtd. It runs in its own mount namespace, with
 * tmpfs or private directories over /run/libvirt, /var/lib/libvirt, /var/cache/libvirt,
 * /var/log/libvirt and /etc/libvirt/qemu, and in its own network namespace so that its network
 * driver never touches the host's bridges or firewall. Only its sockets are shared, in a temp dir.
 */
export class PrivateLibvirtd {
  private child: ChildProcess | undefined;

  private constructor(readonly dir: string) {}

  /** @param readOnlyAuth what its read-only socket asks of a client that is not root ('polkit' is libvirt's default). */
  static async start(readOnlyAuth: 'none' | 'polkit' = 'none'): Promise<PrivateLibvirtd> {
    const dir = mkdtempSync(join(tmpdir(), 'lme-libvirtd-'));
    for (const sub of ['sock', 'lib', 'cache', 'log', 'etc-qemu']) mkdirSync(join(dir, sub));
    writeFileSync(
      join(dir, 'libvirtd.conf'),
      `unix_sock_dir = "${join(dir, 'sock')}"\nunix_sock_ro_perms = "0777"\nauth_unix_ro = "${readOnlyAuth}"\nauth_unix_rw = "none"\n`,
    );
    writeFileSync(
      join(dir, 'start.sh'),
      [
        'set -e',
        'D=$1',
        'mount --make-rprivate /',
        'mount -t tmpfs tmpfs /run/libvirt',
        'mount --bind "$D/lib" /var/lib/libvirt',
        'mount --bind "$D/cache" /var/cache/libvirt',
        'mount --bind "$D/log" /var/log/libvirt',
        'mount --bind "$D/etc-qemu" /etc/libvirt/qemu',
        'virtlogd -d -p "$D/virtlogd.pid"',
        'exec libvirtd -f "$D/libvirtd.conf" -p "$D/libvirtd.pid"',
      ].join('\n'),
    );
    const daemon = new PrivateLibvirtd(dir);
    await daemon.startDaemons();
    return daemon;
  }

  get roSocket(): string {
    return join(this.dir, 'sock', 'libvirt-sock-ro');
  }

  get uri(): string {
    return `qemu:///system?socket=${join(this.dir, 'sock', 'libvirt-sock')}`;
  }

  /** Where this daemon's QEMU logs go (its /var/log/libvirt/qemu). */
  qemuLog(domain: string): string {
    return join(this.dir, 'log', 'qemu', `${domain}.log`);
  }

  get libvirtdPid(): number | undefined {
    return this.child?.pid;
  }

  virsh(...args: string[]): Promise<{ stdout: string; stderr: string }> {
    return run('virsh', ['-c', this.uri, ...args]);
  }

  /** SIGTERM to libvirtd and virtlogd, then a fresh pair on the same directories and sockets. */
  async restart(): Promise<void> {
    await this.stopDaemons();
    await this.startDaemons();
  }

  /** Stops both daemons (destroying any domain left) and removes the directory. */
  async stop(): Promise<void> {
    const { stdout } = await this.virsh('list', '--name').catch(() => ({ stdout: '' }));
    for (const name of stdout.split('\n').filter(Boolean)) await this.virsh('destroy', name).catch(() => undefined);
    await this.stopDaemons();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async startDaemons(): Promise<void> {
    rmSync(this.roSocket, { force: true });
    const child = spawn('unshare', ['--mount', '--net', 'sh', join(this.dir, 'start.sh'), this.dir], { stdio: 'ignore' });
    this.child = child;
    await waitFor(async () => (await canConnect(this.roSocket)) || child.exitCode !== null, `private libvirtd socket ${this.roSocket}`, 20_000);
    if (child.exitCode !== null) throw new Error(`private libvirtd exited with ${child.exitCode} (see ${this.dir})`);
  }

  private async stopDaemons(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child?.pid && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    const virtlogd = readPid(join(this.dir, 'virtlogd.pid'));
    if (virtlogd && isAlive(virtlogd)) {
      process.kill(virtlogd, 'SIGTERM');
      await waitFor(async () => !isAlive(virtlogd), `private virtlogd ${virtlogd} to exit`);
    }
  }
}

function readPid(path: string): number | undefined {
  try {
    return Number(readFileSync(path, 'utf8').trim()) || undefined;
  } catch {
    return undefined;
  }
}
