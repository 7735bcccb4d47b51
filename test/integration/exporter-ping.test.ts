/** The exporter probing VMs' ping addresses with real fping (loopback), through its CLI and config. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { ExporterProcess, metricValue, writeConfig } from '../helpers/exporter-process.js';

const sent = (vm: string) => `livemig_ping_probes_sent_total{vm="${vm}"}`;

describe.runIf(requireEnvironment(missingTools('fping'), needsRoot()))('exporter ping source (real fping)', () => {
  let dir: string;
  let file: string;
  let exporter: ExporterProcess;
  // The VMs' QEMUs are not running: their monitors are simply absent, the ping source works alone.
  const vm = (name: string, address: string) => ({ name, ping_address: address, monitors: [{ host: 'h1', qmp: { unix: join(dir, `${name}.qmp`) } }] });
  const config = (vms: unknown[]) => ({ state_file: null, libvirt: { discover: 'off' }, ping: { period: '50ms', timeout: '500ms' }, vms });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lme-ping-'));
    file = await writeConfig(dir, config([vm('pinged', '127.0.0.1'), vm('leaving', '127.0.0.2')]));
    exporter = await ExporterProcess.start(file);
  });
  afterAll(async () => {
    await exporter?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves per-VM probe counters, the RTT histogram and the ping source health', async () => {
    await expect.poll(async () => metricValue(await exporter.metrics(), sent('pinged')) ?? 0, { timeout: 10_000 }).toBeGreaterThanOrEqual(10);
    const text = await exporter.metrics();
    const probes = metricValue(text, sent('pinged')) ?? 0;
    const received = metricValue(text, 'livemig_ping_replies_received_total{vm="pinged"}') ?? 0;
    expect(received).toBeGreaterThanOrEqual(probes - 1);
    expect(metricValue(text, 'livemig_ping_rtt_seconds_count{vm="pinged"}')).toBeGreaterThanOrEqual(received);
    expect(metricValue(text, 'livemig_ping_outage_seconds{vm="pinged"}')).toBe(0);
    expect(metricValue(text, `livemig_source_up{source="ping",host="${hostname()}"}`)).toBe(1);
  });

  it('on SIGHUP takes the new targets without losing the counters of those that stay', async () => {
    const before = metricValue(await exporter.metrics(), sent('pinged')) ?? 0;
    await writeFile(file, stringify(config([vm('pinged', '127.0.0.1'), vm('arriving', '127.0.0.3')])));
    exporter.child.kill('SIGHUP');
    await expect.poll(async () => metricValue(await exporter.metrics(), sent('arriving')) ?? 0, { timeout: 10_000 }).toBeGreaterThan(0);
    const text = await exporter.metrics();
    expect(metricValue(text, sent('pinged'))).toBeGreaterThan(before);
    expect(metricValue(text, sent('leaving'))).toBeUndefined();
  });
});
