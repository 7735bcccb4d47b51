/**
 * The study's published figures, one source: the tables of test/fixtures/study (a copy of the
 * shared reference) equal src/lab/report/study.ts, and the generated reference rules
 * (prometheus/rules/livemig-study-reference.yml) hold exactly those points, in bytes and seconds.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT } from '../../src/dashboards/generate.js';
import { RULES } from '../../src/dashboards/rules.js';
import { STUDY_MB, STUDY_REFERENCE_FILE, STUDY_TABLES, studyReferenceRules } from '../../src/dashboards/study-reference.js';
import { STUDY_FLAVORS, STUDY_TABLE3, STUDY_TABLE4 } from '../../src/lab/report/study.js';

const figures = readFileSync(join(ROOT, 'test/fixtures/study/hybrid-migration-figures.md'), 'utf8');

/** The rows of the markdown table under `## <heading>`: first cell, then the numbers. */
function table(heading: string): Map<string, number[]> {
  const start = figures.indexOf(`## ${heading}`);
  if (start < 0) throw new Error(`no "## ${heading}" in the figures`);
  const rows = new Map<string, number[]>();
  for (const line of figures.slice(start).split('\n').slice(1)) {
    if (line.startsWith('## ')) break;
    if (!line.startsWith('|') || /^\|[-| ]+\|$/.test(line)) continue;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    rows.set(cells[0] as string, cells.slice(1).map(Number));
  }
  return rows;
}

function stressTable(heading: string): { stressedMB: number; timeS: number; transferredMB: number }[] {
  const rows = table(heading);
  const x = rows.get('stressed memory (MB)') as number[];
  const time = rows.get('migration time (s)') as number[];
  const data = rows.get('data transferred (MB)') as number[];
  return x.map((stressedMB, i) => ({ stressedMB, timeS: time[i] as number, transferredMB: data[i] as number }));
}

interface Rule {
  record: string;
  labels: Record<string, string>;
  expr: string;
}
const committed = (parse(readFileSync(join(ROOT, STUDY_REFERENCE_FILE), 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

describe('the study reference', () => {
  it('src/lab/report/study.ts holds the published Tables 2, 3 and 4', () => {
    const t3 = stressTable('Table 3: x-large VM, stressed memory in 256 MB steps');
    const t4 = stressTable('Table 4: x-large VM, stressed memory in 1024 MB steps');
    expect(t3).toHaveLength(8);
    expect(t4).toHaveLength(8);
    expect(STUDY_TABLE3).toEqual(t3);
    expect(STUDY_TABLE4).toEqual(t4);
    const t2 = table('Table 2: unloaded VMs, hybrid migration');
    expect(STUDY_FLAVORS.map((f) => f.timeS)).toEqual(t2.get('migration time (s)'));
    expect(STUDY_FLAVORS.map((f) => f.downtimeS)).toEqual(t2.get('downtime (s)'));
    expect(STUDY_FLAVORS.map((f) => f.transferredMB)).toEqual(t2.get('data transferred (MB)'));
  });

  it('the reference rules hold each published point of Tables 3 and 4, in bytes and seconds, and nothing else', () => {
    const expected: Rule[] = [];
    for (const [table, step, heading] of [['3', 256, 'Table 3: x-large VM, stressed memory in 256 MB steps'], ['4', 1024, 'Table 4: x-large VM, stressed memory in 1024 MB steps']] as const) {
      for (const p of stressTable(heading)) {
        const labels = { origin: 'study', study_table: table, flavor: 'xl', stress_step_mib: String(step), stressed_mib: String(p.stressedMB) };
        expected.push(
          { record: RULES.stressedPoint, labels, expr: `vector(${p.stressedMB * 1048576})` },
          { record: RULES.durationPoint, labels, expr: `vector(${p.timeS})` },
          { record: RULES.transferredPoint, labels, expr: `vector(${p.transferredMB * 1048576})` },
        );
      }
    }
    expect(committed).toEqual(expected);
    expect(STUDY_MB).toBe(1048576);
    expect(STUDY_TABLES.map((t) => [t.table, t.stepMiB])).toEqual([['3', 256], ['4', 1024]]);
  });

  it('the committed file is what the generator makes (npm run dashboards)', () => {
    expect(readFileSync(join(ROOT, STUDY_REFERENCE_FILE), 'utf8')).toBe(studyReferenceRules());
  });
});
