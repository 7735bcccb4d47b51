import { describe, expect, it } from 'vitest';
import { ExporterMetrics, type MetricsInputs } from '../../src/metrics/exporter-metrics.js';
import type { MigrationRecord } from '../../src/records/record.js';
import type { MonitorState } from '../../src/sources/qmp/source.js';
import { metricValue } from '../helpers/exporter-process.js';
import { fig, recordEnded } from '../helpers/records.js';

const NOW = Date.UTC(2026, 10, 25, 12);
const HOUR = 3_600_000;

function record(vm: string, endedAgoMs: number): MigrationRecord {
  return recordEnded(vm, NOW - endedAgoMs - 1000, NOW - endedAgoMs, {
    id: `${vm}@1`,
    durationSeconds: fig(1),
    bytes: { transferred: fig(42), precopy: fig(42), postcopy: null, downtime: null, disk: null },
    qemu: { downtimeMs: fig(3), setupTimeMs: null, totalTimeMs: null, postcopyRequests: null, passes: null, passesBeforePostcopy: null, errorDesc: null },
  });
}

function monitor(status: string): MonitorState {
  return { ref: { vm: 'v', host: 'h', monitor: 'h/m' }, endpoint: 'unix:/m', up: true, reconnects: 0, info: { status, incoming: false }, runState: null, lastProblem: 'none' };
}

function metrics(inputs: Partial<MetricsInputs>): ExporterMetrics {
  const empty: MetricsInputs = { monitors: () => [], health: () => [], activeMigrations: () => [], records: () => [], recordCount: () => 0, vms: () => [] };
  return new ExporterMetrics({ ...empty, ...inputs }, { wallMs: () => NOW, monoMs: () => 0 }, HOUR);
}

describe('ExporterMetrics', () => {
  it("serves a VM's last migration until records.last_migration_ttl has passed, then drops it", () => {
    const text = metrics({ records: () => [record('fresh', HOUR - 1), record('stale', HOUR + 1)] }).renderScrapeTime();
    expect(metricValue(text, 'livemig_last_migration_transferred_bytes{vm="fresh",phase="total"}')).toBe(42);
    expect(metricValue(text, 'livemig_last_migration_qemu_downtime_seconds{vm="fresh"}')).toBe(0.003);
    expect(text).not.toContain('vm="stale"');
  });

  it('keeps the newest record per VM', () => {
    const older = { ...record('v', 2000), id: 'v@old', bytes: { ...record('v', 0).bytes, transferred: { value: 1, evidence: 't' } } };
    const text = metrics({ records: () => [record('v', 1000), older] }).renderScrapeTime();
    expect(metricValue(text, 'livemig_last_migration_transferred_bytes{vm="v",phase="total"}')).toBe(42);
  });

  it('keeps an unknown QEMU status visible in the state set instead of dropping it', () => {
    const text = metrics({ monitors: () => [monitor('postcopy-hyperdrive')] }).renderScrapeTime();
    expect(metricValue(text, 'livemig_qemu_migration_status{vm="v",host="h",status="postcopy-hyperdrive"}')).toBe(1);
    expect(metricValue(text, 'livemig_qemu_migration_status{vm="v",host="h",status="none"}')).toBe(0);
    expect(metricValue(text, 'livemig_qemu_migration_status{vm="v",host="h",status="active"}')).toBe(0);
  });

  it('writes the phase state set only for VMs migrating now', () => {
    const text = metrics({ activeMigrations: () => [{ vm: 'm', phase: 'postcopy', sourceHost: 'a', destinationHost: 'b', startedAtMs: NOW }] }).renderScrapeTime();
    expect(metricValue(text, 'livemig_migration_phase{vm="m",phase="postcopy"}')).toBe(1);
    expect(metricValue(text, 'livemig_migration_phase{vm="m",phase="precopy"}')).toBe(0);
    expect(metricValue(text, 'livemig_migration_in_progress_info{vm="m",source_host="a",destination_host="b"}')).toBe(1);
    expect(metricValue(text, 'livemig_migration_started_timestamp_seconds{vm="m"}')).toBe(NOW / 1000);
  });

  it('counts closed migrations by result and mode, and observes their histograms by flavor', async () => {
    const m = metrics({});
    m.recordClosed({ ...record('v', 0), labels: { flavor: 'xl' } });
    const text = await m.render();
    expect(metricValue(text, 'livemig_migrations_total{result="completed",mode="precopy"}')).toBe(1);
    expect(metricValue(text, 'livemig_migration_duration_seconds_count{result="completed",mode="precopy",flavor="xl"}')).toBe(1);
    expect(metricValue(text, 'livemig_migration_qemu_downtime_seconds_sum{result="completed",mode="precopy",flavor="xl"}')).toBe(0.003);
  });
});

describe('ExporterMetrics ping series', () => {
  it('renders the RTT histogram cumulatively, the counters and the current outage per VM', () => {
    let targets = [{ vm: 'p', sent: 10, received: 8, duplicates: 1, currentOutageSeconds: 0.2 }];
    const m = metrics({ pingTargets: () => targets });
    for (const seconds of [0.00004, 0.0003, 0.0003, 20]) m.pingRtt('p', seconds);
    const text = m.renderScrapeTime();
    expect(metricValue(text, 'livemig_ping_rtt_seconds_bucket{vm="p",le="0.00005"}')).toBe(1);
    expect(metricValue(text, 'livemig_ping_rtt_seconds_bucket{vm="p",le="0.0005"}')).toBe(3);
    expect(metricValue(text, 'livemig_ping_rtt_seconds_bucket{vm="p",le="10"}')).toBe(3);
    expect(metricValue(text, 'livemig_ping_rtt_seconds_bucket{vm="p",le="+Inf"}')).toBe(4);
    expect(metricValue(text, 'livemig_ping_rtt_seconds_count{vm="p"}')).toBe(4);
    expect(metricValue(text, 'livemig_ping_probes_sent_total{vm="p"}')).toBe(10);
    expect(metricValue(text, 'livemig_ping_replies_received_total{vm="p"}')).toBe(8);
    expect(metricValue(text, 'livemig_ping_duplicate_replies_total{vm="p"}')).toBe(1);
    expect(metricValue(text, 'livemig_ping_outage_seconds{vm="p"}')).toBe(0.2);
    targets = [];
    expect(m.renderScrapeTime()).not.toContain('vm="p"');
  });
});
