/**
 * The alert rules' annotations and their runbook, and that the promtool unit tests
 * (prometheus/tests, run by test/integration/prometheus-rules.test.ts) test every alert both
 * firing and not firing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT } from '../../src/dashboards/generate.js';

interface AlertRule {
  alert: string;
  expr: string;
  labels: { severity: string };
  annotations: { summary: string; description: string; runbook_url: string };
}

const alerts = (parse(readFileSync(join(ROOT, 'prometheus/rules/livemig-alerts.yml'), 'utf8')) as { groups: { rules: AlertRule[] }[] }).groups.flatMap((g) => g.rules);
const runbook = readFileSync(join(ROOT, 'docs/runbook.md'), 'utf8');
const tests = (parse(readFileSync(join(ROOT, 'prometheus/tests/livemig-alerts.test.yml'), 'utf8')) as { tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[] }).tests.flatMap(
  (t) => t.alert_rule_test ?? [],
);

/** GitHub's anchor of a markdown heading. */
const anchor = (heading: string) => heading.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-');
const anchors = [...runbook.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1] as string));

describe('alert rules', () => {
  it('has the alerts issue 7 asks for', () => {
    expect(alerts.map((a) => a.alert)).toEqual(
      expect.arrayContaining(['LivemigPostcopyOutage', 'LivemigPostcopyPaused', 'LivemigMigrationFailed', 'LivemigMigrationNotConverging', 'LivemigSourceDown']),
    );
    expect(alerts.find((a) => a.alert === 'LivemigPostcopyPaused')?.labels.severity).toBe('critical');
  });

  it.each(alerts.map((a) => [a.alert, a] as const))('%s: summary, description with the VM and hosts, runbook section', (_name, rule) => {
    expect(rule.annotations.summary).toMatch(/\S/);
    const perVm = /\bvm\b/.test(rule.expr);
    if (perVm) {
      expect(rule.annotations.description).toContain('{{ $labels.vm }}');
      expect(rule.annotations.description).toContain('{{ $labels.source_host }}');
      expect(rule.annotations.description).toContain('{{ $labels.destination_host }}');
    } else {
      // Exporter and source alerts have no VM: they name the host or the exporter instead.
      expect(rule.annotations.description).toMatch(/\{\{ \$labels\.(host|instance) \}\}/);
    }
    const [file, section] = rule.annotations.runbook_url.split('#');
    expect(file).toBe('docs/runbook.md');
    expect(section).toBe(rule.alert.toLowerCase());
    expect(anchors).toContain(section);
  });

  it.each(alerts.map((a) => a.alert))('%s is unit-tested firing and not firing', (name) => {
    const cases = tests.filter((t) => t.alertname === name);
    expect(cases.some((c) => c.exp_alerts.length > 0), 'a firing case').toBe(true);
    expect(cases.some((c) => c.exp_alerts.length === 0), 'a not-firing case').toBe(true);
  });
});
