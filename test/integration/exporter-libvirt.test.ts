/**
 * The exporter watching libvirt domains through virsh, against a real libvirtd (started once per
 * run by test/global-setup.ts) and a real transient domain.
 */
import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { ExporterProcess, metricValue, writeConfig } from '../helpers/exporter-process.js';
import { domainXml, virsh } from '../helpers/libvirtd.js';

const DOMAIN = `lme-exporter-${process.pid}`;
const HOST = hostname();


async function monitorCommand(command: string, args?: Record<string, unknown>): Promise<unknown> {
  const { stdout } = await virsh('qemu-monitor-command', '--domain', DOMAIN, '--cmd', JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) }));
  return (JSON.parse(stdout) as { return: unknown }).return;
}

/** A TCP peer that reads and discards: the far end of an outgoing migration without a second QEMU. */
async function sink(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => socket.resume());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : 0 };
}

describe.runIf(requireEnvironment(missingTools('virsh', 'libvirtd', 'qemu-system-x86_64', 'unshare'), needsRoot()))('exporter with libvirt domains (virsh transport)', () => {
  let dir: string;
  const exporters: ExporterProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lme-libvirt-'));
    const xml = join(dir, 'domain.xml');
    await writeFile(xml, domainXml(DOMAIN));
    await virsh('create', xml);
  });
  afterEach(async () => {
    await Promise.all(exporters.splice(0).map((e) => e.stop()));
  });
  afterAll(async () => {
    await virsh('destroy', '--domain', DOMAIN).catch(() => undefined);
    await rm(join('/var/log/libvirt/qemu', `${DOMAIN}.log`), { force: true });
    await rm(dir, { recursive: true, force: true });
  });

  it('discovers the local domains on its defaults and records a migration made through libvirt’s QEMU', async () => {
    // Defaults but for the state file and the transport: libvirt discovery is "auto" and finds virsh and libvirtd.
    const file = await writeConfig(dir, { state_file: join(dir, 'state.json'), libvirt: { transport: 'virsh', discover_interval: '1s' } });
    const exporter = await ExporterProcess.start(file);
    exporters.push(exporter);
    await exporter.waitForMonitors(DOMAIN, 1);
    const text = await exporter.metrics();
    expect(metricValue(text, `livemig_qmp_monitor_up{vm="${DOMAIN}",host="${HOST}"}`)).toBe(1);
    expect(metricValue(text, `livemig_qemu_migration_status{vm="${DOMAIN}",host="${HOST}",status="none"}`)).toBe(1);
    expect(metricValue(text, `livemig_source_up{source="libvirt",host="${HOST}"}`)).toBe(1);

    // An outgoing migration, slowed to a few seconds, to a TCP sink.
    const { server, port } = await sink();
    try {
      await monitorCommand('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
      await monitorCommand('migrate-set-parameters', { 'max-bandwidth': 100_000 });
      await monitorCommand('migrate', { uri: `tcp:127.0.0.1:${port}` });
      const record = await exporter.waitForRecord((r) => r.vm === DOMAIN, 30_000);
      const final = (await monitorCommand('query-migrate')) as { status: string; ram: { transferred: number }; 'total-time': number };
      expect(final.status).toBe('completed');
      expect(record).toMatchObject({ result: 'completed', mode: 'precopy', source: { host: HOST } });
      expect(record.bytes.transferred?.value).toBe(final.ram.transferred);
      expect(record.qemu.totalTimeMs?.value).toBe(final['total-time']);
      expect(record.startedAt.evidence).toMatch(/event MIGRATION|query-migrate/);
    } finally {
      server.close();
    }
  });

  it("takes a discovered domain's instance UUID and nova's flavor, name and project from its XML; nova's log lines join it with no vms entry", async () => {
    const novaDomain = `lme-nova-${process.pid}`;
    const fixture = await readFile(new URL('../fixtures/libvirt-xml/nova-instance.domain.xml', import.meta.url), 'utf8');
    const metadata = /<metadata>[\s\S]*<\/metadata>/.exec(fixture)![0];
    const uuid = '0b5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f';
    const xml = join(dir, 'nova-domain.xml');
    await writeFile(xml, domainXml(novaDomain).replace('</name>', `</name>\n  <uuid>${uuid}</uuid>\n  ${metadata}`));
    await virsh('create', xml, '--paused');
    try {
      const log = join(dir, 'nova-compute.log');
      await writeFile(log, '');
      const file = await writeConfig(dir, {
        state_file: join(dir, 'state-nova.json'),
        records: { max_age: '3650d' },
        libvirt: { transport: 'virsh', discover_interval: '1s' },
        logs: [{ path: log, timezone: 'UTC' }],
        logs_options: { poll_interval: '100ms' },
      });
      const exporter = await ExporterProcess.start(file);
      exporters.push(exporter);
      await exporter.waitForMonitors(novaDomain, 1);
      const info = (await exporter.metrics()).split('\n').find((l) => l.startsWith('livemig_vm_info{') && l.includes(`vm="${novaDomain}"`));
      expect(info).toContain('flavor="m1.large"');
      expect(info).toContain('nova_name="web-frontend-1"');
      expect(info).toContain('nova_project="web-team"');
      // nova's lines of a migration of that instance (the 2026.1 source log): a record for the domain.
      await appendFile(log, await readFile(new URL('../fixtures/logs/nova-compute.33.0-2026.1.src.log', import.meta.url), 'utf8'));
      const record = await exporter.waitForRecord((r) => r.vm === novaDomain && r.nova !== null && r.nova !== undefined, 40_000);
      expect(record.nova?.instanceUuid).toBe(uuid);
      expect(record.labels.flavor).toBe('m1.large');
    } finally {
      await virsh('destroy', '--domain', novaDomain).catch(() => undefined);
      await rm(join('/var/log/libvirt/qemu', `${novaDomain}.log`), { force: true });
    }
  }, 60_000);

  it('drops a domain that is gone from its series', async () => {
    const file = await writeConfig(dir, { state_file: join(dir, 'state2.json'), libvirt: { transport: 'virsh', discover_interval: '1s' } });
    const exporter = await ExporterProcess.start(file);
    exporters.push(exporter);
    const up = `livemig_qmp_monitor_up{vm="${DOMAIN}",host="${HOST}"}`;
    await expect.poll(async () => metricValue(await exporter.metrics(), up), { timeout: 10_000 }).toBe(1);
    await virsh('destroy', '--domain', DOMAIN);
    await expect.poll(async () => metricValue(await exporter.metrics(), up), { timeout: 10_000 }).toBeUndefined();
  });

  it('without a config and without libvirt, watches nothing, says so, and still serves', async () => {
    const stateDir = '/var/lib/livemig-exporter';
    const hadStateDir = existsSync(stateDir);
    // A mount namespace of its own with an empty /run/libvirt: this machine without libvirt.
    const noLibvirt = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs none /run/libvirt && exec "$@"', 'sh'];
    const exporter = await ExporterProcess.start(null, [], {}, noLibvirt);
    exporters.push(exporter);
    try {
      expect(exporter.logs.some((l) => String(l.msg).includes('libvirt not found'))).toBe(true);
      expect(exporter.logs.some((l) => String(l.msg).startsWith('watching no VMs'))).toBe(true);
      expect((await exporter.get('/-/ready')).status).toBe(200);
      expect(await exporter.metrics()).toContain('livemig_build_info{');
    } finally {
      await exporter.stop();
      if (!hadStateDir) await rm(stateDir, { recursive: true, force: true });
    }
  });
});
