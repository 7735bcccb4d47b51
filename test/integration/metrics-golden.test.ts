/**
 * The golden /metrics file (node_exporter's end-to-end-test.sh habit): ExporterMetrics rendered
 * from real QEMU 7.2 replies and a record, volatile lines dropped, compared with
 * test/fixtures/metrics/golden.prom, then checked by `promtool check metrics`.
 * UPDATE_GOLDEN=1 rewrites the file after a deliberate change.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ExporterMetrics, type MetricsInputs, type VmView } from '../../src/metrics/exporter-metrics.js';
import type { MigrationRecord } from '../../src/records/record.js';
import type { MonitorState } from '../../src/sources/qmp/source.js';
import { parseQueryMigrate } from '../../src/sources/qmp/parse.js';
import { missingTools, requireEnvironment } from '../helpers/env.js';

const GOLDEN = new URL('../fixtures/metrics/golden.prom', import.meta.url);
const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/qmp/${name}`, import.meta.url), 'utf8')) as unknown;
const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const clock = { wallMs: () => NOW, monoMs: () => 0 };

function monitor(vm: string, host: string, file: string, up = true): MonitorState {
  return {
    ref: { vm, host, monitor: `${host}/unix:/run/${vm}.qmp` },
    endpoint: `unix:/run/${vm}.qmp`,
    up,
    reconnects: up ? 0 : 3,
    info: parseQueryMigrate(fixture(file), vm),
    runState: null,
    lastProblem: up ? 'none' : 'absent',
  };
}

const fig = (value: number, evidence = 'fixture') => ({ value, evidence });
const RECORD: MigrationRecord = {
  id: 'web-1@1795639395356',
  vm: 'web-1',
  labels: { flavor: 'm' },
  source: { host: 'hv1', monitor: 'hv1/unix:/run/web-1.qmp' },
  destination: { host: 'hv2', monitor: 'hv2/unix:/run/web-1.qmp' },
  result: 'completed',
  mode: 'hybrid',
  startedAt: fig(NOW - 60_000),
  postcopyAt: fig(NOW - 55_500),
  stoppedAt: fig(NOW - 55_499),
  resumedAt: fig(NOW - 55_493),
  endedAt: fig(NOW - 54_540),
  durationSeconds: fig(5.46),
  bytes: { transferred: fig(606522767), precopy: fig(472038704), postcopy: fig(134484063), downtime: fig(0), disk: null },
  qemu: {
    downtimeMs: fig(4),
    setupTimeMs: fig(4),
    totalTimeMs: fig(5460),
    postcopyRequests: fig(38),
    passes: fig(3),
    passesBeforePostcopy: fig(2),
    errorDesc: null,
  },
  statuses: [],
  resumedAfterRestart: false,
};

function render(): Promise<string> {
  const inputs: MetricsInputs = {
    monitors: () => [
      monitor('web-1', 'hv1', 'query-migrate.7.2.src.completed.json'),
      monitor('web-1', 'hv2', 'query-migrate.7.2.dst.completed-postcopy-blocktime.json'),
      monitor('db-1', 'hv1', 'query-migrate.7.2.src.postcopy-active.json'),
      monitor('db-1', 'hv3', 'query-migrate.7.2.dst.postcopy-active.json'),
      monitor('old-1', 'hv4', 'query-migrate.7.2.src.failed-connect.json', false),
    ],
    health: () => [
      { source: 'qmp', host: 'hv1', up: true },
      { source: 'libvirt', host: 'hv1', up: false },
    ],
    activeMigrations: () => [{ vm: 'db-1', phase: 'postcopy', sourceHost: 'hv1', destinationHost: 'hv3', startedAtMs: NOW - 4_550 }],
    records: () => [RECORD],
    recordCount: () => 1,
    vms: (): VmView[] => [
      { name: 'web-1', flavor: 'm', labels: { team: 'web' } },
      { name: 'db-1', flavor: 'xl', labels: {} },
    ],
  };
  const metrics = new ExporterMetrics(inputs, clock, 3_600_000);
  metrics.recordClosed(RECORD);
  metrics.sourceError('qmp', 'hv4', 'connect');
  metrics.stateFileWritten(true);
  return metrics.render();
}

/** Process metrics and the build line change from run to run. */
function stable(text: string): string {
  const volatile = /^(# (HELP|TYPE) )?(process_|nodejs_|livemig_build_info)/;
  return text
    .split('\n')
    .filter((line) => !volatile.test(line))
    .join('\n');
}

describe('golden /metrics', () => {
  it('matches test/fixtures/metrics/golden.prom', async () => {
    const text = stable(await render());
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(GOLDEN, text);
    expect(text).toBe(readFileSync(GOLDEN, 'utf8'));
  });

  describe.runIf(requireEnvironment(missingTools('promtool')))('promtool', () => {
    it('passes `promtool check metrics` (names, units, help) on the full output', async () => {
      const text = await render();
      const result = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) => {
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
        });
        child.stdin?.end(text);
      });
      // prom-client's own default Node.js gauges carry a `_total` suffix promtool dislikes; they
      // are prom-client's names, kept for compatibility with every Node.js dashboard. Ours are clean.
      const known = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];
      const problems = result.out.split('\n').filter((line) => line && !known.some((name) => line.startsWith(`${name} `)));
      expect(problems).toEqual([]);
    });
  });
});
