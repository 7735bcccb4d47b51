/**
 * The exporter on its default libvirt transport (rpc: libvirt's protocol on the read-only socket)
 * against a real private libvirtd (LibvirtDaemon: its own namespaces and state, so restarting it
 * disturbs nobody): discovery with nova's metadata and the interfaces, no process per VM, no
 * taint, a save job that is not a migration, a restart of libvirtd, and the same daemon reached
 * as a remote host through sshd's stream-local forwarding.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LibvirtDaemon } from '../../src/lab/libvirt-daemons.js';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { ExporterProcess, metricValue, writeConfig } from '../helpers/exporter-process.js';
import { domainXml } from '../helpers/libvirtd.js';
import { descendants, TestSshd } from '../helpers/sshd.js';

const NOVA_DOMAIN = `lme-rpc-nova-${process.pid}`;
const PLAIN_DOMAIN = `lme-rpc-plain-${process.pid}`;
const UUID = '5e0d6c1a-2b3f-4a4e-8d9c-0f1e2d3c4b5a';
const TAP = `lmetap${process.pid % 100_000}`;
const HOST = 'hv-rpc';

/** The exporter's descendant processes but tsx's esbuild service (the tests run the exporter from source). */
const children = (exporter: ExporterProcess): string[] =>
  descendants(exporter.child.pid!)
    .map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim())
    .filter((cmdline) => !/\besbuild\b/.test(cmdline));

const vmInfo = (text: string, vm: string): string | undefined => text.split('\n').find((l) => l.startsWith('livemig_vm_info{') && l.includes(`vm="${vm}"`));

describe.runIf(requireEnvironment(missingTools('libvirtd', 'virtlogd', 'virsh', 'qemu-system-x86_64', 'unshare', 'mount', 'ip'), needsRoot()))(
  'exporter on the libvirt rpc transport, against a real libvirtd',
  () => {
    let daemon: LibvirtDaemon;
    let dir: string;
    const exporters: ExporterProcess[] = [];

    const start = async (config: Record<string, unknown>): Promise<ExporterProcess> => {
      const exporter = await ExporterProcess.start(await writeConfig(dir, { state_file: join(dir, `state-${exporters.length}.json`), ...config }));
      exporters.push(exporter);
      return exporter;
    };
    const localConfig = () => ({ libvirt: { discover: 'on', socket: daemon.roSocket, host: HOST } });

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'lme-libvirt-source-'));
      daemon = await LibvirtDaemon.start({ network: { kind: 'new' } });
      const fixture = await readFile(new URL('../fixtures/libvirt-xml/nova-instance.domain.xml', import.meta.url), 'utf8');
      const metadata = /<metadata>[\s\S]*<\/metadata>/.exec(fixture)![0];
      const tap = `<interface type='ethernet'><target dev='${TAP}' managed='yes'/><model type='virtio'/></interface>`;
      const nova = domainXml(NOVA_DOMAIN, tap).replace('</name>', `</name>\n  <uuid>${UUID}</uuid>\n  ${metadata}`);
      await writeFile(join(dir, 'nova.xml'), nova);
      await writeFile(join(dir, 'plain.xml'), domainXml(PLAIN_DOMAIN));
      await daemon.virsh('create', join(dir, 'nova.xml'), '--paused');
      await daemon.virsh('create', join(dir, 'plain.xml'));
    }, 90_000);

    afterEach(async () => {
      await Promise.all(exporters.splice(0).map((e) => e.stop()));
    });

    afterAll(async () => {
      await daemon?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    }, 60_000);

    it("discovers the domains with nova's metadata and their interfaces, with no process per VM and no taint", async () => {
      const exporter = await start(localConfig());
      await expect.poll(async () => vmInfo(await exporter.metrics(), NOVA_DOMAIN), { timeout: 15_000 }).toBeDefined();
      const text = await exporter.metrics();
      const info = vmInfo(text, NOVA_DOMAIN);
      expect(info).toContain('flavor="m1.large"');
      expect(info).toContain('nova_name="web-frontend-1"');
      expect(info).toContain('nova_project="web-team"');
      expect(info).toContain(`interfaces="${TAP}"`);
      expect(vmInfo(text, PLAIN_DOMAIN)).toBeDefined();
      expect(metricValue(text, `livemig_source_up{source="libvirt",host="${HOST}"}`)).toBe(1);
      // One connection, no virsh: the exporter has no child process at all.
      expect(children(exporter)).toEqual([]);
      const { stdout } = await daemon.virsh('dominfo', NOVA_DOMAIN);
      expect(stdout).not.toMatch(/tainted/i);
      for (const domain of [NOVA_DOMAIN, PLAIN_DOMAIN]) {
        expect(await readFile(join(daemon.qemuLogDir, `${domain}.log`), 'utf8')).not.toContain('tainted');
      }
      expect(exporter.logs.some((l) => l.msg === 'watching libvirt')).toBe(true);
    }, 60_000);

    it('sees a save job come and go without taking it for a migration, and drops the saved domain', async () => {
      const exporter = await start(localConfig());
      await expect.poll(async () => vmInfo(await exporter.metrics(), PLAIN_DOMAIN), { timeout: 15_000 }).toBeDefined();
      const saved = join(dir, 'plain.save');
      await daemon.virsh('save', PLAIN_DOMAIN, saved);
      await expect.poll(async () => vmInfo(await exporter.metrics(), PLAIN_DOMAIN), { timeout: 15_000 }).toBeUndefined();
      expect(await exporter.migrations()).toEqual([]);
      await daemon.virsh('restore', saved);
      await expect.poll(async () => vmInfo(await exporter.metrics(), PLAIN_DOMAIN), { timeout: 15_000 }).toBeDefined();
      expect(await exporter.migrations()).toEqual([]);
    }, 90_000);

    it('survives a restart of libvirtd: the lost connection is counted, it reconnects and still watches the domains', async () => {
      const exporter = await start({ ...localConfig(), polling: { reconnect_max_backoff: '1s' } });
      const up = `livemig_source_up{source="libvirt",host="${HOST}"}`;
      await expect.poll(async () => metricValue(await exporter.metrics(), up), { timeout: 15_000 }).toBe(1);
      await daemon.restart();
      await expect.poll(() => exporter.logs.some((l) => l.msg === 'libvirt connection lost; reconnecting'), { timeout: 15_000 }).toBe(true);
      await expect.poll(() => exporter.logs.some((l) => l.msg === 'libvirt reachable again'), { timeout: 20_000 }).toBe(true);
      const text = await exporter.metrics();
      expect(metricValue(text, up)).toBe(1);
      expect(metricValue(text, `livemig_source_errors_total{source="libvirt",host="${HOST}",reason="connect"}`)).toBeGreaterThanOrEqual(1);
      // libvirtd's domains outlive its restart (it reconnects to their QEMUs), and so does watching them.
      expect(vmInfo(text, NOVA_DOMAIN)).toBeDefined();
      const saved = join(dir, 'plain.save');
      await daemon.virsh('destroy', PLAIN_DOMAIN).catch(() => undefined);
      await rm(saved, { force: true });
      await daemon.virsh('create', join(dir, 'plain.xml'));
      await expect.poll(async () => vmInfo(await exporter.metrics(), PLAIN_DOMAIN), { timeout: 15_000 }).toBeDefined();
    }, 90_000);

    it('watches a remote libvirt through its SSH connection (stream-local forwarding), checking its host key', async () => {
      const sshd = await TestSshd.start();
      try {
        const exporter = await start({
          hosts: [
            {
              name: 'hv-ssh',
              ssh: { address: '127.0.0.1', port: sshd.port, user: 'root', identity_file: sshd.userKey, known_hosts: sshd.writeKnownHosts('known_hosts.libvirt', [sshd.hashedKnownHostsLine()]) },
            },
          ],
          libvirt: { discover: 'off', hosts: [{ host: 'hv-ssh', socket: daemon.roSocket }] },
        });
        const up = 'livemig_source_up{source="libvirt",host="hv-ssh"}';
        await expect.poll(async () => metricValue(await exporter.metrics(), up), { timeout: 20_000 }).toBe(1);
        await expect.poll(async () => vmInfo(await exporter.metrics(), PLAIN_DOMAIN), { timeout: 15_000 }).toBeDefined();
        expect(children(exporter)).toEqual([]);
      } finally {
        await sshd.stop();
      }
    }, 60_000);
  },
);
