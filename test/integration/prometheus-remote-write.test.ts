/**
 * The remote_write path, for real (issue 13): a Prometheus in agent mode scrapes the exporter and
 * remote-writes to a second Prometheus with the remote-write receiver on, which evaluates the
 * shipped recording and alert rules; the fleet dashboard's queries then run against the receiver.
 * The shape of prometheus/examples/remote-write.yml: external labels, the keep relabelling.
 */
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { dashboards, ROOT } from '../../src/dashboards/generate.js';
import { dashboardQueries } from '../../src/dashboards/queries.js';
import { missingTools, requireEnvironment } from '../helpers/env.js';
import { ExporterProcess, writeConfig } from '../helpers/exporter-process.js';
import { PROMETHEUS_BIN, PrometheusProcess } from '../helpers/prometheus.js';

describe.runIf(requireEnvironment(missingTools(PROMETHEUS_BIN)))('remote_write: Prometheus agent -> remote-write receiver', () => {
  let dir: string;
  let exporter: ExporterProcess;
  let receiver: PrometheusProcess;
  let agent: PrometheusProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lme-remote-write-'));
    exporter = await ExporterProcess.start(await writeConfig(dir, { state_file: null, libvirt: { discover: 'off' } }));
    const rules = {
      'livemig-recording.yml': await readFile(join(ROOT, 'prometheus/rules/livemig-recording.yml'), 'utf8'),
      'livemig-alerts.yml': await readFile(join(ROOT, 'prometheus/rules/livemig-alerts.yml'), 'utf8'),
    };
    receiver = await PrometheusProcess.start({ global: { evaluation_interval: '1s' }, rule_files: Object.keys(rules) }, rules, 'receiver');
    // The example's remote_write entry, pointed at the receiver.
    const example = parse(await readFile(join(ROOT, 'prometheus/examples/remote-write.yml'), 'utf8')) as { global: { external_labels: Record<string, string> }; remote_write: { write_relabel_configs?: unknown[] }[] };
    agent = await PrometheusProcess.start(
      {
        global: { scrape_interval: '1s', external_labels: example.global.external_labels },
        scrape_configs: [{ job_name: 'livemig', static_configs: [{ targets: [new URL(exporter.url).host] }] }],
        remote_write: [{ url: `${receiver.url}/api/v1/write`, write_relabel_configs: example.remote_write[0]!.write_relabel_configs, queue_config: { batch_send_deadline: '1s' } }],
      },
      {},
      'agent',
    );
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    await receiver?.stop();
    await exporter?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("receives the exporter's series with the site's external label, and only those the example keeps", async () => {
    await expect.poll(async () => (await receiver.query('livemig_build_info{site="dc1",job="livemig"}', Date.now() / 1000)).length, { timeout: 30_000, interval: 500 }).toBe(1);
    expect((await receiver.query('up{job="livemig"}', Date.now() / 1000)).map((s) => s.value?.[1])).toEqual(['1']);
    // process_* and nodejs_* are the exporter's too, but the example's relabelling keeps livemig_* and up.
    expect(await receiver.query('{__name__=~"process_.*|nodejs_.*"}', Date.now() / 1000)).toEqual([]);
  }, 60_000);

  it("runs every fleet dashboard query against the receiver without an error", async () => {
    const now = Math.floor(Date.now() / 1000);
    const queries = dashboardQueries(dashboards()['livemig-fleet.json'] as object).filter((q) => q.kind !== 'variable');
    expect(queries.length).toBeGreaterThan(10);
    const failures: string[] = [];
    let withData = 0;
    for (const q of queries) {
      // Every variable as "All"; Grafana's interval variables for a 1 s scrape.
      const expr = q.expr.replace(/\$__rate_interval|\$__interval/g, '4s').replace(/\$__range/g, '60s').replace(/\$\{?(\w+)\}?/g, '.*');
      try {
        const result = q.instant ? await receiver.query(expr, now) : await receiver.queryRange(expr, now - 60, now, 1);
        if (result.length > 0) withData++;
      } catch (err) {
        failures.push(`${q.where}: ${(err as Error).message}`);
      }
    }
    console.log(`fleet dashboard: ${queries.length} queries against the remote-write receiver, ${withData} with data, ${failures.length} failed`);
    expect(failures).toEqual([]);
    expect(withData).toBeGreaterThan(0);
  }, 60_000);
});
