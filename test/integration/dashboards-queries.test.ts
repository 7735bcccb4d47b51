/**
 * The generated dashboards against a real Prometheus (Debian's /usr/bin/prometheus, scraping
 * every second) that scrapes the real exporter process while real QEMU migrations run, with the
 * shipped recording rules and a copy of the alert rules whose post-copy outage threshold is 1 s:
 *
 * - study scenario: hybrid migrations of the memory-dirtying guest, VMs of flavors s and m, and of
 *   flavor xl with the `stressed_mib` label at 8, 16 and 32 MiB dirtied;
 * - ping scenarios: the Linux guest (answers ping) migrated hybrid twice, on two addresses: once
 *   announced by the destination (QEMU's default), once with announce-rounds 0 and a slow
 *   post-copy, so pings are lost for seconds in post-copy (as in
 *   test/integration/exporter-ping-migration.test.ts).
 *
 * Then every query of every panel, variable and annotation of every generated dashboard runs,
 * variables substituted, through Prometheus's HTTP API: none may fail, none may be empty (or all
 * NaN), except the known gaps listed below with their reason; the study panels' values equal the
 * exporter's own records (/api/v1/migrations); and the post-copy outage alert fired in Prometheus
 * and reached a webhook receiver through a real Alertmanager.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { dashboards, ROOT } from '../../src/dashboards/generate.js';
import { dashboardQueries, parseLabelValues, substitute, type DashboardQuery } from '../../src/dashboards/queries.js';
import { RULES, STRESSED_LABEL } from '../../src/dashboards/rules.js';
import { studyAverage, studyCount } from '../../src/dashboards/study.js';
import type { LinuxGuestParams } from '../../src/lab/guest/linux.js';
import { migrateOnce } from '../../src/lab/migrate.js';
import type { MigrationRecord } from '../../src/migrations/record.js';
import { ALERTMANAGER_BIN, AlertmanagerProcess, WebhookReceiver, type WebhookNotification } from '../helpers/alertmanager.js';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { ExporterProcess, metricValue, writeConfig } from '../helpers/exporter-process.js';
import { LINUX_GUEST, LINUX_LAB_TOOLS, LINUX_MIGRATION_BANDWIDTH, LinuxLab, VM_ADDRESS } from '../helpers/linux-lab.js';
import { PROMETHEUS_BIN, PrometheusProcess, type PromSample } from '../helpers/prometheus.js';
import { hybridPlan, MiB, QemuLab, type Booted } from '../helpers/qemu-lab.js';

const STUDY_RUNS = [
  { vm: 'study-s', flavor: 's', dirtyMiB: 8, stressed: false },
  { vm: 'study-m', flavor: 'm', dirtyMiB: 16, stressed: false },
  { vm: 'study-xl-8', flavor: 'xl', dirtyMiB: 8, stressed: true },
  { vm: 'study-xl-16', flavor: 'xl', dirtyMiB: 16, stressed: true },
  { vm: 'study-xl-32', flavor: 'xl', dirtyMiB: 32, stressed: true },
] as const;
const PING_VM = 'pinged';
/** A first ping VM the destination announces, on another address of the lab's LAN. */
const ANNOUNCED_VM = 'pinged-announced';
const ANNOUNCED_ADDRESS = '198.19.0.11';
const PING_FLAVOR = 'lab';
/** As in exporter-ping-migration.test.ts: 32 MiB dirtied, more than pre-copy converges on, so the migration is hybrid. */
const PING_GUEST: LinuxGuestParams = { ...LINUX_GUEST, fillMiB: 16, dirtyMiB: 32 };
/** Post-copy of 40-55 MB at 8 MiB/s: 5-7 s of post-copy with the guest unreachable (no announcement). */
const SLOW_POSTCOPY_BANDWIDTH = 8 * MiB;
/** The test copy of the alert rules fires LivemigPostcopyOutage above this (the shipped rule: 10 s). */
const TEST_OUTAGE_THRESHOLD_S = 1;
const SCRAPE_S = 1;
/** Grafana's $__rate_interval for a 1 s scrape interval and a 1 s step: max(4 x scrape, step + scrape). */
const RATE_INTERVAL = `${4 * SCRAPE_S}s`;
const MIGRATION_TIMEOUT_MS = 30_000;

/**
 * Queries that cannot have data in this run, each with the reason. A listed query that does have
 * data fails the test (the gap is gone: remove it from here).
 */
const KNOWN_GAPS: { dashboard: string; where: string; reason: string }[] = [
  {
    dashboard: 'livemig-detail.json',
    where: 'panel "Interface throughput (transmit up, receive down)" A',
    reason: 'livemig_interface_transmit_bytes_total: the netdev source (issue 4) was not wired into the exporter when this test was written; this run configures no hosts with interfaces',
  },
  {
    dashboard: 'livemig-detail.json',
    where: 'panel "Interface throughput (transmit up, receive down)" B',
    reason: 'livemig_interface_receive_bytes_total: as above',
  },
  {
    dashboard: 'livemig-fleet.json',
    where: 'panel "Log sources: lag and unparseable lines" A',
    reason: 'livemig_log_lag_seconds: this run configures no logs (the nova-compute log source, issue 5, was not wired into the exporter when this test was written)',
  },
  {
    dashboard: 'livemig-fleet.json',
    where: 'panel "Log sources: lag and unparseable lines" B',
    reason: 'livemig_log_lines_unparseable_total: as above',
  },
];

interface Outcome {
  where: string;
  expr: string;
  series: number;
  evaluated: string;
  error?: string;
}

describe.runIf(requireEnvironment(missingTools('qemu-system-x86_64', 'nasm', PROMETHEUS_BIN, ALERTMANAGER_BIN, ...LINUX_LAB_TOOLS), needsRoot()))(
  'dashboard queries against a real Prometheus scraping the exporter during real migrations',
  () => {
    const qemuLab = new QemuLab({ memoryMiB: 128, fillMiB: 64, dirtyMiB: 32 });
    const linuxLab = new LinuxLab();
    let dir = '';
    let configFile = '';
    let exporter: ExporterProcess | undefined;
    let prometheus: PrometheusProcess | undefined;
    let alertmanager: AlertmanagerProcess | undefined;
    let webhook: WebhookReceiver | undefined;
    const vms: object[] = [];
    let startS = 0;
    let endS = 0;
    /** When Prometheus had the post-copy outage alert firing (a moment inside post-copy). */
    let outageS = 0;
    let firing: WebhookNotification | undefined;

    function exporterConfig() {
      return {
        polling: { idle_interval: '500ms', migrating_interval: '100ms', command_timeout: '2s', reconnect_max_backoff: '2s' },
        state_file: join(dir, 'state.json'),
        libvirt: { discover: 'off' },
        ping: { period: '100ms', timeout: '500ms', netns: linuxLab.network.namespaces.lan, after: '3s', blackout_grace: '1s' },
        vms,
      };
    }

    /** Adds a VM to the exporter's config and reloads it (SIGHUP), as an operator would. */
    async function watch(vm: object): Promise<void> {
      vms.push(vm);
      configFile = await writeConfig(dir, exporterConfig());
      exporter?.child.kill('SIGHUP');
    }

    /** Waits until Prometheus has evaluated `expr` to something (the scrape and the rules caught up). */
    async function waitInPrometheus(expr: string, timeoutMs = 15_000): Promise<void> {
      const prom = prometheus as PrometheusProcess;
      const deadline = Date.now() + timeoutMs;
      while ((await prom.query(expr, Date.now() / 1000)).length === 0) {
        if (Date.now() > deadline) throw new Error(`Prometheus has no ${expr} after ${timeoutMs} ms:\n${prom.stderr}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }

    /** Boots a Linux guest at `address`, watches it as `vm` (flavor lab, pinged), migrates it, stops it; its record with ping figures. */
    async function pingMigration(vm: string, address: string, run: { announceRounds?: number; maxPostcopyBandwidth?: number }): Promise<MigrationRecord> {
      const exp = exporter as ExporterProcess;
      const name = `dashq-${vm}`;
      const { migration } = await linuxLab.bootSource({ ...PING_GUEST, address: `${address}/24` }, name);
      try {
        await watch({
          name: vm,
          flavor: PING_FLAVOR,
          ping_address: address,
          monitors: [
            { host: 'src-host', qmp: { unix: migration.source.observerSocket } },
            { host: 'dst-host', qmp: { unix: migration.source.observerSocket.replace(`${name}-src.`, `${name}-dst.`) } },
          ],
        });
        await exp.waitForMonitors(vm, 1);
        await expect.poll(async () => metricValue(await exp.metrics(), `livemig_ping_replies_received_total{vm="${vm}"}`) ?? 0, { timeout: 15_000, interval: 100 }).toBeGreaterThanOrEqual(3);
        const outcome = await migration.migrate({ ...run, maxBandwidth: LINUX_MIGRATION_BANDWIDTH, timeoutMs: MIGRATION_TIMEOUT_MS });
        expect(outcome.source.finalStatus).toBe('completed');
        const record = await exp.waitForRecord((r) => r.vm === vm && r.ping !== undefined, MIGRATION_TIMEOUT_MS);
        await waitInPrometheus(`${RULES.lastBlackout}{vm="${vm}"}`);
        return record;
      } finally {
        await migration.stop();
      }
    }

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'lme-dashq-'));
      await qemuLab.init();
      await linuxLab.init();
      await linuxLab.createNetwork();
      webhook = await WebhookReceiver.start();
      alertmanager = await AlertmanagerProcess.start(webhook.url);
      configFile = await writeConfig(dir, exporterConfig());
      exporter = await ExporterProcess.start(configFile);
      const target = exporter.url.replace(/^http:\/\//, '').replace(/\/$/, '');
      const recording = await readFile(join(ROOT, 'prometheus/rules/livemig-recording.yml'), 'utf8');
      prometheus = await PrometheusProcess.start(
        {
          global: { scrape_interval: `${SCRAPE_S}s`, evaluation_interval: `${SCRAPE_S}s` },
          rule_files: ['livemig-recording.yml', 'livemig-alerts.yml'],
          alerting: { alertmanagers: [{ static_configs: [{ targets: [alertmanager.address] }] }] },
          scrape_configs: [{ job_name: 'livemig', static_configs: [{ targets: [target] }] }],
        },
        { 'livemig-recording.yml': recording, 'livemig-alerts.yml': await testAlertRules() },
      );
      await waitInPrometheus('livemig_build_info');
    }, 300_000);

    afterAll(async () => {
      await exporter?.stop();
      await prometheus?.stop();
      await alertmanager?.stop();
      await webhook?.stop();
      await qemuLab.cleanup();
      await linuxLab.stopTest();
      await linuxLab.cleanup();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('runs the study scenario (five hybrid migrations) and two ping migrations, the second with a post-copy outage; the alert reaches the webhook', async () => {
      const exp = exporter as ExporterProcess;
      startS = Math.floor(Date.now() / 1000) - 5;

      for (const run of STUDY_RUNS) {
        const { src, dst } = await qemuLab.pair({ dirtyMiB: run.dirtyMiB });
        await watch(studyVm(run, src, dst));
        await exp.waitForMonitors(run.vm, 2);
        const outcome = await migrateOnce({ source: src.qmp, destination: dst.qmp }, hybridPlan(), MIGRATION_TIMEOUT_MS);
        expect(outcome.source.finalStatus).toBe('completed');
        await exp.waitForRecord((r) => r.vm === run.vm, MIGRATION_TIMEOUT_MS);
        // The recording rules have the VM's last migration before its QEMUs go (their guests spin a core each).
        await waitInPrometheus(`${RULES.lastTransferred}{vm="${run.vm}"}`);
        await qemuLab.stopAll();
      }

      // Two ping migrations of the Linux guest, so that the ping histograms have two observations
      // (rate() sees the second): first a VM the destination announces (QEMU's default), then
      // the outage scenario: no announcement, slow post-copy. Different addresses, so different
      // MACs: the bridges' forwarding tables and the LAN's ARP cache keep nothing from the first.
      const announced = await pingMigration(ANNOUNCED_VM, ANNOUNCED_ADDRESS, {});
      expect(announced.mode).toBe('hybrid');

      const { migration } = await linuxLab.bootSource(PING_GUEST, 'dashq');
      const dstSocket = migration.source.observerSocket.replace('dashq-src.', 'dashq-dst.');
      await watch({
        name: PING_VM,
        flavor: PING_FLAVOR,
        ping_address: VM_ADDRESS,
        monitors: [
          { host: 'src-host', qmp: { unix: migration.source.observerSocket } },
          { host: 'dst-host', qmp: { unix: dstSocket } },
        ],
      });
      await exp.waitForMonitors(PING_VM, 1);
      await expect.poll(async () => metricValue(await exp.metrics(), `livemig_ping_replies_received_total{vm="${PING_VM}"}`) ?? 0, { timeout: 15_000, interval: 100 }).toBeGreaterThanOrEqual(3);
      const outcome = await migration.migrate({ announceRounds: 0, maxBandwidth: LINUX_MIGRATION_BANDWIDTH, maxPostcopyBandwidth: SLOW_POSTCOPY_BANDWIDTH, timeoutMs: MIGRATION_TIMEOUT_MS });
      expect(outcome.source.finalStatus).toBe('completed');
      const record = await exp.waitForRecord((r) => r.vm === PING_VM && r.ping !== undefined, MIGRATION_TIMEOUT_MS);
      expect(record.mode).toBe('hybrid');
      expect(record.ping?.postcopyOutageTotalSeconds ?? 0, 'the guest was unreachable in post-copy').toBeGreaterThan(TEST_OUTAGE_THRESHOLD_S);

      // The alert: fired in Prometheus, went to Alertmanager, which posted it to the webhook.
      const hook = webhook as WebhookReceiver;
      await expect
        .poll(() => hook.notifications.find((n) => n.alerts.some((a) => a.labels.alertname === 'LivemigPostcopyOutage' && a.labels.vm === PING_VM && a.status === 'firing')), {
          timeout: 20_000,
          interval: 250,
        })
        .toBeDefined();
      firing = hook.notifications.find((n) => n.alerts.some((a) => a.labels.alertname === 'LivemigPostcopyOutage' && a.status === 'firing'));
      const alert = firing?.alerts.find((a) => a.labels.alertname === 'LivemigPostcopyOutage');
      expect(alert?.labels).toMatchObject({ vm: PING_VM, source_host: 'src-host', destination_host: 'dst-host', severity: 'warning' });
      expect(alert?.annotations.description).toContain(`VM ${PING_VM}, migrating from src-host to dst-host`);
      expect(alert?.annotations.runbook_url).toBe('docs/runbook.md#livemigpostcopyoutage');
      outageS = Date.parse(alert?.startsAt ?? '') / 1000;
      const postcopyStart = (record.postcopyAt?.value ?? 0) / 1000;
      const postcopyEnd = (record.endedAt?.value ?? 0) / 1000;
      // It fired inside post-copy (startsAt is Prometheus's evaluation time; allow one scrape).
      expect(outageS).toBeGreaterThan(postcopyStart);
      expect(outageS).toBeLessThanOrEqual(postcopyEnd + SCRAPE_S);
      console.log(
        `post-copy ${(postcopyEnd - postcopyStart).toFixed(1)} s, outage in post-copy ${record.ping?.postcopyOutageTotalSeconds.toFixed(2)} s; ` +
          `alert active at +${(outageS - postcopyStart).toFixed(1)} s into post-copy, webhook notified ${((firing?.receivedAtMs ?? 0) / 1000 - postcopyStart).toFixed(1)} s into post-copy`,
      );
      // The study panels need the ping VM's last migration in the recording rules too.
      await waitInPrometheus(`${RULES.lastBlackout}{vm="${PING_VM}"}`);
      endS = Math.ceil(Date.now() / 1000);
    }, 300_000);

    it('every query of every panel, variable and annotation has data (except the listed known gaps)', async () => {
      expect(endS, 'the scenario ran').toBeGreaterThan(0);
      const prom = prometheus as PrometheusProcess;
      const builtins = { __range: `${endS - startS}s`, __range_s: String(endS - startS), __rate_interval: RATE_INTERVAL, __interval: `${SCRAPE_S}s` };
      const failures: string[] = [];
      const gapsSeen: string[] = [];
      let total = 0;
      for (const [file, dash] of Object.entries(dashboards())) {
        const values = await variableValues(prom, dash, builtins, startS, endS, failures, file);
        for (const q of dashboardQueries(dash)) {
          if (q.kind === 'variable') continue;
          total++;
          const outcome = await runQuery(prom, q, { ...builtins, ...values }, startS, endS, outageS);
          const gap = KNOWN_GAPS.find((g) => g.dashboard === file && g.where === q.where);
          if (gap) {
            gapsSeen.push(`${file} ${q.where}`);
            if (outcome.series > 0) failures.push(`${file} ${q.where}: listed as a known gap but has data now: remove it from KNOWN_GAPS`);
            continue;
          }
          if (outcome.error) failures.push(`${file} ${q.where}: ${outcome.error}\n    ${outcome.expr}`);
          else if (outcome.series === 0) failures.push(`${file} ${q.where}: empty (${outcome.evaluated})\n    ${outcome.expr}`);
        }
      }
      console.log(`${total} dashboard queries run against Prometheus; known gaps (${KNOWN_GAPS.length}):\n${KNOWN_GAPS.map((g) => `  ${g.dashboard} ${g.where}: ${g.reason}`).join('\n')}`);
      expect(gapsSeen.sort(), 'every known gap names an existing query').toEqual(KNOWN_GAPS.map((g) => `${g.dashboard} ${g.where}`).sort());
      expect(failures).toEqual([]);
      expect(total).toBeGreaterThan(30);
    });

    it("the study panels' values equal the exporter's records", async () => {
      expect(endS, 'the scenario ran').toBeGreaterThan(0);
      const prom = prometheus as PrometheusProcess;
      const records = await latestCompletedPerVm(exporter as ExporterProcess);
      expect(records.map((r) => r.vm).sort()).toEqual([...STUDY_RUNS.map((r) => r.vm), ANNOUNCED_VM, PING_VM].sort());
      const study = dashboardQueries(dashboards()['livemig-study.json'] as object).map((q) => q.expr);
      const values = { __range: `${endS - startS}s`, flavor: '.*' };
      const readers: Record<string, (r: MigrationRecord) => number | undefined> = {
        [RULES.lastDuration]: (r) => r.durationSeconds?.value,
        [RULES.lastTransferred]: (r) => r.bytes.transferred?.value,
        [RULES.lastQemuDowntime]: (r) => (r.qemu.downtimeMs ? r.qemu.downtimeMs.value / 1000 : undefined),
        [RULES.lastBlackout]: (r) => (r.ping ? (r.ping.switchoverBlackout?.seconds ?? 0) : undefined),
      };
      const groupings = [
        { by: 'flavor', filter: '', key: (r: MigrationRecord) => r.labels.flavor },
        { by: STRESSED_LABEL, filter: `,flavor=~"$flavor",${STRESSED_LABEL}!=""`, key: (r: MigrationRecord) => r.labels[STRESSED_LABEL] },
      ];
      let compared = 0;
      for (const g of groupings) {
        const countExpr = studyCount(g.by, g.filter);
        expect(study, countExpr).toContain(countExpr);
        const counted = byLabel(await prom.query(substitute(countExpr, values), endS), g.by);
        expect(counted).toEqual(expectedBy(records, g.key, () => 1, 'count'));
        compared += Object.keys(counted).length;
        for (const [rule, read] of Object.entries(readers)) {
          const expr = studyAverage(rule, g.by, g.filter);
          if (!study.includes(expr)) continue;
          const got = byLabel(await prom.query(substitute(expr, values), endS), g.by);
          const want = expectedBy(records, g.key, read, 'mean');
          expect(Object.keys(got).sort(), expr).toEqual(Object.keys(want).sort());
          for (const [label, value] of Object.entries(want)) expect(got[label], `${expr} ${g.by}=${label}`).toBeCloseTo(value, 6);
          compared += Object.keys(want).length;
        }
      }
      // Table 2 by flavor: s, m, xl, lab; Tables 3-4: 8, 16, 32 MiB.
      const flavors = byLabel(await prom.query(substitute(studyCount('flavor'), values), endS), 'flavor');
      expect(Object.keys(flavors).sort()).toEqual(['lab', 'm', 's', 'xl']);
      const steps = byLabel(await prom.query(substitute(studyCount(STRESSED_LABEL, groupings[1]?.filter), values), endS), STRESSED_LABEL);
      expect(steps).toEqual({ '8': 1, '16': 1, '32': 1 });
      // The study's law in the lab: data transferred grows with the stressed memory.
      const transferred = byLabel(await prom.query(substitute(studyAverage(RULES.lastTransferred, STRESSED_LABEL, groupings[1]?.filter), values), endS), STRESSED_LABEL);
      expect(transferred['8']).toBeLessThan(transferred['16'] ?? 0);
      expect(transferred['16']).toBeLessThan(transferred['32'] ?? 0);
      console.log(`study panels: ${compared} values equal to the records; transferred by stressed MiB: ${JSON.stringify(transferred)}`);
    });
  },
);

function studyVm(run: (typeof STUDY_RUNS)[number], src: Booted, dst: Booted) {
  return {
    name: run.vm,
    flavor: run.flavor,
    ...(run.stressed ? { labels: { [STRESSED_LABEL]: String(run.dirtyMiB) } } : {}),
    monitors: [
      { host: 'src-host', qmp: { unix: src.observerSocket } },
      { host: 'dst-host', qmp: { unix: dst.observerSocket } },
    ],
  };
}

/** The shipped alert rules with LivemigPostcopyOutage's threshold lowered to TEST_OUTAGE_THRESHOLD_S. */
async function testAlertRules(): Promise<string> {
  const rules = parse(await readFile(join(ROOT, 'prometheus/rules/livemig-alerts.yml'), 'utf8')) as { groups: { rules: { alert?: string; expr: string }[] }[] };
  const outage = rules.groups.flatMap((g) => g.rules).find((r) => r.alert === 'LivemigPostcopyOutage');
  if (!outage || !/> 10$/.test(outage.expr)) throw new Error('LivemigPostcopyOutage no longer ends in "> 10": update this test');
  outage.expr = outage.expr.replace(/> 10$/, `> ${TEST_OUTAGE_THRESHOLD_S}`);
  return stringify(rules);
}

/**
 * Runs the dashboard's query variables as Grafana does (label values over the time range) and
 * picks each one's value: "All" (its regex) for multi-value variables, the ping VM for `vm`.
 */
async function variableValues(
  prom: PrometheusProcess,
  dash: object,
  builtins: Record<string, string>,
  start: number,
  end: number,
  failures: string[],
  file: string,
): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  const list = (dash as { templating: { list: { type: string; name: string; includeAll?: boolean; allValue?: string; query?: { query?: string } }[] } }).templating.list;
  for (const variable of list.filter((v) => v.type === 'query')) {
    const query = variable.query?.query ?? '';
    const lv = parseLabelValues(substitute(query, { ...builtins, ...values }));
    if (!lv) {
      failures.push(`${file} variable ${variable.name}: not a label_values() query: ${query}`);
      continue;
    }
    let found: string[] = [];
    try {
      found = await prom.labelValues(lv.label, lv.match, start, end);
    } catch (err) {
      failures.push(`${file} variable ${variable.name}: ${(err as Error).message}`);
    }
    if (found.length === 0) failures.push(`${file} variable ${variable.name}: no values (${lv.match}, ${lv.label})`);
    if (variable.name === 'vm') {
      expect(found, 'the vm variable lists the ping VM').toContain(PING_VM);
      values.vm = PING_VM;
    } else {
      values[variable.name] = variable.includeAll ? (variable.allValue ?? '.*') : (found[0] ?? '');
    }
  }
  return values;
}

/**
 * A range panel query over the scenario (step = scrape interval); an instant one at the end of
 * the range as the dashboard opened then shows it, or, when that is empty, at the moment of the
 * post-copy outage (the dashboard opened during it: "running now" panels).
 */
async function runQuery(prom: PrometheusProcess, q: DashboardQuery, values: Record<string, string>, start: number, end: number, outageAt: number): Promise<Outcome> {
  const expr = substitute(q.expr, values);
  const base = { where: q.where, expr };
  try {
    if (!q.instant) {
      const result = await prom.queryRange(expr, start, end, SCRAPE_S);
      return { ...base, series: withNumbers(result).length, evaluated: `range ${start}..${end}` };
    }
    const atEnd = withNumbers(await prom.query(expr, end));
    if (atEnd.length > 0) return { ...base, series: atEnd.length, evaluated: 'instant at the end' };
    const during = withNumbers(await prom.query(expr, outageAt));
    return { ...base, series: during.length, evaluated: 'instant at the end and during the outage' };
  } catch (err) {
    return { ...base, series: 0, evaluated: 'error', error: (err as Error).message };
  }
}

/** Series with at least one number (a panel of NaN only shows nothing). */
function withNumbers(result: PromSample[]): PromSample[] {
  return result.filter((s) => [...(s.values ?? []), ...(s.value ? [s.value] : [])].some(([, v]) => !Number.isNaN(Number(v))));
}

function byLabel(result: PromSample[], label: string): Record<string, number> {
  return Object.fromEntries(result.map((s) => [s.metric[label] ?? '', Number(s.value?.[1])]));
}

async function latestCompletedPerVm(exporter: ExporterProcess): Promise<MigrationRecord[]> {
  const newestFirst = await exporter.migrations('?limit=1000');
  const seen = new Set<string>();
  const out: MigrationRecord[] = [];
  for (const r of newestFirst) {
    if (seen.has(r.vm)) continue;
    seen.add(r.vm);
    if (r.result === 'completed') out.push(r);
  }
  return out;
}

/** Per group (records without the label left out), the count or the mean of the records' figure. */
function expectedBy(records: MigrationRecord[], key: (r: MigrationRecord) => string | undefined, read: (r: MigrationRecord) => number | undefined, how: 'count' | 'mean'): Record<string, number> {
  const groups = new Map<string, number[]>();
  for (const r of records) {
    const k = key(r);
    const v = read(r);
    if (k === undefined || v === undefined) continue;
    groups.set(k, [...(groups.get(k) ?? []), v]);
  }
  return Object.fromEntries([...groups].map(([k, vs]) => [k, how === 'count' ? vs.length : vs.reduce((a, b) => a + b, 0) / vs.length]));
}
