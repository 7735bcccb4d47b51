/** The exporter probing a VM's ping address with real fping (loopback), through its CLI and config. */
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { ExporterProcess, metricValue, writeConfig } from '../helpers/exporter-process.js';

describe.runIf(requireEnvironment(missingTools('fping'), needsRoot()))('exporter ping source (real fping)', () => {
  let dir: string;
  let exporter: ExporterProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lme-ping-'));
    const file = await writeConfig(dir, {
      state_file: null,
      libvirt: { discover: 'off' },
      ping: { period: '50ms', timeout: '500ms' },
      // The VM's QEMU is not running: its monitor is simply absent, the ping source works alone.
      vms: [{ name: 'pinged', ping_address: '127.0.0.1', monitors: [{ host: 'h1', qmp: { unix: join(dir, 'none.qmp') } }] }],
    });
    exporter = await ExporterProcess.start(file);
  });
  afterAll(async () => {
    await exporter?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves per-VM probe counters, the RTT histogram and the ping source health', async () => {
    await expect.poll(async () => metricValue(await exporter.metrics(), 'livemig_ping_probes_sent_total{vm="pinged"}') ?? 0, { timeout: 10_000 }).toBeGreaterThanOrEqual(10);
    const text = await exporter.metrics();
    const sent = metricValue(text, 'livemig_ping_probes_sent_total{vm="pinged"}') ?? 0;
    const received = metricValue(text, 'livemig_ping_replies_received_total{vm="pinged"}') ?? 0;
    expect(received).toBeGreaterThanOrEqual(sent - 1);
    expect(metricValue(text, 'livemig_ping_rtt_seconds_count{vm="pinged"}')).toBeGreaterThanOrEqual(received);
    expect(metricValue(text, 'livemig_ping_outage_seconds{vm="pinged"}')).toBe(0);
    expect(metricValue(text, `livemig_source_up{source="ping",host="${hostname()}"}`)).toBe(1);
  });
});
