/**
 * The generated dashboards: the committed JSON is what the generator makes now (run
 * `npm run dashboards` after changing src/dashboards), every query goes through the datasource
 * variable, every metric a query names exists, and the recording rules they use are recorded.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { dashboards, DASHBOARD_DIR, GNETCOM_DIR, renderDashboards, ROOT } from '../../src/dashboards/generate.js';
import { DS_INPUT, gnetcomVariant } from '../../src/dashboards/gnetcom.js';
import { dashboardQueries, parseLabelValues, substitute } from '../../src/dashboards/queries.js';
import { DETAIL_UID } from '../../src/dashboards/detail.js';
import { RULES, STEP_LABEL } from '../../src/dashboards/rules.js';
import { METRICS, RAM_METRICS } from '../../src/metrics/catalogue.js';

/** Metrics other helpers add (fixed in the contracts between them) that the catalogue may not list yet. */
const CONTRACT_METRICS = [
  'livemig_interface_receive_bytes_total',
  'livemig_interface_transmit_bytes_total',
  'livemig_log_lag_seconds',
  'livemig_log_lines_unparseable_total',
];

/** Every rules file Prometheus loads (prometheus.yml: rules/*.yml). */
const RULE_FILES = readdirSync(join(ROOT, 'prometheus/rules')).filter((f) => f.endsWith('.yml'));
const recordedIn = (file: string) =>
  (parse(readFileSync(join(ROOT, 'prometheus/rules', file), 'utf8')) as { groups: { rules: { record?: string }[] }[] }).groups
    .flatMap((g) => g.rules)
    .flatMap((r) => (r.record ? [r.record] : []));
const recordingRules = RULE_FILES.flatMap(recordedIn);

function knownMetric(name: string): boolean {
  const catalogue = [...Object.values(METRICS), ...RAM_METRICS].map((m) => m.name);
  const histograms = Object.values(METRICS).filter((m) => m.type === 'histogram').flatMap((m) => [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`]);
  return [...catalogue, ...histograms, ...CONTRACT_METRICS, 'up'].includes(name) || recordingRules.includes(name);
}

/** Metric names in a PromQL expression: identifiers followed by `{`, `[`, `)` or `,` that are not functions or keywords. */
function metricNames(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(/(?<![\w:"$.])([a-zA-Z_:][\w:]*)\s*(?=[{[),]|$)/g)) {
    const name = m[1] as string;
    if (/^(by|on|without|ignoring|group_left|group_right|and|or|unless|bool|le|vm|host|phase|flavor|result|mode|source|destination_host|source_host|stressed_mib|interface|instance|job|version|nodejs|status)$/.test(name)) continue;
    if (name.startsWith('livemig') || name.includes(':') || name === 'up') names.add(name);
  }
  return [...names];
}

describe('generated dashboards', () => {
  it('the committed JSON is up to date (run `npm run dashboards`)', () => {
    const files = renderDashboards();
    expect(files.size).toBe(7);
    for (const [path, content] of files) {
      let committed = '';
      try {
        committed = readFileSync(join(ROOT, path), 'utf8');
      } catch {
        // missing: fails below with the path
      }
      expect(committed, `${path} is stale or missing: run npm run dashboards`).toBe(content);
    }
    expect([...files.keys()].filter((p) => p.startsWith(`${DASHBOARD_DIR}/`))).toHaveLength(3);
    expect([...files.keys()].filter((p) => p.startsWith(`${GNETCOM_DIR}/`))).toHaveLength(3);
    expect([...files.keys()].filter((p) => p.startsWith('prometheus/rules/'))).toEqual(['prometheus/rules/livemig-study-reference.yml']);
  });

  it.each(Object.entries(dashboards()))('%s: unique uid, datasource variable, every query through it', (_name, dash) => {
    const json = dash as { uid: string; templating: { list: { type: string; name: string; datasource?: { uid: string } }[] }; panels: { id: number; type: string; datasource?: { uid: string }; targets?: { datasource?: { uid: string }; refId?: string }[] }[] };
    expect(json.uid).toMatch(/^livemig-/);
    expect(json.templating.list.find((v) => v.type === 'datasource')?.name).toBe('datasource');
    for (const v of json.templating.list.filter((x) => x.type === 'query')) expect(v.datasource?.uid, v.name).toBe('${datasource}');
    const ids = json.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of json.panels.filter((p) => p.type !== 'row' && p.type !== 'text')) {
      expect(panel.targets?.length, `panel ${panel.id}`).toBeGreaterThan(0);
      for (const t of panel.targets ?? []) {
        expect(t.datasource?.uid, `panel ${panel.id}`).toBe('${datasource}');
        expect(t.refId).toMatch(/^[A-Z]$/);
      }
    }
  });

  it('every metric a query names exists (catalogue, contracts, recording rules)', () => {
    const unknown: string[] = [];
    for (const [name, dash] of Object.entries(dashboards())) {
      for (const q of dashboardQueries(dash)) for (const metric of metricNames(q.expr)) if (!knownMetric(metric)) unknown.push(`${name} ${q.where}: ${metric}`);
    }
    expect(unknown).toEqual([]);
  });

  it('every recording rule the dashboards use is recorded in prometheus/rules', () => {
    for (const name of Object.values(RULES)) expect(recordingRules, name).toContain(name);
    const used = Object.values(dashboards()).flatMap((d) => dashboardQueries(d)).flatMap((q) => metricNames(q.expr)).filter((n) => n.includes(':'));
    expect(used.length).toBeGreaterThan(5);
    for (const name of used) expect(recordingRules, name).toContain(name);
  });

  it('the dashboards cover what issue 7 asks for', () => {
    const all = dashboards();
    const titles = (file: string) => ((all[file] as { panels: { title?: string }[] }).panels ?? []).map((p) => p.title ?? '');
    expect(titles('livemig-study.json').join('\n')).toMatch(/Table 2[\s\S]*Figure 1[\s\S]*Figure 2[\s\S]*Table 3[\s\S]*Table 4/);
    const detail = dashboardQueries(all['livemig-detail.json'] as object).map((q) => q.expr).join('\n');
    for (const metric of ['livemig_migration_phase', 'livemig_ping_rtt_seconds_bucket', 'livemig_interface_transmit_bytes_total', 'livemig_interface_receive_bytes_total', 'livemig_qemu_migration_ram_remaining_bytes', 'livemig_qemu_migration_ram_dirty_pages_per_second']) {
      expect(detail).toContain(metric);
    }
    expect((all['livemig-detail.json'] as { annotations: { list: unknown[] } }).annotations.list.length).toBeGreaterThan(0);
  });
});

describe('what issue 14 asks of the dashboards', () => {
  const all = dashboards();
  type Panel = { title: string; type: string; targets?: { expr: string }[]; fieldConfig?: { overrides?: { matcher: { options: string }; properties: { id: string; value: unknown }[] }[] } };
  const panels = (file: string) => (all[file] as { panels: Panel[] }).panels;
  const exprs = (p: Panel) => (p.targets ?? []).map((t) => t.expr);

  it('the study shows Table 3 and Table 4 apart: each table and figure selects its sweep by stress_step_mib and the study\'s own table', () => {
    const study = panels('livemig-study.json');
    for (const [table, variable] of [['3', 'table3'], ['4', 'table4']]) {
      const mine = study.filter((p) => p.type !== 'row' && p.title.startsWith(`Table ${table}`));
      expect(mine.map((p) => p.type).sort(), `Table ${table}`).toEqual(['table', 'xychart', 'xychart']);
      for (const p of mine) {
        for (const e of exprs(p).filter((x) => !x.includes('origin="study"'))) expect(e, p.title).toContain(`${STEP_LABEL}="$${variable}"`);
      }
      // The figures: measured points and line, the study's points and line.
      for (const p of mine.filter((x) => x.type === 'xychart')) {
        const e = exprs(p).join('\n');
        expect(e).toMatch(new RegExp(`point:\\S+:sweep\\{origin="measured"[\\s\\S]*point:\\S+:fitted\\{origin="measured"[\\s\\S]*point:\\S+:sweep\\{origin="study",study_table="${table}"\\}[\\s\\S]*point:\\S+:fitted\\{origin="study",study_table="${table}"\\}`));
      }
    }
    const variables = (all['livemig-study.json'] as { templating: { list: { name: string; sort?: number }[] } }).templating.list;
    expect(variables.filter((v) => v.name.startsWith('table')).map((v) => [v.name, v.sort])).toEqual([['table3', 3], ['table4', 4]]);
  });

  it('the study has the linear fits and a post-copy outage panel linked to the detail dashboard', () => {
    const study = panels('livemig-study.json');
    const fits = exprs(study.find((p) => p.type === 'table' && p.title.startsWith('Linear fits')) as Panel).join('\n');
    for (const rule of [RULES.sweepPoints, RULES.transferredSlope, RULES.transferredIntercept, RULES.transferredRSquared, RULES.durationSlope, RULES.durationIntercept, RULES.durationRSquared]) expect(fits).toContain(rule);
    const outage = study.find((p) => p.type === 'barchart' && p.title.startsWith('Post-copy outage')) as Panel;
    expect(exprs(outage).join('\n')).toContain(RULES.lastPostcopyOutage);
    expect(JSON.stringify(outage.fieldConfig)).toContain(`/d/${DETAIL_UID}?var-vm=\${__data.fields.vm}`);
  });

  it("the fleet's per-VM tables link each VM to the detail dashboard", () => {
    const linked = panels('livemig-fleet.json').filter((p) =>
      (p.fieldConfig?.overrides ?? []).some((o) => o.matcher.options === 'vm' && o.properties.some((x) => x.id === 'links' && JSON.stringify(x.value).includes(`/d/${DETAIL_UID}?var-vm=\${__data.fields.vm}`))),
    );
    expect(linked.map((p) => p.title)).toEqual(['Migrations running now', 'Post-copy outages now']);
    expect((all['livemig-detail.json'] as { uid: string; templating: { list: { name: string }[] } }).templating.list.map((v) => v.name)).toContain('vm');
  });

  it.each(Object.keys(all))("%s: its description names the rules files its queries need, and that Prometheus must load them", (file) => {
    const description = (all[file] as { description: string }).description;
    const used = dashboardQueries(all[file] as object).flatMap((q) => metricNames(q.expr)).filter((n) => n.includes(':'));
    const needed = RULE_FILES.filter((f) => recordedIn(f).some((r) => used.includes(r)));
    if (needed.length === 0) expect(description).toContain('needs no recording rules');
    else expect(description).toContain('Prometheus must load');
    for (const f of needed) expect(description).toContain(`prometheus/rules/${f}`);
  });
});

describe('grafana.com variant', () => {
  it('asks for a Prometheus datasource on import and selects it in the datasource variable', () => {
    const source = dashboards()['livemig-fleet.json'] as object;
    const variant = gnetcomVariant(source) as { __inputs: { name: string; pluginId: string }[]; __requires: { id: string }[]; id: null; templating: { list: { type: string; current?: { value: string } }[] } };
    expect(variant.__inputs).toEqual([expect.objectContaining({ name: DS_INPUT, type: 'datasource', pluginId: 'prometheus' })]);
    expect(variant.__requires.map((r) => r.id)).toEqual(expect.arrayContaining(['grafana', 'prometheus', 'timeseries', 'table', 'stat', 'state-timeline']));
    expect(variant.templating.list.find((v) => v.type === 'datasource')?.current?.value).toBe(`\${${DS_INPUT}}`);
    expect(variant.id).toBeNull();
    // The provisioning variant is left alone.
    expect((source as { __inputs?: unknown }).__inputs).toBeUndefined();
  });
});

describe('queries and variable substitution', () => {
  it('finds panel, variable and annotation queries', () => {
    const qs = dashboardQueries(dashboards()['livemig-detail.json'] as object);
    expect(qs.filter((q) => q.kind === 'variable').map((q) => q.where)).toEqual(['variable vm', 'variable host']);
    expect(qs.filter((q) => q.kind === 'annotation').map((q) => q.where)).toEqual(['annotation "Migration phases"', 'annotation "Outage causes"']);
    expect(qs.filter((q) => q.kind === 'panel').length).toBeGreaterThan(10);
  });

  it('substitutes $x, ${x} and [[x]], multi values as a regex alternation, longest name first', () => {
    expect(substitute('a{vm="$vm",h=~"${host}"}[$__rate_interval] [[vm]] $vmx', { vm: 'web-1', host: ['a.b', 'c'], __rate_interval: '4s' })).toBe(
      'a{vm="web-1",h=~"(a\\.b|c)"}[4s] web-1 $vmx',
    );
    expect(substitute('$__range $__rate_interval', { __range: '300s', __rate_interval: '4s', __rate: 'x' })).toBe('300s 4s');
  });

  it('reads label_values(match, label) variable queries', () => {
    expect(parseLabelValues('label_values(livemig_qmp_monitor_up{vm="x"}, host)')).toEqual({ match: 'livemig_qmp_monitor_up{vm="x"}', label: 'host' });
    expect(parseLabelValues('query_result(up)')).toBeNull();
  });
});
