/**
 * The lab's HTML report and the exporter's pages in a real browser: Debian's chromium, driven by
 * puppeteer-core. Every figure must render (an SVG with marks in it, as many as the page has
 * figures), with no console error, no script error and no failed request; a screenshot of each
 * page goes to test-artifacts/ (its path is printed). Reports come from real SIMULATED lab runs
 * through the CLI; the pages from a lab that lingers (`--linger`) with its exporter serving.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingTools, requireEnvironment } from '../helpers/env.js';
import { LabRun } from '../helpers/lab-cli.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;
const run = requireEnvironment(missingTools(CHROMIUM));

interface FigureSeen {
  id: string;
  svgs: number;
  /** Children of the SVG's data-mark groups (vega's role-mark), axes and titles not counted. */
  marks: number;
  width: number;
  height: number;
}

interface PageSeen {
  figures: FigureSeen[];
  problems: string[];
  screenshot: string;
}

/** Opens `url`, collects console errors, script errors and failed requests, reads every figure, takes a screenshot. */
async function look(browser: Browser, url: string, name: string, check?: (page: Page) => Promise<void>): Promise<PageSeen> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${String(err)}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  try {
    await page.setViewport({ width: 1200, height: 900 });
    const response = await page.goto(url, { waitUntil: 'load' });
    expect(response?.ok() ?? url.startsWith('file:')).toBe(true);
    const figures = await page.$$eval('figure.chart', (nodes) =>
      nodes.map((f) => {
        const svg = f.querySelector('svg');
        const box = svg?.getBoundingClientRect();
        return {
          id: f.id,
          svgs: f.querySelectorAll('svg').length,
          marks: svg ? [...svg.querySelectorAll('g.role-mark')].reduce((n, g) => n + g.childElementCount, 0) : 0,
          width: box?.width ?? 0,
          height: box?.height ?? 0,
        };
      }),
    );
    await check?.(page);
    mkdirSync(ARTIFACTS, { recursive: true });
    const screenshot = join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path: screenshot as `${string}.png`, fullPage: true });
    console.log(`screenshot: ${screenshot}`);
    return { figures, problems, screenshot };
  } finally {
    await page.close();
  }
}

function expectRendered(seen: PageSeen, expectedFigures: number): void {
  expect(seen.problems).toEqual([]);
  expect(seen.figures).toHaveLength(expectedFigures);
  for (const f of seen.figures) {
    expect(f, f.id).toMatchObject({ svgs: 1 });
    expect(f.marks, `${f.id}: marks`).toBeGreaterThan(0);
    expect(f.width, `${f.id}: width`).toBeGreaterThan(100);
    expect(f.height, `${f.id}: height`).toBeGreaterThan(100);
  }
}

/** The HTML report a finished lab run says it wrote. */
function reportPath(lab: LabRun): string {
  const match = /lab: wrote (\S+\.html)/.exec(lab.stdout);
  if (!match) throw new Error(`no HTML report in the output:\n${lab.stdout}`);
  return match[1] as string;
}

describe.runIf(run)('the lab report and the exporter pages in chromium', () => {
  let browser: Browser;
  let out = '';
  const labs: LabRun[] = [];
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'lme-report-browser-'));
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--headless=new'] });
  });
  afterAll(async () => {
    await browser?.close();
    for (const lab of labs) await lab.stop();
    if (out) await rm(out, { recursive: true, force: true });
  });

  it('stress-sweep report: Figures 3-6 and a timeline per step, the study\'s points among the marks', async () => {
    const lab = LabRun.start(['--scenario', 'stress-sweep', '--engine', 'sim', '--steps', '64,128', '--out', out]);
    labs.push(lab);
    await lab.finished();
    const file = reportPath(lab);
    expect(readFileSync(file, 'utf8')).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    const seen = await look(browser, pathToFileURL(file).href, 'report-stress-sweep', async (page) => {
      const ids = await page.$$eval('figure.chart', (nodes) => nodes.map((f) => f.id));
      expect(ids).toEqual(['figure-3', 'figure-4', 'figure-5', 'figure-6', 'timeline-1', 'timeline-2']);
      // The study's points are drawn: vega labels each symbol with its values.
      const labels = await page.$$eval('#figure-3 g.mark-symbol path', (paths) => paths.map((p) => p.getAttribute('aria-label') ?? ''));
      expect(labels).toContain('stressed memory (MB): 256; migration time (s): 16.4');
      expect(labels).toContain('stressed memory (MB): 2048; migration time (s): 48.7');
      expect(labels.filter((l) => l.startsWith('stressed memory (MiB)'))).toHaveLength(2);
      expect(await page.$eval('body', (b) => b.textContent ?? '')).toContain('SIMULATED');
    });
    expectRendered(seen, 6);
  }, 45_000);

  it('flavors report: Figures 1-2 and four timelines', async () => {
    const lab = LabRun.start(['--scenario', 'flavors', '--engine', 'sim', '--out', out]);
    labs.push(lab);
    await lab.finished();
    const seen = await look(browser, pathToFileURL(reportPath(lab)).href, 'report-flavors', async (page) => {
      const labels = await page.$$eval('#figure-1 g.mark-rect path', (paths) => paths.map((p) => p.getAttribute('aria-label') ?? ''));
      expect(labels).toContain('flavor: xl; migration time (s): 11.3; series: study (nova logs)');
      expect(labels.filter((l) => l.endsWith('series: QMP total-time'))).toHaveLength(4);
    });
    expectRendered(seen, 6);
    expect(seen.figures.map((f) => f.id).slice(0, 2)).toEqual(['figure-1', 'figure-2']);
  }, 45_000);

  it('landing page reloads while a migration runs; it links each record to a timeline page with ping panels', async () => {
    const lab = LabRun.start(['--scenario', 'outage', '--engine', 'sim', '--linger', '60', '--out', out]);
    labs.push(lab);
    const url = await lab.url();
    // While the migration runs the landing page reloads itself; once none runs it does not.
    await expect.poll(async () => (await (await fetch(`${url}/`)).text()).includes('<meta http-equiv="refresh"'), { timeout: 30_000, interval: 100 }).toBe(true);
    await lab.lingering(60_000);
    const landingHtml = await (await fetch(`${url}/`)).text();
    expect(landingHtml).not.toContain('http-equiv="refresh"');

    const landing = await look(browser, `${url}/`, 'landing', async (page) => {
      const links = await page.$$eval('a[href^="migrations/"]', (as) => as.map((a) => a.getAttribute('href') ?? ''));
      expect(links).toHaveLength(1);
    });
    expectRendered(landing, 0);
    const [record] = await lab.migrations();
    if (!record) throw new Error('the lab has no record');
    const timeline = await look(browser, `${url}/migrations/${encodeURIComponent(record.id)}`, 'migration-timeline', async (page) => {
      const text = await page.$eval('#timeline svg', (svg) => svg.textContent ?? '');
      for (const panel of ['ping RTT per phase', 'ping loss per phase', 'throughput, source → destination']) expect(text).toContain(panel);
      // The destination's counters may have no read before the first migration's start (the
      // SIMULATED hosts' counter files are new): then the page says there is no reverse series.
      const said = await page.$eval('#timeline', (f) => f.textContent ?? '');
      expect(text.includes('throughput, destination → source') || said.includes('no destination → source throughput')).toBe(true);
      expect(await page.$eval('h1', (h) => h.textContent)).toBe(`Migration of ${record.vm}`);
    });
    expectRendered(timeline, 1);
    await lab.stop();
  }, 90_000);
});
