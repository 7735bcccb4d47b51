/**
 * The generated dashboards against a real Prometheus (Debian's /usr/bin/prometheus, scraping
 * every second) that scrapes the exporter of `livemig-exporter lab` (engine qemu, run as a child
 * process as a user runs it) with the shipped recording rules (and the study's reference series,
 * livemig-study-reference.yml) and a copy of the alert rules whose
 * post-copy outage threshold is 0.5 s, and sends its alerts to a real Alertmanager (Debian's
 * prometheus-alertmanager) whose webhook receiver is this test. The lab runs, one after the
 * other on the same exporter address (so one scrape target):
 *
 * - `flavors`: Table 2's unloaded VMs s, m, l, xl;
 * - `stress-sweep --steps 64,128`: Tables 3-4, flavor xl, `stressed_mib` 64 and 128,
 *   `stress_step_mib` 64 (the one sweep both tables' variables select), hybrid;
 * - `outage --count 2`: two VMs of the Linux guest (outage-1 and outage-2, on two addresses),
 *   pinged, each migrated hybrid once with no announcement and the LAN losing it for 2 s in
 *   post-copy (two ping migrations of flavor s: a histogram series is born at its first
 *   observation, so the ping histograms' rate() needs the second).
 *
 * Each lab run writes the hosts' nova-compute logs and has netns hosts with veth interfaces, so
 * the exporter has every source. Each lingers (`--linger`) after its report until Prometheus has
 * its last migrations in the recording rules and the test has read its records; then Ctrl-C ends it.
 *
 * Then every query of every panel, variable and annotation of every generated dashboard runs,
 * variables substituted, through Prometheus's HTTP API: none may fail, none may be empty (or all
 * NaN); the study panels' values equal the lab exporters' own records (/api/v1/migrations), the
 * fits those of src/lab/report/linear-fit.ts on the records and on the published tables; and
 * the post-copy outage alert fired in Prometheus and reached the webhook through Alertmanager.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { dashboards, ROOT } from '../../src/dashboards/generate.js';
import { dashboardQueries, parseLabelValues, substitute, type DashboardQuery } from '../../src/dashboards/queries.js';
import { RECORDING_RULES_FILE, RULES, STEP_LABEL, STRESSED_LABEL } from '../../src/dashboards/rules.js';
import { fitFigure, postcopyOutage, studyAverage, studyCount, sweepFilter } from '../../src/dashboards/study.js';
import { STUDY_MB, STUDY_REFERENCE_FILE, STUDY_TABLES } from '../../src/dashboards/study-reference.js';
import { linearFit } from '../../src/lab/report/linear-fit.js';
import type { ScenarioReport } from '../../src/lab/report/results.js';
import type { MigrationRecord } from '../../src/records/record.js';
import { ALERTMANAGER_BIN, AlertmanagerProcess, WebhookReceiver, type WebhookNotification } from '../helpers/alertmanager.js';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { LabRun, leftovers, noLeftovers } from '../helpers/lab-cli.js';
import { LINUX_LAB_TOOLS } from '../helpers/linux-lab.js';
import { PROMETHEUS_BIN, PrometheusProcess, type PromSample } from '../helpers/prometheus.js';
import { closedPort } from '../helpers/qemu-lab.js';

/** The lab runs, in order; the last one's last VM is the detail dashboard's `vm` (it has ping). */
const LAB_RUNS = [
  { scenario: 'flavors', args: [] as string[] },
  // Above what pre-copy can finish within QEMU's downtime limit at 1 Gbit/s (about 34 MiB, see src/lab/scenarios/stress-sweep.ts): hybrid.
  { scenario: 'stress-sweep', args: ['--steps', '64,128'] },
  { scenario: 'outage', args: ['--count', '2'] },
] as const;
/** The sweep's stress_step_mib (the lab labels each sweep VM with the smallest gap between --steps). */
const SWEEP_STEP = '64';
const OUTAGE_VMS = ['outage-1', 'outage-2'];
const PING_VM = 'outage-2';
/** Long enough for any wait below; the test ends each linger with Ctrl-C. */
const LINGER_S = 120;
/** The test copy of the alert rules fires LivemigPostcopyOutage above this (the shipped rule: 10 s). */
const TEST_OUTAGE_THRESHOLD_S = 0.5;
const SCRAPE_S = 1;
/** Grafana's $__rate_interval for a 1 s scrape interval and a 1 s step: max(4 x scrape, step + scrape). */
const RATE_INTERVAL = `${4 * SCRAPE_S}s`;

/**
 * Queries that cannot have data in this run, each with the reason. A listed query that does have
 * data fails the test (the gap is gone: remove it from here). None now: every source is watched.
 */
const KNOWN_GAPS: { dashboard: string; where: string; reason: string }[] = [];

interface Outcome {
  where: string;
  expr: string;
  series: number;
  evaluated: string;
  error?: string;
}

describe.runIf(requireEnvironment(missingTools('nasm', PROMETHEUS_BIN, ALERTMANAGER_BIN, ...LINUX_LAB_TOOLS), needsRoot()))(
  'dashboard queries against a real Prometheus scraping `livemig-exporter lab`',
  () => {
    let out = '';
    let port = 0;
    let prometheus: PrometheusProcess | undefined;
    let alertmanager: AlertmanagerProcess | undefined;
    let webhook: WebhookReceiver | undefined;
    const labs: LabRun[] = [];
    /** Every lab exporter's records, newest first per lab. */
    const records: MigrationRecord[] = [];
    const reports: ScenarioReport[] = [];
    let startS = 0;
    let endS = 0;
    /** When Prometheus had the post-copy outage alert firing (a moment inside post-copy). */
    let outageS = 0;

    /** Waits until Prometheus evaluates `expr` (at now) to something that `ok` accepts (the scrape and the rules caught up). */
    async function waitInPrometheus(expr: string, ok: (r: PromSample[]) => boolean = (r) => r.length > 0, timeoutMs = 20_000): Promise<PromSample[]> {
      const prom = prometheus as PrometheusProcess;
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const result = await prom.query(expr, Date.now() / 1000);
        if (ok(result)) return result;
        if (Date.now() > deadline) throw new Error(`Prometheus has no ${expr} as expected after ${timeoutMs} ms (got ${JSON.stringify(result)}):\n${prom.stderr}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }

    beforeAll(async () => {
      out = await mkdtemp(join(tmpdir(), 'lme-dashq-'));
      webhook = await WebhookReceiver.start();
      alertmanager = await AlertmanagerProcess.start(webhook.url);
      port = await closedPort();
      const recording = await readFile(join(ROOT, RECORDING_RULES_FILE), 'utf8');
      const reference = await readFile(join(ROOT, STUDY_REFERENCE_FILE), 'utf8');
      prometheus = await PrometheusProcess.start(
        {
          global: { scrape_interval: `${SCRAPE_S}s`, evaluation_interval: `${SCRAPE_S}s` },
          rule_files: ['livemig-recording.yml', 'livemig-study-reference.yml', 'livemig-alerts.yml'],
          alerting: { alertmanagers: [{ static_configs: [{ targets: [alertmanager.address] }] }] },
          scrape_configs: [{ job_name: 'livemig', static_configs: [{ targets: [`127.0.0.1:${port}`] }] }],
        },
        { 'livemig-recording.yml': recording, 'livemig-study-reference.yml': reference, 'livemig-alerts.yml': await testAlertRules() },
      );
    }, 60_000);

    afterAll(async () => {
      for (const lab of labs) await lab.stop();
      await prometheus?.stop();
      await alertmanager?.stop();
      await webhook?.stop();
      if (out) await rm(out, { recursive: true, force: true });
    });

    it('the lab runs flavors, stress-sweep and outage while Prometheus scrapes it every second; the outage alert reaches the webhook', async () => {
      startS = Math.floor(Date.now() / 1000) - 2;
      for (const run of LAB_RUNS) {
        const lab = LabRun.start(['--scenario', run.scenario, ...run.args, '--engine', 'qemu', '--out', out, '--linger', String(LINGER_S)], {}, { listen: `127.0.0.1:${port}` });
        labs.push(lab);
        expect(await lab.url()).toBe(`http://127.0.0.1:${port}`);
        await lab.lingering();
        const report = lab.report();
        reports.push(report);
        const mine = await lab.migrations();
        for (const m of report.measurements) {
          expect(m, `${run.scenario}: ${JSON.stringify(m)}`).toMatchObject({ result: 'completed' });
          expect(mine.map((r) => r.id), 'the report comes from the records').toContain(m.recordId);
        }
        if (run.scenario !== 'flavors') expect(report.measurements.map((m) => m.mode), `${run.scenario}: ${lab.stdout}`).toEqual(report.measurements.map(() => 'hybrid'));
        // Prometheus has each VM's last migration in the recording rules (and, for the pinged
        // VM, its blackout) before the lab stops serving.
        for (const r of latestPerVm(mine)) {
          await waitInPrometheus(`${RULES.lastTransferred}{vm="${r.vm}"}`, (res) => res.length === 1 && Number(res[0]?.value?.[1]) === r.bytes.transferred?.value);
          if (r.ping) await waitInPrometheus(`${RULES.lastBlackout}{vm="${r.vm}"}`);
        }
        records.push(...mine);
        // The dashboards are opened at the end of the last run, while its exporter still serves:
        // two evaluations after the rules had everything, so that an instant query at endS
        // (a whole second, before the moment the waits above saw) sees it too.
        await new Promise((r) => setTimeout(r, 2_000 * SCRAPE_S));
        endS = Math.floor(Date.now() / 1000);
        lab.child.kill('SIGINT');
        await lab.finished(0);
        expect(leftovers(lab.pid)).toEqual(noLeftovers());
      }

      // The alert: fired in Prometheus, went to Alertmanager, which posted it to the webhook.
      const outageRecords = records.filter((r) => OUTAGE_VMS.includes(r.vm)).sort((a, b) => a.startedAt.value - b.startedAt.value);
      expect(outageRecords.map((r) => r.vm)).toEqual(OUTAGE_VMS);
      for (const r of outageRecords) {
        expect(r.mode).toBe('hybrid');
        expect(r.ping?.postcopyOutageTotalSeconds ?? 0, 'the guest was unreachable in post-copy').toBeGreaterThan(TEST_OUTAGE_THRESHOLD_S);
      }
      const hook = webhook as WebhookReceiver;
      const isOutage = (vm: string) => (a: WebhookNotification['alerts'][number]) => a.labels.alertname === 'LivemigPostcopyOutage' && a.labels.vm === vm && a.status === 'firing';
      const notified = (vm: string) => hook.notifications.find((n) => n.alerts.some(isOutage(vm)));
      const liveMax = Object.fromEntries(reports.flatMap((r) => r.measurements).filter((m) => OUTAGE_VMS.includes(m.vm)).map((m) => [m.vm, m.livePostcopyOutageMaxSeconds]));
      // Said on failure: whether Prometheus had the alert at all (then the delivery was late) and
      // how high the live outage gauge went in Prometheus (the alert has no `for`).
      const alertsSeen = async (): Promise<string> => {
        const prom = prometheus as PrometheusProcess;
        const now = Math.floor(Date.now() / 1000);
        const alerts = await prom.queryRange('ALERTS{alertname="LivemigPostcopyOutage"}', startS, now, SCRAPE_S);
        const gauge = await prom.queryRange('max by (vm) (livemig_migration_current_postcopy_outage_seconds)', startS, now, SCRAPE_S);
        return `ALERTS: ${JSON.stringify(alerts.map((a) => a.metric))}; gauge max: ${JSON.stringify(gauge.map((g) => [g.metric.vm, Math.max(...(g.values ?? []).map((v) => Number(v[1])))]))}; live max: ${JSON.stringify(liveMax)}`;
      };
      await expect
        .poll(() => OUTAGE_VMS.filter(notified).length, { timeout: 30_000, interval: 250 })
        .toBeGreaterThan(0)
        .catch(async (err: unknown) => {
          throw new Error(`no LivemigPostcopyOutage notification within 30 s: ${await alertsSeen()}`, { cause: err });
        });
      const firedFor = OUTAGE_VMS.filter(notified);
      // A VM whose live post-copy outage gauge stayed above the threshold for two scrapes more has its alert.
      for (const vm of OUTAGE_VMS) if ((liveMax[vm] ?? 0) > TEST_OUTAGE_THRESHOLD_S + 2 * SCRAPE_S) expect(firedFor, `live outage max of ${vm}: ${JSON.stringify(liveMax)}`).toContain(vm);
      // The last VM that alerted: its alert's moment is when the "running now" panels are checked.
      const alertedVm = firedFor[firedFor.length - 1] as string;
      const firing = notified(alertedVm) as WebhookNotification;
      const alert = firing.alerts.find(isOutage(alertedVm));
      outageS = Date.parse(alert?.startsAt ?? '') / 1000;
      // It fired inside the VM's post-copy (startsAt is Prometheus's evaluation time; allow one scrape).
      const record = outageRecords.find((r) => r.vm === alertedVm) as MigrationRecord;
      expect(outageS).toBeGreaterThan((record.postcopyAt?.value ?? Infinity) / 1000);
      expect(outageS).toBeLessThanOrEqual((record.endedAt?.value ?? 0) / 1000 + SCRAPE_S);
      expect(alert?.labels).toMatchObject({ vm: alertedVm, source_host: record.source.host, destination_host: record.destination?.host, severity: 'warning' });
      expect(alert?.annotations.description).toContain(`VM ${alertedVm}, migrating from ${record.source.host} to ${record.destination?.host}`);
      expect(alert?.annotations.runbook_url).toBe('docs/runbook.md#livemigpostcopyoutage');
      const postcopyStart = (record.postcopyAt?.value ?? 0) / 1000;
      const postcopyEnd = (record.endedAt?.value ?? 0) / 1000;
      console.log(
        `lab runs: ${reports.map((r) => `${r.scenario} (${r.measurements.length} migrations)`).join(', ')}; ` +
          `alert for ${firedFor.join(', ')} (live outage gauge max ${JSON.stringify(liveMax)}); ${alertedVm}: post-copy ${(postcopyEnd - postcopyStart).toFixed(1)} s, outage in post-copy ${record.ping?.postcopyOutageTotalSeconds.toFixed(2)} s; ` +
          `alert active at +${(outageS - postcopyStart).toFixed(1)} s into post-copy, webhook notified ${(firing.receivedAtMs / 1000 - postcopyStart).toFixed(1)} s into post-copy`,
      );
    }, 240_000);

    it('every query of every panel, variable and annotation has data', async () => {
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
      console.log(`${total} dashboard queries (panels and annotations) run against Prometheus over ${endS - startS} s; known gaps: ${KNOWN_GAPS.length}`);
      expect(gapsSeen.sort(), 'every known gap names an existing query').toEqual(KNOWN_GAPS.map((g) => `${g.dashboard} ${g.where}`).sort());
      expect(failures).toEqual([]);
      expect(total).toBeGreaterThan(30);

      // The sources behind the panels that were gaps before the lab watched them: the veth
      // counters of the netns hosts carry the migrations (every one went src -> dst), and both
      // hosts' nova-compute logs are followed.
      const detail = dashboards()['livemig-detail.json'] as object;
      const transmit = panelExpr(detail, 'panel "Interface throughput (transmit up, receive down)" A');
      const sent = await prom.queryRange(substitute(transmit, { ...builtins, host: '.*' }), startS, endS, SCRAPE_S);
      const peak = (host: string) => Math.max(0, ...sent.filter((x) => x.metric.host === host).flatMap((x) => (x.values ?? []).map(([, v]) => Number(v))));
      expect(peak('src'), 'src transmits the migrations (bytes/s)').toBeGreaterThan(10e6);
      const logs = await prom.queryRange(substitute(panelExpr(dashboards()['livemig-fleet.json'] as object, 'panel "Log sources: lag and unparseable lines" A'), { ...builtins, job: '.*' }), startS, endS, SCRAPE_S);
      expect(logs.map((x) => `${x.metric.host} ${x.metric.kind}`).sort()).toEqual(['dst nova-compute', 'src nova-compute']);
      console.log(`interface throughput: src transmit peak ${(peak('src') / 1e6).toFixed(1)} MB/s, dst ${(peak('dst') / 1e6).toFixed(1)} MB/s; log sources: ${logs.length}`);
    });

    it("the study panels' values equal the lab exporters' records", async () => {
      expect(endS, 'the scenario ran').toBeGreaterThan(0);
      const prom = prometheus as PrometheusProcess;
      const latest = latestPerVm(records).filter((r) => r.result === 'completed');
      expect(latest.map((r) => r.vm).sort()).toEqual(['flavor-l', 'flavor-m', 'flavor-s', 'flavor-xl', ...OUTAGE_VMS, 'sweep-128', 'sweep-64']);
      const study = dashboardQueries(dashboards()['livemig-study.json'] as object).map((q) => q.expr);
      // Both tables' variables select the lab's one sweep (stress_step_mib 64: --steps 64,128).
      const values = { __range: `${endS - startS}s`, flavor: '.*', table3: SWEEP_STEP, table4: SWEEP_STEP };
      const readers: Record<string, (r: MigrationRecord) => number | undefined> = {
        [RULES.lastDuration]: (r) => r.durationSeconds?.value,
        [RULES.lastTransferred]: (r) => r.bytes.transferred?.value,
        [RULES.lastQemuDowntime]: (r) => (r.qemu.downtimeMs ? r.qemu.downtimeMs.value / 1000 : undefined),
        [RULES.lastBlackout]: (r) => (r.ping ? (r.ping.switchoverBlackout?.seconds ?? 0) : undefined),
      };
      const groupings = [
        { by: 'flavor', filter: '', key: (r: MigrationRecord) => r.labels.flavor },
        { by: STRESSED_LABEL, filter: sweepFilter('table3'), key: (r: MigrationRecord) => (r.labels[STEP_LABEL] === SWEEP_STEP ? r.labels[STRESSED_LABEL] : undefined) },
        { by: STRESSED_LABEL, filter: sweepFilter('table4'), key: (r: MigrationRecord) => (r.labels[STEP_LABEL] === SWEEP_STEP ? r.labels[STRESSED_LABEL] : undefined) },
      ];
      let compared = 0;
      for (const g of groupings) {
        const countExpr = studyCount(g.by, g.filter);
        expect(study, countExpr).toContain(countExpr);
        const counted = byLabel(await prom.query(substitute(countExpr, values), endS), g.by);
        expect(counted).toEqual(expectedBy(latest, g.key, () => 1, 'count'));
        compared += Object.keys(counted).length;
        for (const [rule, read] of Object.entries(readers)) {
          const expr = studyAverage(rule, g.by, g.filter);
          if (!study.includes(expr)) continue;
          const got = byLabel(await prom.query(substitute(expr, values), endS), g.by);
          const want = expectedBy(latest, g.key, read, 'mean');
          expect(Object.keys(got).sort(), expr).toEqual(Object.keys(want).sort());
          for (const [label, value] of Object.entries(want)) expect(got[label], `${expr} ${g.by}=${label}`).toBeCloseTo(value, 6);
          compared += Object.keys(want).length;
        }
      }
      // Table 2 by flavor: s, m, l, xl (the outage VMs are s, the sweep's xl); Tables 3 and 4: the sweep's 64 and 128 MiB (the outage VMs, stressed 32 MiB, are in no sweep).
      const flavors = byLabel(await prom.query(substitute(studyCount('flavor'), values), endS), 'flavor');
      expect(flavors).toEqual({ s: 3, m: 1, l: 1, xl: 3 });
      const steps = byLabel(await prom.query(substitute(studyCount(STRESSED_LABEL, groupings[1]?.filter), values), endS), STRESSED_LABEL);
      expect(steps).toEqual({ '64': 1, '128': 1 });
      // The study's law in the lab, the flavor variable set to xl (the sweep): data transferred grows with the stressed memory.
      const xl = { ...values, flavor: 'xl' };
      const transferred = byLabel(await prom.query(substitute(studyAverage(RULES.lastTransferred, STRESSED_LABEL, groupings[1]?.filter), xl), endS), STRESSED_LABEL);
      expect(Object.keys(transferred).sort()).toEqual(['128', '64']);
      expect(transferred['64']).toBeLessThan(transferred['128'] ?? 0);

      // The linear fits (the fits table's queries): the lab's sweep equals linear-fit.ts on its
      // records (stressed bytes from the label, the records' figures); the study's equals it on
      // the published tables (MB read as MiB).
      const sweep = latest.filter((r) => r.labels[STEP_LABEL] === SWEEP_STEP);
      const x = (r: MigrationRecord) => Number(r.labels[STRESSED_LABEL]) * 1048576;
      const fits = {
        measured: {
          transferred: linearFit(sweep.map((r) => [x(r), r.bytes.transferred?.value ?? NaN])),
          time: linearFit(sweep.map((r) => [x(r), r.durationSeconds?.value ?? NaN])),
        },
        ...Object.fromEntries(
          STUDY_TABLES.map((t) => [
            `study ${t.table}`,
            {
              transferred: linearFit(t.points.map((p) => [p.stressedMB * STUDY_MB, p.transferredMB * STUDY_MB])),
              time: linearFit(t.points.map((p) => [p.stressedMB * STUDY_MB, p.timeS])),
            },
          ]),
        ),
      } as Record<string, { transferred: ReturnType<typeof linearFit>; time: ReturnType<typeof linearFit> }>;
      const fitsDash = dashboardQueries(dashboards()['livemig-study.json'] as object).map((q) => q.expr);
      const fitRow = (s: PromSample) => (s.metric.origin === 'measured' ? 'measured' : `study ${s.metric.study_table}`);
      const checks: [string, (f: (typeof fits)[string]) => number][] = [
        [fitFigure(RULES.sweepPoints), (f) => f.transferred.n],
        [fitFigure(RULES.transferredSlope), (f) => f.transferred.slope],
        [fitFigure(RULES.transferredIntercept), (f) => f.transferred.intercept],
        [fitFigure(RULES.transferredRSquared), (f) => f.transferred.rSquared],
        [fitFigure(RULES.durationSlope, ' * 1048576'), (f) => f.time.slope * 1048576],
        [fitFigure(RULES.durationIntercept), (f) => f.time.intercept],
        [fitFigure(RULES.durationRSquared), (f) => f.time.rSquared],
      ];
      for (const [expr, read] of checks) {
        expect(fitsDash, expr).toContain(expr);
        const result = await prom.query(substitute(expr, values), endS);
        expect(result.map(fitRow).sort(), expr).toEqual(['measured', 'study 3', 'study 4']);
        expect(result.find((r) => r.metric.origin === 'measured')?.metric, expr).toMatchObject({ flavor: 'xl', [STEP_LABEL]: SWEEP_STEP });
        for (const r of result) {
          const want = read(fits[fitRow(r)] as (typeof fits)[string]);
          // n = 2 here: R² is 1 but for rounding.
          expect(Math.abs(Number(r.value?.[1]) / want - 1), `${expr} ${fitRow(r)}: ${r.value?.[1]} vs ${want}`).toBeLessThan(1e-9);
        }
      }
      compared += checks.length * 3;

      // The post-copy outage panel: each pinged VM's switch-over blackout and post-copy outage, as in its record.
      for (const [rule, read] of [
        [RULES.lastBlackout, (r: MigrationRecord) => r.ping?.switchoverBlackout?.seconds ?? 0],
        [RULES.lastPostcopyOutage, (r: MigrationRecord) => r.ping?.postcopyOutageTotalSeconds],
      ] as const) {
        const expr = postcopyOutage(rule);
        expect(study, expr).toContain(expr);
        const got = byLabel(await prom.query(substitute(expr, values), endS), 'vm');
        expect(Object.keys(got).sort(), expr).toEqual(OUTAGE_VMS);
        for (const vm of OUTAGE_VMS) expect(got[vm], `${expr} ${vm}`).toBeCloseTo(read(latest.find((r) => r.vm === vm) as MigrationRecord) ?? NaN, 6);
        compared += OUTAGE_VMS.length;
      }
      const m = fits.measured as (typeof fits)[string];
      console.log(
        `study panels: ${compared} values equal to the records; transferred by stressed MiB (xl): ${JSON.stringify(transferred)}; ` +
          `sweep fit: transferred = ${m.transferred.slope.toFixed(3)} x stressed + ${(m.transferred.intercept / 1e6).toFixed(1)} MB, time = ${(m.time.slope * 1048576 * 1000).toFixed(2)} ms per stressed MiB + ${m.time.intercept.toFixed(2)} s`,
      );
    });
  },
);

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
 * picks each one's value: "All" (its regex) for multi-value variables, the ping VM for `vm`,
 * else the first value in the variable's sort order (as Grafana selects one without a saved value).
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
  const list = (dash as { templating: { list: { type: string; name: string; includeAll?: boolean; allValue?: string; sort?: number; query?: { query?: string } }[] } }).templating.list;
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
      expect(found, 'the vm variable lists the pinged VM').toContain(PING_VM);
      values.vm = PING_VM;
    } else {
      // Grafana's VariableSort: 3 numerical ascending, 4 numerical descending (else as Prometheus lists them).
      const sorted = variable.sort === 3 ? [...found].sort((a, b) => Number(a) - Number(b)) : variable.sort === 4 ? [...found].sort((a, b) => Number(b) - Number(a)) : found;
      values[variable.name] = variable.includeAll ? (variable.allValue ?? '.*') : (sorted[0] ?? '');
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

function panelExpr(dash: object, where: string): string {
  const query = dashboardQueries(dash).find((q) => q.where === where);
  if (!query) throw new Error(`no ${where} in the dashboard`);
  return query.expr;
}

/** Series with at least one number (a panel of NaN only shows nothing). */
function withNumbers(result: PromSample[]): PromSample[] {
  return result.filter((s) => [...(s.values ?? []), ...(s.value ? [s.value] : [])].some(([, v]) => !Number.isNaN(Number(v))));
}

function byLabel(result: PromSample[], label: string): Record<string, number> {
  return Object.fromEntries(result.map((s) => [s.metric[label] ?? '', Number(s.value?.[1])]));
}

/** Each VM's newest record (every VM belongs to one lab run). */
function latestPerVm(all: MigrationRecord[]): MigrationRecord[] {
  const newest = new Map<string, MigrationRecord>();
  for (const r of all) if ((newest.get(r.vm)?.startedAt.value ?? -Infinity) < r.startedAt.value) newest.set(r.vm, r);
  return [...newest.values()];
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
