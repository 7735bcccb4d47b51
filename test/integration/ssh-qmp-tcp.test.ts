/**
 * A `tcp:` QMP monitor on an SSH host is reached through the SSH connection (a direct-tcpip
 * channel), not from the exporter's machine. The proof: sshd runs inside a network namespace this
 * test creates, reached over a veth pair, and QEMU's QMP listens on THAT namespace's loopback,
 * 127.0.0.1:PORT, which from the exporter's namespace is a different loopback where nothing listens.
 * sshd's DEBUG1 log names each forwarded connection too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsHost } from '../../src/hosts/netns.js';
import { SshHost } from '../../src/hosts/ssh.js';
import { parseQueryMigrate } from '../../src/sources/qmp/parse.js';
import { isQemuGone, openQmpSession } from '../../src/sources/qmp/transports.js';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { ExporterProcess, metricValue, writeConfig } from '../helpers/exporter-process.js';
import { TestNetns } from '../helpers/netns.js';
import { TestSshd, freePort } from '../helpers/sshd.js';

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000, detail: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms\n${detail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** How a plain TCP connect from this process (the exporter's namespace) ends. */
function connectFromHere(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** PIDs of NetnsHost TCP relays (`node -e SCRIPT -- HOST PORT`) to `port`. */
function relays(port: number): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '').split('\0');
        return argv[0] === process.execPath && argv[1] === '-e' && argv.at(-2) === '127.0.0.1' && argv.at(-1) === String(port);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe.runIf(requireEnvironment(missingTools('/usr/sbin/sshd', 'ssh-keygen', 'qemu-system-x86_64', 'ip'), needsRoot()))(
  'QMP on tcp: through an SSH host (real sshd in a network namespace, real QEMU)',
  () => {
    const netns = new TestNetns();
    let ns: string;
    let dir: string;
    /** The namespace's end of the veth pair: the only way into it from here. */
    let remoteAddress: string;
    let sshd: TestSshd;
    let strictSshd: TestSshd;
    let qemu: ChildProcess | undefined;
    let qmpPort: number;
    const hosts: SshHost[] = [];
    let exporter: ExporterProcess | undefined;

    const sshHost = (server: TestSshd, name: string): SshHost => {
      const host = server.sshHost(name);
      hosts.push(host);
      return host;
    };

    beforeAll(async () => {
      await TestNetns.removeStale();
      dir = await mkdtemp(join(tmpdir(), 'lme-ssh-qmp-tcp-'));
      ns = await netns.namespace('sshtcp');
      // A veth pair from this namespace into the test's; deleting the namespace deletes both ends.
      const here = `lmt${randomBytes(3).toString('hex')}`;
      const net = randomInt(1, 254);
      remoteAddress = `169.254.${net}.2`;
      await netns.ip('link', 'add', here, 'type', 'veth', 'peer', 'name', 'uplink', 'netns', ns);
      await netns.ip('addr', 'add', `169.254.${net}.1/30`, 'dev', here);
      await netns.ip('link', 'set', here, 'up');
      await netns.address(ns, `${remoteAddress}/30`, 'uplink');
      await netns.ip('-n', ns, 'link', 'set', 'uplink', 'up');

      sshd = await TestSshd.start({ netns: ns, address: remoteAddress, tcpForwarding: true, logLevel: 'DEBUG1' });
      strictSshd = await TestSshd.start({ tcpForwarding: false });

      // A port free on this machine's loopback, so that "refused from here" is not an accident.
      qmpPort = await freePort();
      // `ip netns exec` execs QEMU in place: the PID is QEMU's.
      qemu = spawn(
        'ip',
        ['netns', 'exec', ns, 'qemu-system-x86_64', '-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `tcp:127.0.0.1:${qmpPort},server=on,wait=off`],
        { stdio: 'ignore' },
      );
      const inside = new NetnsHost('inside', ns);
      await waitFor('QEMU listening on the namespace loopback', async () => {
        const r = await inside.exec(['ss', '-Hltn', `sport = :${qmpPort}`]);
        return r.stdout.toString().includes(`127.0.0.1:${qmpPort}`);
      });
    });

    afterAll(async () => {
      await exporter?.stop();
      await Promise.all(hosts.map((h) => h.close()));
      if (qemu && qemu.exitCode === null && qemu.signalCode === null) {
        const exited = new Promise((r) => qemu?.once('exit', r));
        qemu.kill('SIGTERM');
        await exited;
      }
      await sshd?.cleanup();
      await strictSshd?.cleanup();
      await netns.cleanup();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('QEMU\'s QMP port is on the namespace\'s loopback only: refused from this namespace', async () => {
      expect(await connectFromHere('127.0.0.1', qmpPort)).toBe('ECONNREFUSED');
      const direct = openQmpSession({ kind: 'tcp', host: '127.0.0.1', port: qmpPort }, { connectTimeoutMs: 2000 });
      await expect(direct).rejects.toMatchObject({ code: 'LME_QMP_CONNECT' });
      expect(isQemuGone(await direct.catch((e: unknown) => e))).toBe(true);
    });

    it('a netns host reaches it through a relay inside the namespace', async () => {
      const inside = new NetnsHost('inside', ns);
      const session = await openQmpSession({ kind: 'tcp', host: '127.0.0.1', port: qmpPort }, { host: inside, connectTimeoutMs: 5000 });
      try {
        expect(parseQueryMigrate(await session.execute('query-migrate'), 'netns')).toEqual({ status: 'none', incoming: false });
        expect(relays(qmpPort)).toHaveLength(1);
      } finally {
        await session.close();
      }
      // Closing the session ends its relay process.
      await waitFor('the relay to exit', () => relays(qmpPort).length === 0, 5000);
      // A closed port in the namespace: the relay's ECONNREFUSED comes back as "QEMU not running".
      const closedPort = qmpPort === 65535 ? qmpPort - 1 : qmpPort + 1;
      const refused = await inside.connectTcp('127.0.0.1', closedPort).catch((e: unknown) => e);
      expect(refused).toMatchObject({ code: 'LME_HOST_EXEC' });
      expect((refused as Error).message).toContain(`127.0.0.1:${closedPort}`);
      expect(isQemuGone(refused)).toBe(true);
    });

    it('an SSH host opens a direct-tcpip channel: sshd connects to its own loopback', async () => {
      const host = sshHost(sshd, 'remote');
      const session = await openQmpSession({ kind: 'tcp', host: '127.0.0.1', port: qmpPort }, { host, connectTimeoutMs: 5000 });
      try {
        expect(parseQueryMigrate(await session.execute('query-migrate'), 'ssh')).toEqual({ status: 'none', incoming: false });
      } finally {
        await session.close();
      }
      expect(host.connectCount).toBe(1);
      // sshd (DEBUG1) logs the channel: "server_request_direct_tcpip: originator 127.0.0.1 port 0, target 127.0.0.1 port PORT".
      expect(sshd.log).toMatch(new RegExp(`direct_tcpip: originator .* target 127\\.0\\.0\\.1 port ${qmpPort}\\b`));
      // Nothing listening at the remote end: a connect error naming the target, taken as "QEMU not running".
      const closedPort = qmpPort === 65535 ? qmpPort - 1 : qmpPort + 1;
      const refused = await openQmpSession({ kind: 'tcp', host: '127.0.0.1', port: closedPort }, { host, connectTimeoutMs: 5000 }).catch((e: unknown) => e);
      expect(refused).toMatchObject({ code: 'LME_QMP_CONNECT' });
      expect((refused as Error).message).toContain(`tcp:127.0.0.1:${closedPort}`);
      expect((refused as Error).cause).toMatchObject({ code: 'LME_SSH_CHANNEL' });
      expect(isQemuGone(refused)).toBe(true);
    });

    it('an sshd with AllowTcpForwarding no is refused with LME_SSH_FORWARD_REFUSED, not taken for a stopped QEMU', async () => {
      const host = sshHost(strictSshd, 'strict');
      const refused = await openQmpSession({ kind: 'tcp', host: '127.0.0.1', port: qmpPort }, { host, connectTimeoutMs: 5000 }).catch((e: unknown) => e);
      expect(refused).toMatchObject({ code: 'LME_QMP_CONNECT' });
      expect((refused as Error).cause).toMatchObject({ code: 'LME_SSH_FORWARD_REFUSED' });
      expect((refused as Error).message).toMatch(/SSH host strict refused to forward TCP to 127\.0\.0\.1:\d+: .*AllowTcpForwarding/);
      expect(isQemuGone(refused)).toBe(false);
      await waitFor('sshd to log the refusal', () => strictSshd.log.includes('refused local port forward'), 5000, () => strictSshd.log);
      // The connection itself stays up for everything else.
      expect(host.up).toBe(true);
    });

    it('the exporter polls the tcp: monitor through its SSH host; a host refusing forwarding is reported, not fatal', async () => {
      const ssh = (server: TestSshd, name: string) => ({
        address: server.address,
        port: server.port,
        user: 'root',
        identity_file: server.userKey,
        known_hosts: server.writeKnownHosts(`known_hosts.exporter.${name}`, [server.knownHostsLine()]),
        keepalive_interval: '1s',
      });
      const file = await writeConfig(dir, {
        state_file: null,
        libvirt: { discover: 'off' },
        polling: { idle_interval: '200ms', reconnect_max_backoff: '1s' },
        hosts: [
          { name: 'remote', ssh: ssh(sshd, 'remote') },
          { name: 'strict', ssh: ssh(strictSshd, 'strict') },
        ],
        vms: [
          { name: 'vm-tcp', monitors: [{ host: 'remote', qmp: { tcp: `127.0.0.1:${qmpPort}` } }] },
          { name: 'vm-strict', monitors: [{ host: 'strict', qmp: { tcp: `127.0.0.1:${qmpPort}` } }] },
        ],
      });
      const channelsBefore = sshd.log.split('direct_tcpip: originator').length;
      exporter = await ExporterProcess.start(file);
      const running = exporter;
      await waitFor('monitor of vm-tcp up', async () => metricValue(await running.metrics(), 'livemig_qmp_monitor_up{vm="vm-tcp",host="remote"}') === 1, 20_000, () =>
        running.stderr.slice(-3000),
      );
      await running.waitForMonitors('vm-tcp', 1);
      expect(sshd.log.split('direct_tcpip: originator').length).toBeGreaterThan(channelsBefore);
      // Inside the namespace, the client end of QEMU's one QMP connection belongs to sshd.
      const inside = new NetnsHost('inside', ns);
      const clients = (await inside.exec(['ss', '-Htnp', 'state', 'established', `dport = :${qmpPort}`])).stdout.toString();
      expect(clients).toMatch(/users:\(\("sshd/);
      await waitFor('the refusal logged for vm-strict', () => running.logs.some((l) => /refused to forward TCP to 127\.0\.0\.1/.test(JSON.stringify(l))), 10_000, () =>
        running.stderr.slice(-3000),
      );
      const text = await running.metrics();
      expect(metricValue(text, 'livemig_qmp_monitor_up{vm="vm-strict",host="strict"}')).toBe(0);
      expect(metricValue(text, 'livemig_source_up{source="host",host="strict"}')).toBe(1);
      expect(metricValue(text, 'livemig_qmp_monitor_up{vm="vm-tcp",host="remote"}')).toBe(1);
      // sshd (in the namespace) restarted: the connection and the forwarded monitor come back.
      await sshd.stop();
      await waitFor('monitor of vm-tcp down', async () => metricValue(await running.metrics(), 'livemig_qmp_monitor_up{vm="vm-tcp",host="remote"}') === 0, 15_000);
      await sshd.listen(sshd.port);
      await waitFor('monitor of vm-tcp up again', async () => metricValue(await running.metrics(), 'livemig_qmp_monitor_up{vm="vm-tcp",host="remote"}') === 1, 20_000, () =>
        running.stderr.slice(-3000),
      );
      expect(running.logs.filter((l) => l.msg === 'SSH connection up' && l.host === 'remote')).toHaveLength(2);
      expect(await running.stop()).toBe(0);
      exporter = undefined;
    });
  },
);
