/**
 * --web.config.file against the exporter's CLI: real TLS with certificates made by the openssl
 * CLI, client certificates, basic auth, response headers, and the file re-read while it runs.
 * Requests are Node's https requests on a new connection each (agent: false).
 */
import { execFileSync } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SecureVersion } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { missingTools, requireCapability, requireEnvironment } from '../helpers/env.js';
import { ExporterProcess, writeConfig } from '../helpers/exporter-process.js';
import { PROMETHEUS_BIN, PrometheusProcess } from '../helpers/prometheus.js';
import { makeTestPki } from '../helpers/pki.js';

const RUN = requireEnvironment(missingTools('openssl'));
const ROOT = new URL('../..', import.meta.url).pathname;
const PASSWORD = 'correct-horse-battery-staple';
const BOB_PASSWORD = 'bobs-own-words';
/** The command README.md gives for making a hash, run as written there (from the installation). */
const HASH_COMMAND = `console.log(require("bcryptjs").hashSync(process.argv[1], 10))`;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

interface Client {
  auth?: string;
  cert?: Buffer;
  key?: Buffer;
  maxVersion?: SecureVersion;
}

let dir: string;
let ca: Buffer;


function get(url: string, path: string, client: Client = {}): Promise<Reply> {
  const options: RequestOptions = {
    agent: false,
    ca,
    ...(client.auth ? { auth: client.auth } : {}),
    ...(client.cert ? { cert: client.cert, key: client.key } : {}),
    ...(client.maxVersion ? { maxVersion: client.maxVersion } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url + path, options, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

async function writeWeb(name: string, web: unknown): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, stringify(web));
  return file;
}

async function startWith(webFile: string): Promise<ExporterProcess> {
  const config = await writeConfig(dir, { state_file: null, libvirt: { discover: 'off' } });
  return ExporterProcess.start(config, ['--web.config.file', webFile]);
}

describe.runIf(RUN)('--web.config.file', () => {
  const running: ExporterProcess[] = [];
  let client: { cert: Buffer; key: Buffer };
  let stranger: { cert: Buffer; key: Buffer };
  let aliceHash: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lme-web-config-'));
    makeTestPki(dir);
    ca = await readFile(join(dir, 'ca.pem'));
    client = { cert: await readFile(join(dir, 'client.pem')), key: await readFile(join(dir, 'client.key')) };
    stranger = { cert: await readFile(join(dir, 'stranger.pem')), key: await readFile(join(dir, 'stranger.key')) };
    aliceHash = execFileSync(process.execPath, ['-e', HASH_COMMAND, PASSWORD], { cwd: ROOT, encoding: 'utf8' }).trim();
  }, 60_000);
  afterAll(async () => {
    for (const exporter of running) await exporter.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('TLS, basic auth and headers', () => {
    let exporter: ExporterProcess;
    let webFile: string;
    const web = () => ({
      tls_server_config: { cert_file: 'server.pem', key_file: 'server.key' },
      http_server_config: { headers: { 'X-Livemig-Test': 'one', 'X-Frame-Options': 'deny' } },
      basic_auth_users: { alice: aliceHash },
    });
    const alice = `alice:${PASSWORD}`;

    beforeAll(async () => {
      webFile = await writeWeb('web.yml', web());
      exporter = await startWith(webFile);
      running.push(exporter);
    }, 30_000);

    it('listens on https:// and logs that URL', () => {
      expect(exporter.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    });

    it('is scraped over https with basic auth by curl and by a real Prometheus', async (ctx) => {
      requireCapability(ctx, missingTools('curl', PROMETHEUS_BIN));
      const curl = (...args: string[]) => execFileSync('curl', ['-sS', '--cacert', join(dir, 'ca.pem'), '-o', '/dev/null', '-w', '%{http_code}', ...args], { encoding: 'utf8' });
      expect(curl('-u', alice, `${exporter.url}/metrics`)).toBe('200');
      expect(curl(`${exporter.url}/metrics`)).toBe('401');
      const prom = await PrometheusProcess.start({
        global: { scrape_interval: '1s' },
        scrape_configs: [
          {
            job_name: 'livemig',
            scheme: 'https',
            tls_config: { ca_file: join(dir, 'ca.pem') },
            basic_auth: { username: 'alice', password: PASSWORD },
            static_configs: [{ targets: [new URL(exporter.url).host] }],
          },
        ],
      });
      try {
        await expect.poll(async () => (await prom.query('up{job="livemig"}', Date.now() / 1000)).map((x) => x.value?.[1]), { timeout: 20_000, interval: 500 }).toEqual(['1']);
        expect(await prom.query('livemig_build_info', Date.now() / 1000)).toHaveLength(1);
      } finally {
        await prom.stop();
      }
      expect(exporter.stderr).not.toContain(PASSWORD);
    }, 60_000);

    it('serves /metrics, /api/v1/migrations and / over TLS to the right credentials, with the headers', async () => {
      const metrics = await get(exporter.url, '/metrics', { auth: alice });
      expect(metrics.status).toBe(200);
      expect(metrics.body).toContain('livemig_build_info');
      const api = await get(exporter.url, '/api/v1/migrations', { auth: alice });
      expect(api.status).toBe(200);
      expect(JSON.parse(api.body)).toMatchObject({ status: 'success', data: [] });
      const landing = await get(exporter.url, '/', { auth: alice });
      expect(landing.status).toBe(200);
      expect(landing.body).toContain('<h1>livemig-exporter</h1>');
      for (const reply of [metrics, api, landing]) {
        expect(reply.headers['x-livemig-test']).toBe('one');
        expect(reply.headers['x-frame-options']).toBe('deny');
      }
    });

    it('refuses plain HTTP on the same port', async () => {
      const plain = exporter.url.replace('https://', 'http://');
      const outcome = await new Promise<string>((resolve) => {
        const req = httpRequest(`${plain}/metrics`, { agent: false }, (res) => {
          res.resume();
          resolve(`status ${res.statusCode}`);
        });
        req.on('error', (err) => resolve(`error ${err.message}`));
        req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
        req.end();
      });
      expect(outcome).toMatch(/^error /);
    });

    it.each(['/', '/metrics', '/api/v1/migrations', '/api/v1/migrations/nope', '/-/ready', '/-/healthy', '/no-such-page'])('%s without credentials: 401 with WWW-Authenticate: Basic', async (path) => {
      const reply = await get(exporter.url, path);
      expect(reply.status).toBe(401);
      expect(reply.headers['www-authenticate']).toBe('Basic');
      expect(JSON.parse(reply.body)).toMatchObject({ status: 'error' });
      expect(reply.headers['x-livemig-test']).toBe('one');
      expect(reply.body).not.toContain('livemig_build_info');
    });

    it('a wrong password, an unknown user or a malformed header: 401', async () => {
      for (const auth of ['alice:wrong', `mallory:${PASSWORD}`, 'alice']) {
        const reply = await get(exporter.url, '/metrics', { auth });
        expect(reply.status, auth).toBe(401);
      }
      const ready = await get(exporter.url, '/-/ready', { auth: alice });
      expect(ready.status).toBe(200);
    });

    it('re-reads the file: a second user, a changed header and a TLS change apply without a restart', async () => {
      const bob = `bob:${BOB_PASSWORD}`;
      expect((await get(exporter.url, '/metrics', { auth: bob })).status).toBe(401);
      const changed = web();
      changed.basic_auth_users = { alice: aliceHash, bob: execFileSync(process.execPath, ['-e', HASH_COMMAND, BOB_PASSWORD], { cwd: ROOT, encoding: 'utf8' }).trim() } as typeof changed.basic_auth_users;
      changed.http_server_config.headers['X-Livemig-Test'] = 'two';
      (changed.tls_server_config as Record<string, unknown>).min_version = 'TLS13';
      await writeFile(webFile, stringify(changed));
      const reply = await get(exporter.url, '/metrics', { auth: bob });
      expect(reply.status).toBe(200);
      expect(reply.headers['x-livemig-test']).toBe('two');
      // The new TLS section holds for the next connection: a TLS 1.2 client is refused now.
      await expect(get(exporter.url, '/metrics', { auth: bob, maxVersion: 'TLSv1.2' })).rejects.toThrow();
      expect((await get(exporter.url, '/metrics', { auth: alice })).status).toBe(200);
    });

    it('a file gone bad: keeps serving with the last good one and logs the problem once', async () => {
      await writeFile(webFile, 'basic_auth_users:\n  carol: not-a-hash\n');
      for (let i = 0; i < 3; i++) {
        const reply = await get(exporter.url, '/metrics', { auth: `bob:${BOB_PASSWORD}` });
        expect(reply.status).toBe(200);
        expect(reply.headers['x-livemig-test']).toBe('two');
      }
      expect((await get(exporter.url, '/metrics')).status).toBe(401);
      await expect.poll(() => exporter.logs.filter((l) => l.msg === 'web config file not usable; keeping the last good one').length).toBe(1);
      const logged = exporter.logs.find((l) => l.msg === 'web config file not usable; keeping the last good one');
      expect(String(logged?.err)).toContain('basic_auth_users.carol: expected a bcrypt hash');
    });

    it('never logs a password or the Authorization header', async () => {
      await get(exporter.url, '/no-such-page', { auth: `alice:${PASSWORD}` });
      await new Promise((r) => setTimeout(r, 200));
      for (const secret of [PASSWORD, BOB_PASSWORD, Buffer.from(`alice:${PASSWORD}`).toString('base64'), Buffer.from(`bob:${BOB_PASSWORD}`).toString('base64')]) {
        expect(exporter.stderr).not.toContain(secret);
      }
    });
  });

  describe('min_version TLS13', () => {
    it('refuses a client capped at TLS 1.2 and serves one with TLS 1.3', async () => {
      const exporter = await startWith(await writeWeb('web-tls13.yml', { tls_server_config: { cert_file: 'server.pem', key_file: 'server.key', min_version: 'TLS13' } }));
      running.push(exporter);
      await expect(get(exporter.url, '/metrics', { maxVersion: 'TLSv1.2' })).rejects.toThrow();
      expect((await get(exporter.url, '/metrics')).status).toBe(200);
    }, 30_000);
  });

  describe('client_auth_type RequireAndVerifyClientCert', () => {
    let exporter: ExporterProcess;
    beforeAll(async () => {
      exporter = await startWith(
        await writeWeb('web-mtls.yml', { tls_server_config: { cert_file: 'server.pem', key_file: 'server.key', client_auth_type: 'RequireAndVerifyClientCert', client_ca_file: 'ca.pem' } }),
      );
      running.push(exporter);
    }, 30_000);

    it('refuses a client without a certificate', async () => {
      await expect(get(exporter.url, '/metrics')).rejects.toThrow();
    });

    it('refuses a certificate from another CA', async () => {
      await expect(get(exporter.url, '/metrics', stranger)).rejects.toThrow();
    });

    it('serves a certificate of the client CA', async () => {
      const reply = await get(exporter.url, '/metrics', client);
      expect(reply.status).toBe(200);
      expect(reply.body).toContain('livemig_build_info');
    });
  });

  describe('at start', () => {
    it('a web config file that names a missing certificate: exit 2 naming the file and the key', async () => {
      const file = await writeWeb('web-missing.yml', { tls_server_config: { cert_file: 'none.pem', key_file: 'server.key' } });
      const { runCli } = await import('../helpers/exporter-process.js');
      const run = await runCli(['--web.listen-address', '127.0.0.1:0', '--web.config.file', file]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`web config file ${file}: tls_server_config.cert_file: cannot read`);
      const check = await runCli(['check-web-config', file]);
      expect(check.code).toBe(2);
      const missing = await runCli(['--web.listen-address', '127.0.0.1:0', '--web.config.file', join(dir, 'absent.yml')]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain(`cannot read web config file ${join(dir, 'absent.yml')}: ENOENT`);
    }, 30_000);
  });
});
