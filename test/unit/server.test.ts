import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActiveMigration, MigrationRecord } from '../../src/records/record.js';
import { parseTime, type MigrationFilter } from '../../src/server/app.js';
import { parseListenAddress } from '../../src/server/listen-address.js';
import { fig, recordEnded } from '../helpers/records.js';
import { startTestApp } from '../helpers/test-app.js';

function record(vm: string, startedAt: number, endedAt: number): MigrationRecord {
  return recordEnded(vm, startedAt, endedAt, { labels: { flavor: 's' }, mode: 'hybrid', bytes: { transferred: fig(1e6), precopy: null, postcopy: null, downtime: null, disk: null } });
}

const RECORDS = [record('<script>', 1_000_000, 1_005_000), record('vm-b', 2_000_000, 2_010_000)];
const RUNNING = [{ id: 'vm-c@1', vm: 'vm-c', phase: 'precopy', source: { host: 'a', monitor: 'm' }, destination: null, startedAtMs: 3_000_000 } as ActiveMigration];
let lastFilter: MigrationFilter | null = null;
let base: string;

let close: () => Promise<void>;

beforeAll(async () => {
  ({ base, close } = await startTestApp({
    renderMetrics: async () => 'x_total 1\n',
    listMigrations: (f) => {
      lastFilter = f;
      return RECORDS.filter((r) => !f.vm || r.vm === f.vm);
    },
    getMigration: (id) => RECORDS.find((r) => r.id === id),
    activeMigrations: () => RUNNING,
    describeSources: () => ['QMP: 2 monitors'],
  }));
});
afterAll(() => close());

describe('HTTP server', () => {
  it('serves /metrics with the exposition content type', async () => {
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).toContain('version=0.0.4');
    expect(await res.text()).toBe('x_total 1\n');
  });

  it('lists migrations with filters, and the running ones', async () => {
    const res = await fetch(`${base}/api/v1/migrations?vm=vm-b&from=1970-01-01T00:16:40Z&to=5000&limit=5`);
    const body = (await res.json()) as { data: MigrationRecord[]; running: ActiveMigration[] };
    expect(body.data.map((r) => r.vm)).toEqual(['vm-b']);
    expect(body.running).toEqual([]);
    expect(lastFilter).toEqual({ vm: 'vm-b', from: 1_000_000, to: 5_000_000, limit: 5 });
    const all = (await (await fetch(`${base}/api/v1/migrations`)).json()) as { running: ActiveMigration[] };
    expect(all.running.map((m) => m.vm)).toEqual(['vm-c']);
  });

  it.each([
    ['from=yesterday', 'query parameter from: "yesterday" is not a time'],
    ['limit=0', 'query parameter limit: "0" must be an integer from 1 to 10000'],
    ['limit=abc', 'query parameter limit'],
    ['vm=', 'query parameter vm: must be one non-empty VM name'],
    ['vm=a&vm=b', 'query parameter vm'],
  ])('refuses %s with 400 naming the parameter', async (query, message) => {
    const res = await fetch(`${base}/api/v1/migrations?${query}`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toContain(message);
  });

  it('gets one migration by id, 404 for an unknown one', async () => {
    const ok = await fetch(`${base}/api/v1/migrations/${encodeURIComponent('vm-b@2000000')}`);
    expect(((await ok.json()) as { data: MigrationRecord }).data.vm).toBe('vm-b');
    const missing = await fetch(`${base}/api/v1/migrations/nope`);
    expect(missing.status).toBe(404);
  });

  it('answers a path that is not valid percent-encoding with JSON, without a stack trace, whatever NODE_ENV', async () => {
    for (const path of ['/api/v1/migrations/%E0%A4%A', '/api/v1/migrations/%', '/api/v1/migrations/%zz']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      const text = await res.text();
      expect(JSON.parse(text)).toEqual({ status: 'error', error: 'bad request: the URL is not valid percent-encoding' });
      expect(text).not.toMatch(/URIError|node_modules|at /);
    }
  });

  it('answers health and readiness', async () => {
    expect((await fetch(`${base}/-/healthy`)).status).toBe(200);
    expect((await fetch(`${base}/-/ready`)).status).toBe(200);
  });

  it('has a landing page with links, running and recent migrations, escaped', async () => {
    const html = await (await fetch(`${base}/`)).text();
    expect(html).toContain('href="metrics"');
    expect(html).toContain('href="api/v1/migrations"');
    expect(html).toContain('vm-c');
    expect(html).toContain('&lt;script&gt;');
    expect(html).not.toContain('<script>');
  });
});

describe('listen address and times', () => {
  it.each([
    [':10027', { host: undefined, port: 10027 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['[::1]:9000', { host: '::1', port: 9000 }],
  ])('parses %s', (text, expected) => {
    expect(parseListenAddress(text)).toEqual(expected);
  });

  it.each(['10027', 'host:', ':99999', 'a:b:c'])('refuses %s naming the flag', (text) => {
    expect(() => parseListenAddress(text)).toThrow(/flag --web.listen-address: .* is not \[host\]:port/);
  });

  it('parses RFC 3339 and Unix seconds', () => {
    expect(parseTime('1.5')).toBe(1500);
    expect(parseTime('2026-01-01T00:00:00Z')).toBe(Date.UTC(2026, 0, 1));
    expect(parseTime('Monday')).toBeNull();
  });
});
