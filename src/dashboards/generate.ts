/**
 * Generates grafana/dashboards/*.json (for provisioning) and grafana/gnetcom/*.json
 * (for import on grafana.com, with __inputs) from the dashboard modules, and the study's
 * reference series prometheus/rules/livemig-study-reference.yml from src/lab/report/study.ts:
 * `npm run dashboards`. test/unit/dashboards-generate.test.ts fails when a committed file differs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { detailDashboard } from './detail.js';
import { fleetDashboard } from './fleet.js';
import { gnetcomVariant } from './gnetcom.js';
import { studyDashboard } from './study.js';
import { STUDY_REFERENCE_FILE, studyReferenceRules } from './study-reference.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
export const DASHBOARD_DIR = 'grafana/dashboards';
/** Beside, not under, DASHBOARD_DIR: Grafana's file provisioning reads subdirectories too. */
export const GNETCOM_DIR = 'grafana/gnetcom';

/** Every dashboard by file name, as the JSON Grafana reads (the SDK's objects carry functions). */
export function dashboards(): Record<string, object> {
  const built = { 'livemig-fleet.json': fleetDashboard(), 'livemig-study.json': studyDashboard(), 'livemig-detail.json': detailDashboard() };
  return JSON.parse(JSON.stringify(built)) as Record<string, object>;
}

/** Every generated file's path (relative to the repository) and its content. */
export function renderDashboards(): Map<string, string> {
  const files = new Map<string, string>();
  for (const [name, dash] of Object.entries(dashboards())) {
    files.set(`${DASHBOARD_DIR}/${name}`, render(dash));
    files.set(`${GNETCOM_DIR}/${name}`, render(gnetcomVariant(dash)));
  }
  files.set(STUDY_REFERENCE_FILE, studyReferenceRules());
  return files;
}

function render(value: object): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function main(): void {
  for (const [path, content] of renderDashboards()) {
    const file = join(ROOT, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
    process.stdout.write(`wrote ${path}\n`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
