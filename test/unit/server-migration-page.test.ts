import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActiveMigration, MigrationRecord } from '../../src/records/record.js';
import { fig, recordEnded } from '../helpers/records.js';
import { startTestApp } from '../helpers/test-app.js';

const EVIL = '<script>alert(1)</script>';
const RECORD: MigrationRecord = recordEnded(EVIL, 1_000_000, 1_003_000, {
  labels: { flavor: 's', owner: '"><img src=x>' },
  mode: 'hybrid',
  postcopyAt: fig(1_001_000),
  bytes: { transferred: fig(3e8), precopy: fig(2e8), postcopy: fig(1e8), downtime: null, disk: null },
});
const ACTIVE: ActiveMigration = { id: `${EVIL}@2000000`, vm: EVIL, labels: { flavor: 's' }, phase: 'precopy', status: 'active', source: { host: 'a', monitor: 'm' }, destination: null, startedAtMs: 2_000_000, postcopyAtMs: null, ram: null, ramAtMs: null, resumedAfterRestart: false } ;
let running: ActiveMigration[] = [ACTIVE];
let base: string;

let close: () => Promise<void>;

beforeAll(async () => {
  ({ base, close } = await startTestApp({
    metricsContentType: 'text/plain',
    listMigrations: () => [RECORD],
    getMigration: (id) => (id === RECORD.id ? RECORD : undefined),
    activeMigrations: () => running,
  }));
});
afterAll(() => close());

const get = async (path: string) => {
  const res = await fetch(`${base}${path}`);
  return { status: res.status, type: res.headers.get('content-type') ?? '', html: await res.text() };
};

describe('/migrations/{id} and the landing page', () => {
  it('draws a record\'s timeline on the server, everything from the record escaped, no script', async () => {
    const page = await get(`/migrations/${encodeURIComponent(RECORD.id)}`);
    expect(page.status).toBe(200);
    expect(page.type).toMatch(/^text\/html/);
    expect(page.html).toContain('<figure id="timeline" class="chart timeline"');
    expect(page.html.match(/<svg /g)).toHaveLength(1);
    expect(page.html).toContain('throughput, source → destination');
    expect(page.html).toContain('No ping figures in this record');
    expect(page.html).toContain('<h1>Migration of &lt;script&gt;alert(1)&lt;/script&gt;</h1>');
    expect(page.html).toContain('owner=&quot;&gt;&lt;img src=x&gt;');
    expect(page.html).not.toMatch(/<script|<img/);
    expect(page.html).toContain(`href="../api/v1/migrations/${encodeURIComponent(RECORD.id)}"`);
    expect(page.html).not.toContain('http-equiv="refresh"');
  });

  it('a migration under way gets a page that reloads until its record is written; an unknown id a 404 page', async () => {
    const page = await get(`/migrations/${encodeURIComponent(ACTIVE.id)}`);
    expect(page.status).toBe(200);
    expect(page.html).toContain('<meta http-equiv="refresh" content="2">');
    expect(page.html).toContain('under way');
    expect(page.html).not.toContain('<script');
    const missing = await get(`/migrations/${encodeURIComponent('<b>nope')}`);
    expect(missing.status).toBe(404);
    expect(missing.type).toMatch(/^text\/html/);
    expect(missing.html).toContain('No migration &lt;b&gt;nope');
  });

  it('the landing page links records and running migrations to their pages, and reloads only while one runs', async () => {
    running = [ACTIVE];
    const busy = await get('/');
    expect(busy.html).toContain(`<a href="migrations/${encodeURIComponent(RECORD.id)}">&lt;script&gt;`);
    expect(busy.html).toContain(`<a href="migrations/${encodeURIComponent(ACTIVE.id)}">`);
    expect(busy.html).toContain('<meta http-equiv="refresh" content="2">');
    running = [];
    const idle = await get('/');
    expect(idle.html).not.toContain('http-equiv="refresh"');
    expect(idle.html).not.toContain('<script>');
  });
});
