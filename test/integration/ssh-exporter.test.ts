/**
 * The exporter process with SSH hosts from its config: a live one (the test's sshd) and one
 * that accepts TCP but never speaks SSH. The live host's interface counters are served while the
 * dead one is still stuck in its handshake.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { ExporterProcess, metricValue, writeConfig } from '../helpers/exporter-process.js';
import { TestSshd, freePort } from '../helpers/sshd.js';

async function waitForMetric(exporter: ExporterProcess, series: string, want: (v: number | undefined) => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (want(metricValue(await exporter.metrics(), series))) return;
    if (Date.now() > deadline) throw new Error(`${series} not as wanted within ${timeoutMs} ms:\n${exporter.stderr.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.runIf(requireEnvironment(missingTools('/usr/sbin/sshd', 'ssh-keygen', 'qemu-system-x86_64'), needsRoot()))('exporter with SSH hosts (real sshd)', () => {
  let sshd: TestSshd;
  let dir: string;
  let exporter: ExporterProcess | undefined;
  const held: Socket[] = [];
  const silent = createServer((socket) => held.push(socket));
  let silentPort = 0;

  beforeAll(async () => {
    sshd = await TestSshd.start();
    dir = await mkdtemp(join(tmpdir(), 'lme-ssh-exporter-'));
    silentPort = await freePort();
    await new Promise<void>((resolve) => silent.listen(silentPort, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    await exporter?.stop();
    for (const s of held) s.destroy();
    silent.close();
    await sshd?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves a live host\'s counters while a silent host is still in its handshake; refuses nothing else', async () => {
    const knownHosts = sshd.writeKnownHosts('known_hosts', [sshd.hashedKnownHostsLine(), `[127.0.0.1]:${silentPort} ${sshd.hostKeyPub.split(' ').slice(0, 2).join(' ')}`]);
    const ssh = (port: number) => ({ address: '127.0.0.1', port, user: 'root', identity_file: sshd.userKey, known_hosts: knownHosts, connect_timeout: '60s', keepalive_interval: '5s' });
    const file = await writeConfig(dir, {
      state_file: null,
      libvirt: { discover: 'off' },
      hosts: [
        { name: 'silent', ssh: ssh(silentPort), interfaces: ['lo'] },
        { name: 'live', ssh: ssh(sshd.port), interfaces: ['lo'] },
      ],
      netdev: { period: '500ms' },
    });
    exporter = await ExporterProcess.start(file);
    const deadline = Date.now() + 20_000;
    let text = '';
    while (metricValue(text, 'livemig_interface_receive_bytes_total{host="live",interface="lo"}') === undefined) {
      if (Date.now() > deadline) throw new Error(`live host's counters not served:\n${exporter.stderr.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
      text = await exporter.metrics();
    }
    expect(metricValue(text, 'livemig_interface_receive_bytes_total{host="live",interface="lo"}')).toBeGreaterThan(0);
    expect(metricValue(text, 'livemig_source_up{source="host",host="live"}')).toBe(1);
    expect(metricValue(text, 'livemig_source_up{source="netdev",host="live"}')).toBe(1);
    // The silent host's handshake (60 s allowed) is still open: it has held up nothing.
    expect(held.length).toBeGreaterThanOrEqual(1);
    expect(held.some((s) => !s.destroyed)).toBe(true);
    expect(metricValue(text, 'livemig_source_up{source="host",host="silent"}')).toBe(0);
    expect(metricValue(text, 'livemig_interface_receive_bytes_total{host="silent",interface="lo"}')).toBeUndefined();
    // The private key is never logged.
    expect(exporter.stderr).not.toContain('PRIVATE KEY');
    expect(exporter.logs.some((l) => l.msg === 'SSH connection up' && l.host === 'live')).toBe(true);
    await exporter.stop();
    exporter = undefined;
  });

  it('polls a real QEMU monitor through the SSH host, and reconnects both after sshd is restarted', async () => {
    const socket = join(dir, 'vm.qmp');
    const qemu = spawn('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${socket},server=on,wait=off`], { stdio: 'ignore' });
    try {
      const knownHosts = sshd.writeKnownHosts('known_hosts.2', [sshd.knownHostsLine()]);
      const file = await writeConfig(dir, {
        state_file: null,
        libvirt: { discover: 'off' },
        polling: { idle_interval: '200ms', reconnect_max_backoff: '1s' },
        hosts: [{ name: 'remote', ssh: { address: '127.0.0.1', port: sshd.port, user: 'root', identity_file: sshd.userKey, known_hosts: knownHosts, keepalive_interval: '1s' }, interfaces: ['lo'] }],
        netdev: { period: '200ms' },
        vms: [{ name: 'vm-ssh', monitors: [{ host: 'remote', qmp: { unix: socket } }] }],
      });
      exporter = await ExporterProcess.start(file);
      await exporter.waitForMonitors('vm-ssh', 1);
      await waitForMetric(exporter, 'livemig_qmp_monitor_up{vm="vm-ssh",host="remote"}', (v) => v === 1);
      await sshd.stop();
      await waitForMetric(exporter, 'livemig_source_up{source="host",host="remote"}', (v) => v === 0);
      await waitForMetric(exporter, 'livemig_qmp_monitor_up{vm="vm-ssh",host="remote"}', (v) => v === 0);
      await sshd.listen(sshd.port);
      await waitForMetric(exporter, 'livemig_source_up{source="host",host="remote"}', (v) => v === 1);
      await waitForMetric(exporter, 'livemig_qmp_monitor_up{vm="vm-ssh",host="remote"}', (v) => v === 1);
      await waitForMetric(exporter, 'livemig_source_up{source="netdev",host="remote"}', (v) => v === 1);
      expect(exporter.logs.filter((l) => l.msg === 'SSH connection up' && l.host === 'remote').length).toBe(2);
    } finally {
      const exited = new Promise((r) => qemu.once('exit', r));
      qemu.kill('SIGTERM');
      await exited;
    }
  });
});
