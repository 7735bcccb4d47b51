import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshHost } from '../../src/hosts/ssh.js';
import type { QmpSession } from '../../src/sources/qmp/client.js';
import { QmpMonitor } from '../../src/sources/qmp/monitor.js';
import { parseQueryMigrate } from '../../src/sources/qmp/parse.js';
import { openQmpSession } from '../../src/sources/qmp/transports.js';
import type { QmpEvent } from '../../src/qemu/types.js';
import { VirshQmpSession } from '../../src/sources/qmp/virsh.js';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { domainXml, LIBVIRT_URI, run, virsh, waitFor } from '../helpers/libvirtd.js';
import { TestSshd } from '../helpers/sshd.js';

const workDir = mkdtempSync(join(tmpdir(), 'lme-ssh-qmp-'));
/** A name no remote shell would survive unquoted. */
const DOMAIN = `lme ssh 'q"m$p' ${process.pid}`;
let sshd: TestSshd;
let host: SshHost;
let qemu: ChildProcess | undefined;
const sessions: QmpSession[] = [];

/** Processes on this machine (the sshd's host) running program `words[0]` with all the other words as arguments. */
function remoteProcesses(...words: string[]): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return (argv[0] ?? '').endsWith(words[0] as string) && words.slice(1).every((w) => argv.includes(w));
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe.runIf(requireEnvironment(missingTools('/usr/sbin/sshd', 'ssh-keygen', 'qemu-system-x86_64', 'virsh', 'libvirtd'), needsRoot()))(
  'QMP and virsh through an SSH host (real sshd, real QEMU, real libvirtd)',
  () => {
    beforeAll(async () => {
      sshd = await TestSshd.start();
      host = sshd.sshHost('remote');
    });

    afterAll(async () => {
      await Promise.all(sessions.map((s) => s.close()));
      if (qemu && qemu.exitCode === null) {
        const exited = new Promise((r) => qemu?.once('exit', r));
        qemu.kill('SIGTERM');
        await exited;
      }
      try {
        await run('virsh', ['-c', LIBVIRT_URI, 'destroy', '--domain', DOMAIN]);
      } catch {
        // not created, or already gone
      }
      rmSync(join('/var/log/libvirt/qemu', `${DOMAIN}.log`), { force: true });
      await host?.close();
      await sshd?.cleanup();
      rmSync(workDir, { recursive: true, force: true });
    });

    it('opens a QMP session to a unix socket through the SSH host and gets its events', async () => {
      const socket = join(workDir, 'vm.qmp');
      const control = join(workDir, 'vm.control.qmp');
      qemu = spawn('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${socket},server=on,wait=off`, '-qmp', `unix:${control},server=on,wait=off`], {
        stdio: 'ignore',
      });
      const endpoint = { kind: 'unix' as const, path: socket };
      // The monitor retries through the host until QEMU has made its socket.
      const monitor = new QmpMonitor({ endpoint, sessionOptions: { host, connectTimeoutMs: 5000 }, backoff: { baseMs: 50, capMs: 200 } });
      const up = new Promise<QmpSession>((resolve) => monitor.once('up', resolve));
      monitor.start();
      const session = await up;
      const events: QmpEvent[] = [];
      session.on('event', (e) => events.push(e));
      expect(parseQueryMigrate(await session.execute('query-migrate'), 'ssh')).toEqual({ status: 'none', incoming: false });
      const orchestrator = await openQmpSession({ kind: 'unix', path: control });
      sessions.push(orchestrator);
      await orchestrator.execute('stop');
      await waitFor(async () => events.some((e) => e.event === 'STOP'), 'STOP through the SSH channel');
      await monitor.stop();
      expect(host.connectCount).toBe(1);
      // A socket that is not there fails as a connect error naming the target.
      await expect(openQmpSession({ kind: 'unix', path: join(workDir, 'none.qmp') }, { host, connectTimeoutMs: 2000 })).rejects.toMatchObject({
        code: 'LME_QMP_CONNECT',
      });
    });

    it('runs virsh on the SSH host for a domain whose name no shell would take', async () => {
      const xmlPath = join(workDir, 'domain.xml');
      writeFileSync(xmlPath, domainXml(DOMAIN));
      await virsh('create', xmlPath, '--paused');
      const session = await openQmpSession({ kind: 'virsh', domain: DOMAIN, uri: LIBVIRT_URI, virshPath: 'virsh' }, { host, connectTimeoutMs: 10_000 });
      expect(session).toBeInstanceOf(VirshQmpSession);
      const events: QmpEvent[] = [];
      session.on('event', (e) => events.push(e));
      expect(parseQueryMigrate(await session.execute('query-migrate'), 'virsh')).toEqual({ status: 'none', incoming: false });
      // The event stream is a remote `virsh qemu-monitor-event` on the SSH connection.
      // (Its channel may open after the probe command's: wait for it rather than race it.)
      await waitFor(async () => remoteProcesses('virsh', 'qemu-monitor-event', DOMAIN).length === 1, 'one remote virsh event stream', 8000);
      await waitFor(
        async () => {
          await virsh('resume', '--domain', DOMAIN);
          await virsh('suspend', '--domain', DOMAIN);
          await new Promise((r) => setTimeout(r, 100));
          return events.some((e) => e.event === 'RESUME') && events.some((e) => e.event === 'STOP');
        },
        'RESUME and STOP through remote virsh',
        8000,
      );
      await session.close();
      await waitFor(async () => remoteProcesses('virsh', 'qemu-monitor-event', DOMAIN).length === 0, 'the remote virsh event stream to end', 8000);
    });
  },
);
