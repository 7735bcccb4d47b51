/**
 * The shipped Prometheus configs, rules and Alertmanager config with the real tools: promtool
 * check config (prometheus.yml and the fleet examples), promtool check rules, promtool test rules
 * (every alert firing and not firing, the recording rules), amtool check-config. And that the
 * rule tests can fail: a copy of the rules with a threshold changed fails them.
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingTools, requireEnvironment } from '../helpers/env.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const run = promisify(execFile);

async function tool(cmd: string, args: string[], cwd = ROOT): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(cmd, args, { cwd });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe.runIf(requireEnvironment(missingTools('promtool', 'amtool')))('Prometheus and Alertmanager configs (real promtool, amtool)', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lme-rules-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it.each(['prometheus/prometheus.yml', 'prometheus/examples/openstack.yml', 'prometheus/examples/remote-write.yml'])('promtool check config %s', async (file) => {
    const { code, output } = await tool('promtool', ['check', 'config', file]);
    expect(output).toContain('is valid prometheus config file syntax');
    expect(code, output).toBe(0);
  });

  it('promtool check rules on every rules file', async () => {
    const { code, output } = await tool('promtool', ['check', 'rules', 'prometheus/rules/livemig-alerts.yml', 'prometheus/rules/livemig-recording.yml', 'prometheus/rules/livemig-study-reference.yml']);
    expect(code, output).toBe(0);
    // The study reference: Tables 3 and 4, 8 steps each, 3 series per step.
    expect(output).toMatch(/SUCCESS: 6 rules found[\s\S]*SUCCESS: 30 rules found[\s\S]*SUCCESS: 48 rules found/);
  });

  it.each(['prometheus/tests/livemig-alerts.test.yml', 'prometheus/tests/livemig-recording.test.yml', 'prometheus/tests/livemig-study.test.yml'])('promtool test rules %s', async (file) => {
    const { code, output } = await tool('promtool', ['test', 'rules', file]);
    expect(code, output).toBe(0);
    expect(output).toContain('SUCCESS');
  });

  it('the alert tests fail on rules with a different post-copy outage threshold', async () => {
    await cp(join(ROOT, 'prometheus/tests'), join(dir, 'tests'), { recursive: true });
    await cp(join(ROOT, 'prometheus/rules'), join(dir, 'rules'), { recursive: true });
    const rules = join(dir, 'rules/livemig-alerts.yml');
    const original = await readFile(rules, 'utf8');
    const changed = original.replace(/\n {10}> 10\n/, '\n          > 20\n');
    expect(changed).not.toBe(original);
    await writeFile(rules, changed);
    const { code, output } = await tool('promtool', ['test', 'rules', 'tests/livemig-alerts.test.yml'], dir);
    expect(code).toBe(1);
    expect(output).toMatch(/FAILED[\s\S]*LivemigPostcopyOutage/);
  });

  it("the fit tests fail on a slope rule with n Sxy - Sx Sy turned round", async () => {
    await cp(join(ROOT, 'prometheus/tests'), join(dir, 'fit/tests'), { recursive: true });
    await cp(join(ROOT, 'prometheus/rules'), join(dir, 'fit/rules'), { recursive: true });
    const rules = join(dir, 'fit/rules/livemig-recording.yml');
    const original = await readFile(rules, 'utf8');
    const changed = original.replace(
      '(sweep:livemig_stressed_bytes:count * sweep:livemig_migration_transferred_bytes:sum_products - sweep:livemig_stressed_bytes:sum * sweep:livemig_migration_transferred_bytes:sum)\n          /',
      '(sweep:livemig_stressed_bytes:sum * sweep:livemig_migration_transferred_bytes:sum - sweep:livemig_stressed_bytes:count * sweep:livemig_migration_transferred_bytes:sum_products)\n          /',
    );
    expect(changed).not.toBe(original);
    await writeFile(rules, changed);
    const { code, output } = await tool('promtool', ['test', 'rules', 'tests/livemig-study.test.yml'], join(dir, 'fit'));
    expect(code).toBe(1);
    expect(output).toMatch(/FAILED[\s\S]*sweep:livemig_migration_transferred_bytes:slope/);
  });

  it('amtool check-config alertmanager/alertmanager.yml', async () => {
    const { code, output } = await tool('amtool', ['check-config', 'alertmanager/alertmanager.yml']);
    expect(code, output).toBe(0);
    expect(output).toContain('SUCCESS');
    expect(output).toContain('2 receivers');
  });
});
