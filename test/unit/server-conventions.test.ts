/** /metrics gzip, POST /-/reload and the lab banner of the landing page (issue 14, part 4). */
import { request } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReloadOutcome, ServerDeps } from '../../src/server/app.js';
import { startTestApp } from '../helpers/test-app.js';

const METRICS = `${Array.from({ length: 200 }, (_, i) => `livemig_x{vm="vm-${i}"} ${i}`).join('\n')}\n`;

let close: (() => Promise<void>) | null = null;

async function start(extra: Partial<ServerDeps> = {}): Promise<string> {
  const app = await startTestApp({ renderMetrics: async () => METRICS, ...extra });
  close = app.close;
  return app.base;
}
afterEach(async () => {
  await close?.();
  close = null;
});

/** node:http, which (unlike fetch) neither asks for nor undoes an encoding. */
function rawGet(url: string, headers: Record<string, string>): Promise<{ headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
    })
      .on('error', reject)
      .end();
  });
}

describe('/metrics encoding', () => {
  it('is gzip when the scraper accepts it, plain when it does not say or refuses it', async () => {
    const base = await start();
    const zipped = await rawGet(`${base}/metrics`, { 'Accept-Encoding': 'gzip' });
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.headers.vary).toContain('Accept-Encoding');
    expect(zipped.body.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(gunzipSync(zipped.body).toString()).toBe(METRICS);
    expect(zipped.body.length).toBeLessThan(METRICS.length / 3);
    for (const headers of [{} as Record<string, string>, { 'Accept-Encoding': 'identity' }, { 'Accept-Encoding': 'gzip;q=0, identity' }, { 'Accept-Encoding': 'br' }]) {
      const plain = await rawGet(`${base}/metrics`, headers);
      expect(plain.headers['content-encoding'], JSON.stringify(headers)).toBeUndefined();
      expect(plain.body.toString()).toBe(METRICS);
    }
  });
});

describe('POST /-/reload', () => {
  it('answers the reload with its outcome: 200 applied, 500 and every problem when not', async () => {
    const outcomes: ReloadOutcome[] = [
      { ok: true, file: '/etc/l.yml', vms: 3, warnings: ['w'], notApplied: ['hosts'] },
      { ok: false, status: 500, errors: ['config file /etc/l.yml:2:18: a', 'config file /etc/l.yml:3:1: b'] },
    ];
    let calls = 0;
    const base = await start({ reload: async () => outcomes[calls++] as ReloadOutcome });
    const good = await fetch(`${base}/-/reload`, { method: 'POST' });
    expect(good.status).toBe(200);
    expect(await good.json()).toEqual({ status: 'success', data: { file: '/etc/l.yml', vms: 3, warnings: ['w'], notApplied: ['hosts'] } });
    const bad = await fetch(`${base}/-/reload`, { method: 'PUT' });
    expect(bad.status).toBe(500);
    expect(await bad.json()).toEqual({ status: 'error', error: 'config file /etc/l.yml:2:18: a\nconfig file /etc/l.yml:3:1: b', errors: ['config file /etc/l.yml:2:18: a', 'config file /etc/l.yml:3:1: b'] });
    expect(calls).toBe(2);
  });

  it('refuses GET with 405 and says what reloads', async () => {
    let calls = 0;
    const base = await start({ reload: async () => ((calls++, { ok: true, file: 'f', vms: 0, warnings: [], notApplied: [] })) });
    const res = await fetch(`${base}/-/reload`);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST, PUT');
    expect(calls).toBe(0);
  });

  it('is 400 where nothing can be reloaded', async () => {
    const base = await start();
    const res = await fetch(`${base}/-/reload`, { method: 'POST' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { status: string }).status).toBe('error');
  });
});

describe('landing page in a lab run', () => {
  it.each([
    [{ engine: 'sim', simulated: true }, ['<strong>SIMULATED</strong> lab run (engine sim)', '<title>livemig-exporter (SIMULATED)</title>']],
    [{ engine: 'qemu', simulated: false }, ['Lab run (engine qemu)', '<title>livemig-exporter</title>']],
  ])('%j', async (lab, texts) => {
    const base = await start({ lab });
    const html = await (await fetch(`${base}/`)).text();
    for (const text of texts) expect(html).toContain(text);
    if (!lab.simulated) expect(html).not.toContain('SIMULATED');
  });

  it('has no banner outside the lab', async () => {
    const html = await (await fetch(`${await start()}/`)).text();
    expect(html).not.toMatch(/SIMULATED|Lab run/);
  });
});
