/**
 * QMP and nova logs together: the exporter (CLI, config file) watches a real QEMU migration over
 * QMP and follows nova-compute log files that the test writes in nova's 2026.1 format around
 * it. The record keeps QEMU's figures and gets nova's as its `nova` section, each figure naming
 * where it came from; no second record is made from the logs.
 */
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { migrateOnce } from '../../src/lab/migrate.js';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { ExporterProcess, metricValue, writeConfig } from '../helpers/exporter-process.js';
import { hybridPlan, QemuLab } from '../helpers/qemu-lab.js';

const SIZE = { memoryMiB: 128, fillMiB: 64, dirtyMiB: 32 };
const TIMEOUT_MS = 30_000;
const UUID = '5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d';
const CTX = '[None req-0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d 8f3e9a7c2b1d4e6f8a9b0c1d2e3f4a5b 4a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d - - default default]';

function nova(level: string, logger: string, message: string, ctx = CTX): string {
  const d = new Date().toISOString();
  return `${d.slice(0, 10)} ${d.slice(11, 23)} 4242 ${level} ${logger} ${ctx} [instance: ${UUID}] ${message}\n`;
}

describe.runIf(requireEnvironment(missingTools('qemu-system-x86_64', 'nasm'), needsRoot()))('exporter with QMP and nova logs on a real QEMU migration', () => {
  const lab = new QemuLab(SIZE);
  let exporter: ExporterProcess | undefined;

  beforeAll(() => lab.init());
  afterEach(async () => {
    await exporter?.stop();
    exporter = undefined;
    await lab.stopAll();
  });
  afterAll(() => lab.cleanup());

  it('one record: QEMU figures from QMP, nova figures from the logs, each with its evidence', async () => {
    const { src, dst } = await lab.pair();
    const logs = { src: join(lab.dir, 'nova-src', 'nova-compute.log'), dst: join(lab.dir, 'nova-dst', 'nova-compute.log') };
    await mkdir(join(lab.dir, 'nova-src'), { recursive: true });
    await mkdir(join(lab.dir, 'nova-dst'), { recursive: true });
    await writeFile(logs.src, '');
    await writeFile(logs.dst, '');
    const file = await writeConfig(lab.dir, {
      polling: { idle_interval: '1s', migrating_interval: '100ms' },
      state_file: join(lab.dir, 'logs-qemu.state.json'),
      libvirt: { discover: 'off' },
      vms: [
        {
          name: 'vm-nova',
          flavor: 'm',
          instance_uuid: UUID,
          monitors: [
            { host: 'src-host', qmp: { unix: src.observerSocket } },
            { host: 'dst-host', qmp: { unix: dst.observerSocket } },
          ],
        },
      ],
      logs: [
        { host: 'src-host', path: logs.src, timezone: 'UTC' },
        { host: 'dst-host', path: logs.dst, timezone: 'UTC' },
      ],
      logs_options: { poll_interval: '100ms' },
    });
    exporter = await ExporterProcess.start(file);
    await exporter.waitForMonitors('vm-nova', 2);

    await appendFile(logs.src, nova('INFO', 'nova.compute.manager', 'Took 0.35 seconds for pre_live_migration on destination host dst-host.'));
    await appendFile(logs.src, nova('DEBUG', 'nova.virt.libvirt.driver', 'Starting monitoring of live migration _live_migration /usr/lib/python3/dist-packages/nova/virt/libvirt/driver.py:11021'));
    const outcome = await migrateOnce({ source: src.qmp, destination: dst.qmp }, hybridPlan(), TIMEOUT_MS);
    expect(outcome.source.finalStatus).toBe('completed');
    await appendFile(logs.src, nova('INFO', 'nova.virt.libvirt.driver', 'Migration operation has completed'));
    await appendFile(logs.dst, nova('INFO', 'nova.compute.manager', 'Post operation of migration started'));
    await appendFile(logs.src, nova('INFO', 'nova.compute.manager', 'Migrating instance to dst-host finished successfully.'));

    // Each host's log is read on its own: the destination's line may reach the record a moment after the source's.
    const record = await exporter.waitForRecord((r) => r.vm === 'vm-nova' && !!r.nova?.destinationHost, TIMEOUT_MS);
    expect(record.source).toEqual({ host: 'src-host', monitor: expect.stringContaining('unix:') });
    expect(record.bytes.transferred?.evidence).toContain('qmp');
    expect(record.startedAt.evidence).not.toContain('nova');
    expect(record.nova).toMatchObject({
      instanceUuid: UUID,
      sourceHost: 'src-host',
      destinationHost: 'dst-host',
      destinationName: 'dst-host',
      result: 'completed',
      preLiveMigrationSeconds: { value: 0.35 },
    });
    expect(record.nova?.startedAt?.evidence).toMatch(/^nova-compute log on src-host, line at .*: monitoring-started$/);
    expect(record.nova?.completedAt?.evidence).toContain('nova-compute log on src-host');
    // nova's times bracket QEMU's: the monitor starts before the migrate call, completion is logged after.
    expect(record.nova!.startedAt!.value).toBeLessThanOrEqual(record.startedAt.value + 1000);
    expect(record.nova!.completedAt!.value).toBeGreaterThanOrEqual((record.endedAt?.value ?? 0) - 1000);

    // Past the grace a logs-only record would be made after: still one record.
    await new Promise((r) => setTimeout(r, 21_000));
    expect((await exporter.migrations()).filter((r) => r.vm === 'vm-nova')).toHaveLength(1);
    const text = await exporter.metrics();
    expect(metricValue(text, 'livemig_log_lines_matched_total{host="src-host",kind="nova-compute",event="success"}')).toBe(1);
    expect(metricValue(text, 'livemig_log_lines_matched_total{host="dst-host",kind="nova-compute",event="post-operation-started"}')).toBe(1);
  }, 90_000);
});
