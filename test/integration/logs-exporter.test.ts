/**
 * The exporter process (its CLI and a config file) following real nova-compute log files that
 * the test writes in nova's format (2026.1 layout), for a VM whose QEMU monitor cannot be
 * reached: the migration is recorded from the logs alone, with nova's figures, and a restart in
 * the middle of the migration's lines neither loses nor repeats one.
 */
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { ExporterProcess, metricValue, writeConfig } from '../helpers/exporter-process.js';

const UUID = '0b5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f';
const REQ = 'req-6f0e2a1b-3c4d-4e5f-8a9b-0c1d2e3f4a5b';
const CTX = `[None ${REQ} 8f3e9a7c2b1d4e6f8a9b0c1d2e3f4a5b 4a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d - - default default]`;

/** An oslo.log line at wall time `ms`, written as UTC (the config says `timezone: UTC`). */
function nova(ms: number, level: string, logger: string, message: string, ctx = CTX): string {
  const d = new Date(ms).toISOString(); // 2026-03-10T12:34:56.789Z
  return `${d.slice(0, 10)} ${d.slice(11, 23)} 4242 ${level} ${logger} ${ctx} [instance: ${UUID}] ${message}\n`;
}

const progress = (secs: number, processed: number, remaining: number) =>
  `Migration running for ${secs} secs, memory ${Math.round((remaining * 100) / 4294967296)}% remaining (bytes processed=${processed}, remaining=${remaining}, total=4294967296); disk 100% remaining (bytes processed=0, remaining=0, total=0).`;

/** The lines of one hybrid migration, source and destination, starting at t0. */
function migration(t0: number): { host: 'src' | 'dst'; line: string }[] {
  const drv = 'nova.virt.libvirt.driver';
  const mig = 'nova.virt.libvirt.migration';
  const mgr = 'nova.compute.manager';
  return [
    { host: 'dst', line: nova(t0 - 1500, 'DEBUG', mgr, 'pre_live_migration data is LibvirtLiveMigrateData(bdms=[]) pre_live_migration /usr/lib/python3/dist-packages/nova/compute/manager.py:8901') },
    { host: 'src', line: nova(t0 - 100, 'INFO', mgr, 'Took 1.40 seconds for pre_live_migration on destination host compute-2.') },
    { host: 'src', line: nova(t0, 'DEBUG', drv, 'Starting monitoring of live migration _live_migration /usr/lib/python3/dist-packages/nova/virt/libvirt/driver.py:11021') },
    { host: 'src', line: nova(t0 + 500, 'INFO', mig, 'Increasing downtime to 50 ms after 0 sec elapsed time') },
    { host: 'src', line: nova(t0 + 510, 'INFO', drv, progress(0, 0, 4294967296)) },
    { host: 'src', line: nova(t0 + 5500, 'DEBUG', drv, `${progress(5, 4400000000, 900000000)} _live_migration_monitor /usr/lib/python3/dist-packages/nova/virt/libvirt/driver.py:10951`) },
    { host: 'src', line: nova(t0 + 6000, 'INFO', mig, 'Switching to post-copy migration mode') },
    { host: 'src', line: nova(t0 + 6020, 'INFO', mgr, 'VM Postcopy started (Lifecycle Event)', '[-]') },
    { host: 'dst', line: nova(t0 + 6050, 'INFO', mgr, 'VM Resumed (Lifecycle Event)', '[-]') },
    { host: 'src', line: nova(t0 + 8000, 'DEBUG', drv, `${progress(8, 5300000000, 0)} _live_migration_monitor /usr/lib/python3/dist-packages/nova/virt/libvirt/driver.py:10951`) },
    { host: 'src', line: nova(t0 + 9000, 'INFO', mgr, 'VM Migration completed (Lifecycle Event)', '[-]') },
    { host: 'src', line: nova(t0 + 9010, 'INFO', drv, 'Migration operation has completed') },
    { host: 'src', line: nova(t0 + 9020, 'INFO', mgr, '_post_live_migration() is started..') },
    { host: 'dst', line: nova(t0 + 9500, 'INFO', mgr, 'Post operation of migration started') },
    { host: 'src', line: nova(t0 + 10_000, 'INFO', mgr, 'Migrating instance to compute-2 finished successfully.') },
  ];
}

/** Unrelated nova lines (periodic tasks), as a real log has between migrations. */
function noise(t: number, n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) {
    out += `${new Date(t + i).toISOString().replace('T', ' ').slice(0, 23)} 4242 DEBUG oslo_service.periodic_task [-] Running periodic task ComputeManager._poll_rebooting_instances run_periodic_tasks /usr/lib/python3/dist-packages/oslo_service/periodic_task.py:210\n`;
  }
  return out;
}

describe('exporter following nova-compute logs (no QEMU monitor reachable)', () => {
  let dir: string;
  let exporter: ExporterProcess | undefined;
  let paths: { src: string; dst: string };
  let configFile: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lme-logs-e2e-'));
    paths = { src: join(dir, 'compute-1', 'nova-compute.log'), dst: join(dir, 'compute-2', 'nova-compute.log') };
    await rm(join(dir, 'compute-1'), { recursive: true, force: true });
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(dir, 'compute-1'));
    await mkdir(join(dir, 'compute-2'));
    // Old content: read from the end by default, so not counted.
    await writeFile(paths.src, noise(Date.now() - 3_600_000, 100));
    await writeFile(paths.dst, noise(Date.now() - 3_600_000, 100));
    configFile = await writeConfig(dir, {
      state_file: join(dir, 'state.json'),
      libvirt: { discover: 'off' },
      vms: [{ name: 'web-1', flavor: 'm', instance_uuid: UUID.toUpperCase(), monitors: [{ host: 'compute-1', qmp: { unix: join(dir, 'absent.qmp') } }] }],
      logs: [
        { host: 'compute-1', path: paths.src, kind: 'nova-compute', timezone: 'UTC' },
        { host: 'compute-2', path: paths.dst, kind: 'nova-compute', timezone: 'UTC' },
      ],
      logs_options: { poll_interval: '100ms', save_interval: '1s' },
    });
  });
  afterEach(async () => {
    await exporter?.stop();
    exporter = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  async function write(lines: { host: 'src' | 'dst'; line: string }[]): Promise<void> {
    for (const l of lines) await appendFile(paths[l.host], l.line);
  }

  it('records the migration from the logs alone, with nova figures, and serves the log metrics', async () => {
    exporter = await ExporterProcess.start(configFile);
    const t0 = Date.now() - 20_000;
    await write(migration(t0));
    await appendFile(paths.src, noise(Date.now(), 50));
    const r = await exporter.waitForRecord((x) => x.vm === 'web-1', 20_000);
    expect(r).toMatchObject({
      id: `web-1@${t0}`,
      labels: { flavor: 'm' },
      source: { host: 'compute-1', monitor: 'nova-compute log' },
      destination: { host: 'compute-2', monitor: 'nova-compute log' },
      result: 'completed',
      mode: 'hybrid', // 4.4 GB processed of 4 GiB before the switch: one full pass
      startedAt: { value: t0, evidence: expect.stringContaining('nova-compute log on compute-1') },
      postcopyAt: { value: t0 + 6000 },
      resumedAt: { value: t0 + 6050, evidence: expect.stringContaining('on compute-2') },
      endedAt: { value: t0 + 9000 },
      durationSeconds: { value: 9 },
      bytes: { transferred: { value: 5300000000 } },
    });
    expect(r.nova).toMatchObject({
      instanceUuid: UUID,
      requestId: REQ,
      sourceHost: 'compute-1',
      destinationHost: 'compute-2',
      destinationName: 'compute-2',
      result: 'completed',
      preLiveMigrationSeconds: { value: 1.4 },
      completedAt: { value: t0 + 9000 },
      endedAt: { value: t0 + 10_000 },
      downtimeSteps: [{ downtimeMs: 50, afterSeconds: 0, at: t0 + 500 }],
      progress: { memoryProcessed: 5300000000, memoryRemaining: 0, memoryTotal: 4294967296 },
    });

    const text = await exporter.metrics();
    expect(metricValue(text, 'livemig_log_lines_read_total{host="compute-1",kind="nova-compute"}')).toBe(12 + 50);
    expect(metricValue(text, 'livemig_log_lines_read_total{host="compute-2",kind="nova-compute"}')).toBe(3);
    expect(metricValue(text, 'livemig_log_lines_matched_total{host="compute-1",kind="nova-compute",event="progress"}')).toBe(3);
    expect(metricValue(text, 'livemig_log_lines_matched_total{host="compute-2",kind="nova-compute",event="lifecycle"}')).toBe(1);
    expect(metricValue(text, 'livemig_log_lines_unparseable_total{host="compute-1",kind="nova-compute"}')).toBe(0);
    expect(metricValue(text, 'livemig_source_up{source="logs",host="compute-1"}')).toBe(1);
    const lag = metricValue(text, 'livemig_log_lag_seconds{host="compute-1",kind="nova-compute"}');
    expect(lag).toBeGreaterThanOrEqual(0);
    expect(lag).toBeLessThan(60);
    expect(metricValue(text, 'livemig_migrations_total{result="completed",mode="hybrid"}')).toBe(1);

    if (requireEnvironment(missingTools('promtool'))) {
      const out = await new Promise<string>((resolve) => {
        const child = execFile('promtool', ['check', 'metrics'], (_err, stdout, stderr) => resolve(stdout + stderr));
        child.stdin?.end(text);
      });
      // prom-client's own default Node.js gauges carry a `_total` suffix promtool dislikes (see metrics-golden.test.ts).
      expect(out.split('\n').filter((l) => l.includes('livemig_log'))).toEqual([]);
    }
  });

  it('stopped in the middle of the migration and restarted: resumes from the state file, no line lost or read twice', async () => {
    exporter = await ExporterProcess.start(configFile);
    const t0 = Date.now() - 20_000;
    const lines = migration(t0);
    await write(lines.slice(0, 7));
    await expect.poll(async () => metricValue(await exporter!.metrics(), 'livemig_log_lines_read_total{host="compute-1",kind="nova-compute"}'), { timeout: 10_000 }).toBe(6);
    expect(await exporter.stop()).toBe(0);
    exporter = undefined;
    const state = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as { logs?: { host: string; offset: number }[] };
    expect(state.logs?.map((l) => l.host).sort()).toEqual(['compute-1', 'compute-2']);
    // Written while the exporter is down, and half a line that it must wait for.
    await write(lines.slice(7));
    await appendFile(paths.src, '2026-03-10 12:00:00.000 4242 INFO nova.compute.manager [-] half');
    exporter = await ExporterProcess.start(configFile);
    const r = await exporter.waitForRecord((x) => x.vm === 'web-1', 20_000);
    expect(r.nova?.startedAt?.value).toBe(t0);
    expect(r.nova?.result).toBe('completed');
    const text = await exporter.metrics();
    // compute-1: 12 migration lines in all, 6 before the stop; compute-2: 3, 1 before.
    expect(metricValue(text, 'livemig_log_lines_read_total{host="compute-1",kind="nova-compute"}')).toBe(6);
    expect(metricValue(text, 'livemig_log_lines_read_total{host="compute-2",kind="nova-compute"}')).toBe(2);
    expect((await exporter.migrations()).filter((x) => x.vm === 'web-1')).toHaveLength(1);
  });
});

describe.runIf(requireEnvironment(missingTools('fping'), needsRoot()))('exporter following nova-compute logs, with the VM pinged (real fping on loopback)', () => {
  let dir: string;
  let exporter: ExporterProcess | undefined;

  afterEach(async () => {
    await exporter?.stop();
    exporter = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('a migration recorded from the logs alone gets its ping figures too', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lme-logs-ping-'));
    const { mkdir } = await import('node:fs/promises');
    const paths = { src: join(dir, 'compute-1.log'), dst: join(dir, 'compute-2.log') };
    await mkdir(dir, { recursive: true });
    await writeFile(paths.src, '');
    await writeFile(paths.dst, '');
    const configFile = await writeConfig(dir, {
      state_file: join(dir, 'state.json'),
      libvirt: { discover: 'off' },
      ping: { period: '100ms', timeout: '500ms', after: '1s' },
      vms: [{ name: 'web-1', flavor: 'm', instance_uuid: UUID, ping_address: '127.0.0.1', monitors: [{ host: 'compute-1', qmp: { unix: join(dir, 'absent.qmp') } }] }],
      logs: [
        { host: 'compute-1', path: paths.src, kind: 'nova-compute', timezone: 'UTC' },
        { host: 'compute-2', path: paths.dst, kind: 'nova-compute', timezone: 'UTC' },
      ],
      logs_options: { poll_interval: '100ms' },
    });
    exporter = await ExporterProcess.start(configFile);
    const watcher = exporter;
    await expect.poll(async () => metricValue(await watcher.metrics(), 'livemig_ping_replies_received_total{vm="web-1"}') ?? 0, { timeout: 10_000 }).toBeGreaterThanOrEqual(15);
    // The migration's lines as nova writes them, its times from now to 9 s ahead: the record
    // closes when they are read, and its ping figures come once its end plus ping.after has passed.
    const t0 = Date.now();
    for (const l of migration(t0)) await appendFile(paths[l.host], l.line);
    const r = await watcher.waitForRecord((x) => x.vm === 'web-1' && x.ping !== undefined && x.ping !== null, 25_000);
    expect(r.source.monitor).toBe('nova-compute log');
    expect(r.nova?.result).toBe('completed');
    const ping = r.ping!;
    expect(ping.target).toBe('127.0.0.1');
    expect(ping.phases.before.sent).toBeGreaterThanOrEqual(10); // the 1.5 s of probes before t0
    expect(ping.phases.precopy.sent).toBeGreaterThanOrEqual(55); // t0 .. t0 + 6 s at 100 ms
    expect(ping.phases.postcopy?.sent).toBeGreaterThanOrEqual(25); // t0 + 6 s .. t0 + 9 s
    expect(ping.phases.after.sent).toBeGreaterThan(0);
    for (const phase of [ping.phases.before, ping.phases.precopy, ping.phases.postcopy, ping.phases.after]) expect(phase?.lost).toBe(0);
    expect(ping.switchoverBlackout).toBeNull();
    expect(ping.postcopyOutages).toEqual([]);
  }, 40_000);
});
