/**
 * A real libvirt-driven hybrid live migration on one machine: two libvirt daemons, one in each
 * lab host's namespace with its own host UUID (src/lab/libvirt-daemons.ts), and nova's way of
 * asking for it: `virsh migrate --live --postcopy --postcopy-after-precopy`. The guest is the
 * lab's Linux guest (TCG, direct kernel boot: nothing libvirt would call tainted).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { readFile, mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLinuxGuest, linuxGuestAppend, type LinuxGuestImage } from '../../src/lab/guest/linux.js';
import { LabLibvirt } from '../../src/lab/libvirt-daemons.js';
import { LabNetwork } from '../../src/lab/netns.js';
import { LocalHost } from '../../src/hosts/local.js';
import { LibvirtClient } from '../../src/sources/libvirt/client.js';
import { decodePacket } from '../../src/sources/libvirt/packet.js';
import { MessageType, Procedure } from '../../src/sources/libvirt/protocol.js';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { ExporterProcess, writeConfig } from '../helpers/exporter-process.js';
import { run, waitFor, xmlEscape } from '../helpers/libvirtd.js';

const MiB = 1024 * 1024;
const GUEST = { memoryMiB: 256, fillMiB: 32, dirtyMiB: 64 };
const DOMAIN = `lme-libvirt-mig-${process.pid}`;

function domainXml(image: LinuxGuestImage): string {
  const append = linuxGuestAppend({ address: '10.0.2.15/24', arpNotify: true, fillMiB: GUEST.fillMiB, dirtyMiB: GUEST.dirtyMiB });
  return `<domain type='qemu'>
  <name>${xmlEscape(DOMAIN)}</name>
  <memory unit='MiB'>${GUEST.memoryMiB}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${xmlEscape(image.kernel)}</kernel>
    <initrd>${xmlEscape(image.initrd)}</initrd>
    <cmdline>${xmlEscape(append)}</cmdline>
  </os>
  <cpu mode='custom' match='exact' check='none'><model fallback='allow'>qemu64</model></cpu>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <serial type='file'><source path='/var/log/libvirt/qemu/${xmlEscape(DOMAIN)}.serial'/></serial>
    <interface type='user'><model type='virtio'/></interface>
  </devices>
</domain>
`;
}

/** `virsh event --all --loop --timestamp` on one daemon: a line per event, job statistics as indented lines. */
class EventLog {
  private text = '';
  private constructor(private readonly child: ChildProcess) {
    child.stdout?.on('data', (chunk: Buffer) => (this.text += chunk.toString()));
  }

  static start(uri: string): EventLog {
    return new EventLog(spawn('virsh', ['-c', uri, 'event', '--all', '--loop', '--timestamp'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LC_ALL: 'C' } }));
  }

  /** "lifecycle: Suspended Post-copy", "migration-iteration: 2", "job-completed", in order. */
  events(): string[] {
    return [...this.text.matchAll(/event '([\w-]+)' for domain '[^']*':?(?: (.*))?$/gm)].map(([, kind, detail]) =>
      kind === 'migration-iteration' ? `${kind}: ${/iteration: '(\d+)'/.exec(detail ?? '')?.[1]}` : detail ? `${kind}: ${detail}` : kind!,
    );
  }

  /** The job-completed event's statistics. */
  jobStats(): Record<string, number> {
    const block = /event 'job-completed'[^\n]*\n((?:\t[^\n]*\n)*)/.exec(this.text)?.[1] ?? '';
    return Object.fromEntries([...block.matchAll(/^\t(\w+): (-?\d+)$/gm)].map(([, k, v]) => [k!, Number(v)]));
  }

  raw(): string {
    return this.text;
  }

  stop(): void {
    this.child.kill();
  }
}

/**
 * A libvirt client of the test's own on one daemon's read-only socket, keeping every packet, so
 * that LME_CAPTURE_LIBVIRT=1 saves a migration's events and job statistics for the unit tests
 * (test/fixtures/libvirt/README.md).
 */
class PacketLog {
  private constructor(
    readonly client: LibvirtClient,
    private readonly packets: Buffer[],
  ) {}

  static async open(socket: string): Promise<PacketLog> {
    const packets: Buffer[] = [];
    const client = await LibvirtClient.open(await new LocalHost('local').connectUnix(socket), `unix:${socket}`, {
      tap: (direction, raw) => direction === 'in' && packets.push(Buffer.from(raw)),
    });
    const log = new PacketLog(client, packets);
    for (const event of ['LIFECYCLE', 'MIGRATION_ITERATION', 'JOB_COMPLETED'] as const) await client.registerDomainEvent(event);
    return log;
  }

  /** The packets of one procedure and message type, whose body passes `match`. */
  find(procedure: number, type: number, match: (body: Buffer) => boolean = () => true): Buffer[] {
    return this.packets.filter((raw) => {
      const { header, body } = decodePacket(raw);
      return header.procedure === procedure && header.type === type && match(body);
    });
  }

  save(name: string, raw: Buffer | undefined): void {
    if (process.env.LME_CAPTURE_LIBVIRT !== '1') return;
    if (!raw) throw new Error(`nothing captured for ${name}`);
    writeFileSync(new URL(`../fixtures/libvirt/libvirt-9.0.${name}.bin`, import.meta.url), raw);
  }
}

/** The lifecycle event body's last two words: event and detail. */
const lifecycleIs = (event: number, detail: number) => (body: Buffer) => body.readInt32BE(body.length - 8) === event && body.readInt32BE(body.length - 4) === detail;

const virsh = (uri: string, ...args: string[]) => run('virsh', ['-c', uri, ...args], { env: { ...process.env, LC_ALL: 'C' } });

describe.runIf(requireEnvironment(missingTools('libvirtd', 'virtlogd', 'virsh', 'qemu-system-x86_64', 'ip', 'unshare', 'gcc', 'apt-get', 'dpkg-deb'), needsRoot()))(
  'a libvirt-driven live migration between two libvirt daemons on one machine',
  () => {
    let network: LabNetwork;
    let libvirt: LabLibvirt;
    let dir: string;
    let image: LinuxGuestImage;
    const logs: EventLog[] = [];
    const exporters: ExporterProcess[] = [];
    const clients: LibvirtClient[] = [];

    beforeAll(async () => {
      image = await buildLinuxGuest();
      dir = await mkdtemp(join(tmpdir(), 'lme-lab-libvirt-'));
      await chmod(dir, 0o755);
      network = await LabNetwork.create();
      libvirt = await LabLibvirt.start(network, dir);
    }, 180_000);

    afterAll(async () => {
      for (const log of logs) log.stop();
      await Promise.all(exporters.map((e) => e.stop()));
      await Promise.all(clients.map((c) => c.close()));
      await libvirt?.stop();
      await network?.destroy();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('gives each daemon a host UUID of its own', async () => {
      const uuids = await Promise.all(
        Object.values(libvirt.daemons).map(async (d) => /<uuid>([^<]+)<\/uuid>/.exec((await virsh(d.uri, 'capabilities')).stdout)?.[1]),
      );
      expect(uuids).toEqual([libvirt.daemons.src.hostUuid, libvirt.daemons.dst.hostUuid]);
      expect(new Set(uuids).size).toBe(2);
    });

    it('migrates a dirtying guest the way nova asks for hybrid mode: pre-copy, then post-copy after the first pass', async () => {
      const { src, dst } = libvirt.daemons;
      const xml = join(dir, 'domain.xml');
      await writeFile(xml, domainXml(image));
      await virsh(src.uri, 'create', xml);
      const serial = join(src.qemuLogDir, `${DOMAIN}.serial`);
      await waitFor(async () => (await readFile(serial, 'utf8').catch(() => '')).includes('dirtying'), 'the guest to dirty its memory', 60_000);
      // Slow enough that the dirtied range never converges in pre-copy.
      await virsh(src.uri, 'migrate-setspeed', DOMAIN, '32');
      const [srcEvents, dstEvents] = [EventLog.start(src.uri), EventLog.start(dst.uri)];
      logs.push(srcEvents, dstEvents);
      const [srcPackets, dstPackets] = [await PacketLog.open(src.roSocket), await PacketLog.open(dst.roSocket)];
      clients.push(srcPackets.client, dstPackets.client);
      // The exporter on its libvirt source, watching both daemons as two hosts (their read-only
      // sockets), and the migration link's byte counters in both namespaces.
      const device = network.layout.migration.device;
      const exporter = await ExporterProcess.start(
        await writeConfig(dir, {
          state_file: join(dir, 'state.json'),
          hosts: [
            { name: 'src', netns: network.namespaces.src, interfaces: [device] },
            { name: 'dst', netns: network.namespaces.dst, interfaces: [device] },
          ],
          libvirt: { discover: 'off', hosts: [{ host: 'src', socket: src.roSocket }, { host: 'dst', socket: dst.roSocket }] },
          netdev: { period: '1s', migrating_period: '100ms' },
        }),
      );
      exporters.push(exporter);
      await expect.poll(async () => (await exporter.metrics()).includes(`livemig_vm_info{vm="${DOMAIN}"`), { timeout: 15_000 }).toBe(true);
      await new Promise((r) => setTimeout(r, 500));

      const started = Date.now();
      // Job statistics as the libvirt source reads them while the job runs (nova's 2 Hz).
      const domainRef = (await srcPackets.client.listAllDomains()).find((d) => d.name === DOMAIN)!;
      const running: string[] = [];
      const poller = setInterval(() => {
        void srcPackets.client.getJobStats(domainRef).then(
          (job) => running.push(`${job.typeName}/${String(job.stats.operation)}`),
          () => undefined,
        );
      }, 500);
      // The live series while it runs, from the 2 Hz job statistics (the QMP series' names).
      const live = new Set<string>();
      const scraper = setInterval(() => {
        void exporter.metrics().then((text) => {
          for (const line of text.split('\n')) {
            if (!line.includes(`vm="${DOMAIN}",host="src"`) || line.startsWith('#')) continue;
            if (/^livemig_qemu_migration_status\{.*\} 1$/.test(line)) live.add(line.replace(/^.*status="([^"]+)".*$/, 'status $1'));
            if (line.startsWith('livemig_qemu_migration_ram_total_bytes{')) live.add(`total ${line.split(' ').at(-1)}`);
          }
        }, () => undefined);
      }, 400);
      await virsh(src.uri, 'migrate', '--live', '--postcopy', '--postcopy-after-precopy', '--domain', DOMAIN, '--desturi', dst.uri, '--migrateuri', `tcp://${network.migrationAddress('dst')}`);
      const tookMs = Date.now() - started;
      clearInterval(poller);
      clearInterval(scraper);
      await waitFor(async () => srcEvents.events().includes('job-completed'), 'the job-completed event', 10_000).catch((err: unknown) => {
        console.log(`source events: ${srcEvents.raw()}\ndestination events: ${dstEvents.raw()}`);
        throw err;
      });

      expect((await virsh(dst.uri, 'domstate', DOMAIN)).stdout.trim()).toBe('running');
      expect(await virsh(src.uri, 'domstate', DOMAIN).then(() => 'present', () => 'gone')).toBe('gone');
      const stats = srcEvents.jobStats();
      console.log(`libvirt migration of ${DOMAIN}: ${tookMs} ms; source events ${srcEvents.events().join(', ')}; destination events ${dstEvents.events().join(', ')}`);
      console.log(`job-completed: ${JSON.stringify(stats)}`);

      const srcSeen = srcEvents.events();
      expect(srcSeen.slice(0, 2)).toEqual(['migration-iteration: 1', 'migration-iteration: 2']);
      expect(srcSeen).toContain('lifecycle: Suspended Post-copy');
      expect(srcSeen.indexOf('lifecycle: Suspended Post-copy')).toBeGreaterThan(srcSeen.indexOf('migration-iteration: 2'));
      expect(srcSeen).toContain('lifecycle: Stopped Migrated');
      expect(dstEvents.events()).toEqual(expect.arrayContaining(['lifecycle: Started Migrated', 'lifecycle: Resumed Post-copy']));
      // Hybrid: the dirtied range crosses in pre-copy and again in post-copy, beside what was filled once.
      expect(stats.memory_iteration).toBeGreaterThanOrEqual(3);
      expect(stats.memory_processed).toBeGreaterThan((GUEST.fillMiB + 2 * GUEST.dirtyMiB) * MiB);
      expect(stats.memory_processed).toBeLessThan(GUEST.memoryMiB * MiB + GUEST.dirtyMiB * MiB);
      expect(stats.downtime).toBeGreaterThan(0);

      // The exporter's record of it: libvirt's own figures, each with libvirt's evidence, one record for both sides.
      const record = await exporter.waitForRecord((r) => r.vm === DOMAIN && r.interfaces !== undefined && r.interfaces !== null, 30_000);
      console.log(`record: ${JSON.stringify(record)}`);
      expect(record).toMatchObject({ result: 'completed', mode: 'hybrid', source: { host: 'src', monitor: 'libvirt:src' }, destination: { host: 'dst', monitor: 'libvirt:dst' } });
      expect(record.bytes.transferred).toEqual({ value: stats.memory_processed, evidence: 'libvirt:source job stats memory_processed' });
      expect(record.qemu.downtimeMs).toEqual({ value: stats.downtime, evidence: 'libvirt:source job stats downtime' });
      expect(record.qemu.totalTimeMs).toEqual({ value: stats.time_elapsed, evidence: 'libvirt:source job stats time_elapsed' });
      expect(record.qemu.setupTimeMs?.value).toBe(stats.setup_time);
      expect(record.qemu.postcopyRequests?.value).toBe(stats.memory_postcopy_requests);
      expect(record.qemu.passes?.value).toBe(stats.memory_iteration);
      expect(record.qemu.passesBeforePostcopy?.value).toBe(2);
      expect(record.durationSeconds).toEqual({ value: Number(stats.time_elapsed) / 1000, evidence: 'libvirt:source job stats time_elapsed' });
      expect(record.resultEvidence).toBe('libvirt:source job-completed event');
      expect(record.startedAt.evidence).toBe('libvirt:source migration-iteration event 1');
      expect(record.stoppedAt?.evidence).toBe('libvirt:source lifecycle event suspended migrated');
      expect(record.postcopyAt?.evidence).toBe('libvirt:source lifecycle event suspended postcopy');
      expect(record.resumedAt?.evidence).toBe('libvirt:destination lifecycle event resumed postcopy');
      expect(record.endedAt?.evidence).toBe('libvirt:source job-completed event');
      expect(record.statuses.map((x) => `${x.side} ${x.status}`)).toEqual(expect.arrayContaining(['source active', 'source postcopy-active', 'source completed', 'destination active', 'destination postcopy-active', 'destination completed']));
      // The bytes libvirt counted crossed the migration link: what the source's veth sent, within 5 %.
      const sent = record.interfaces?.sourceTransmitBytes?.value ?? 0;
      console.log(`libvirt memory_processed ${stats.memory_processed} B; migration link: source sent ${sent} B (ratio ${(sent / Number(stats.memory_processed)).toFixed(4)})`);
      expect(sent / Number(stats.memory_processed)).toBeGreaterThan(0.95);
      expect(sent / Number(stats.memory_processed)).toBeLessThan(1.05);

      console.log(`live series of the source while it ran: ${[...live].join(', ')}`);
      expect(live).toContain('status active');
      expect(live).toContain('status postcopy-active');
      expect(live).toContain(`total ${stats.memory_total}`);
      // What the libvirt source itself reads: an unbounded job of operation 5 (migration out) while it runs.
      expect(running.length).toBeGreaterThanOrEqual(5);
      expect(running.slice(0, 3)).toEqual(['unbounded/5', 'unbounded/5', 'unbounded/5']);
      const polled = srcPackets.find(Procedure.DOMAIN_GET_JOB_STATS, MessageType.reply, (body) => body.length > 200);
      srcPackets.save('domain-get-job-stats.migration-running.reply', polled[1]);
      srcPackets.save('event.job-completed.migration', srcPackets.find(Procedure.DOMAIN_EVENT_CALLBACK_JOB_COMPLETED, MessageType.message)[0]);
      srcPackets.save('event.lifecycle.suspended-postcopy', srcPackets.find(Procedure.DOMAIN_EVENT_CALLBACK_LIFECYCLE, MessageType.message, lifecycleIs(3, 7))[0]);
      srcPackets.save('event.lifecycle.stopped-migrated', srcPackets.find(Procedure.DOMAIN_EVENT_CALLBACK_LIFECYCLE, MessageType.message, lifecycleIs(5, 3))[0]);
      dstPackets.save('event.lifecycle.started-migrated', dstPackets.find(Procedure.DOMAIN_EVENT_CALLBACK_LIFECYCLE, MessageType.message, lifecycleIs(2, 1))[0]);
      dstPackets.save('event.lifecycle.resumed-postcopy', dstPackets.find(Procedure.DOMAIN_EVENT_CALLBACK_LIFECYCLE, MessageType.message, lifecycleIs(4, 3))[0]);
      dstPackets.save('event.lifecycle.resumed-migrated', dstPackets.find(Procedure.DOMAIN_EVENT_CALLBACK_LIFECYCLE, MessageType.message, lifecycleIs(4, 1))[0]);

      // Nothing in this set-up taints the domain.
      expect((await virsh(dst.uri, 'dominfo', DOMAIN)).stdout).not.toMatch(/tainted/i);
      for (const d of [src, dst]) expect(await readFile(join(d.qemuLogDir, `${DOMAIN}.log`), 'utf8')).not.toContain('tainted');
    }, 120_000);

    it('records a migration back cancelled with domjobabort as not completed: libvirt keeps no statistics of it, and the domain still runs on its source', async () => {
      const { src, dst } = libvirt.daemons;
      // The domain runs on dst after the test above: it migrates back, slowly, and is cancelled on its way.
      expect((await virsh(dst.uri, 'domstate', DOMAIN)).stdout.trim()).toBe('running');
      const exporter = exporters[0]!;
      await virsh(dst.uri, 'migrate-setspeed', DOMAIN, '8');
      const migration = virsh(dst.uri, 'migrate', '--live', '--domain', DOMAIN, '--desturi', src.uri, '--migrateuri', `tcp://${network.migrationAddress('src')}`).then(
        () => 'completed',
        (err: unknown) => String((err as { stderr?: string }).stderr ?? err),
      );
      await waitFor(async () => (await virsh(dst.uri, 'domjobinfo', DOMAIN)).stdout.includes('Unbounded'), 'the migration job on dst', 15_000);
      await new Promise((r) => setTimeout(r, 2_000));
      await virsh(dst.uri, 'domjobabort', DOMAIN);
      const said = await migration;
      console.log(`virsh migrate after domjobabort: ${said.trim()}`);
      expect(said).toMatch(/cancel/i);
      const record = await exporter.waitForRecord((r) => r.vm === DOMAIN && r.source.host === 'dst', 30_000).catch((err: unknown) => {
        console.log(exporter.logs.filter((l) => l.component === 'libvirt' || l.component === 'tracker').map((l) => JSON.stringify(l)).join('\n'));
        throw err;
      });
      console.log(`cancelled record: ${JSON.stringify({ result: record.result, resultEvidence: record.resultEvidence, endedAt: record.endedAt, transferred: record.bytes.transferred, errorDesc: record.qemu.errorDesc })}`);
      expect(record).toMatchObject({ source: { host: 'dst', monitor: 'libvirt:dst' } });
      // libvirt 9.0: the completed statistics after a cancel are type none, and the state stays running/migrated.
      expect(record.result).toBe('failed');
      expect(record.resultEvidence).toBe('libvirt:source domain state running migrated after its job ended');
      expect(record.qemu.errorDesc).toMatch(/^libvirt: the migration job ended without completing and libvirt kept no statistics of it/);
      expect(record.bytes.transferred?.evidence).toBe('libvirt:source job stats memory_processed (last reply before the end)');
      expect((await virsh(dst.uri, 'domstate', DOMAIN)).stdout.trim()).toBe('running');
    }, 90_000);
  },
);
