/**
 * tls_server_config.client_auth_type against the exporter's CLI, each of the exporter-toolkit's
 * five types with the meaning Go's crypto/tls gives it (ClientAuthType): whether the server asks
 * for a client certificate (a CertificateRequest in the handshake, seen by `openssl s_client
 * -msg`), whether it must get one, and whether it must verify against client_ca_file. Requests
 * are made by curl, over TLS 1.2 and TLS 1.3 (a refusal comes at a different point in each).
 *
 * Then --web.max-connections over https: idle TLS connections and TCP connections that never
 * send a ClientHello do not keep a scrape out (the plain-HTTP case is http-limits.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { missingTools, requireEnvironment } from '../helpers/env.js';
import { ExporterProcess, writeConfig } from '../helpers/exporter-process.js';
import { makeTestPki } from '../helpers/pki.js';

const RUN = requireEnvironment(missingTools('openssl', 'curl'));
const TLS_VERSIONS = ['1.2', '1.3'] as const;
type TlsVersion = (typeof TLS_VERSIONS)[number];

/** The client certificates tried, by their issuer. `null`: none. */
const CLIENTS = {
  none: null,
  /** Signed by the client CA (clientAuth usage). */
  'client CA': 'client',
  /** Signed by another CA. */
  'other CA': 'stranger',
  /** Its own issuer. */
  'self-signed': 'self',
  /** Signed by the client CA, but for serverAuth only: Go's verification wants clientAuth (x509.ExtKeyUsageClientAuth). */
  'client CA, serverAuth usage only': 'server',
} as const;
type ClientName = keyof typeof CLIENTS;

const ALL: ClientName[] = Object.keys(CLIENTS) as ClientName[];
const CERTS: ClientName[] = ALL.filter((c) => c !== 'none');
const VERIFIED: ClientName[] = ['none', 'client CA'];

/**
 * Go crypto/tls: NoClientCert never asks; RequestClientCert asks and takes anything, nothing
 * included; RequireAnyClientCert wants one and takes any; VerifyClientCertIfGiven takes none or
 * one that verifies; RequireAndVerifyClientCert wants one that verifies. A client_ca_file given
 * to RequestClientCert or RequireAnyClientCert only names the CAs offered; it never verifies.
 */
const MODES: { type: string; clientCa: boolean; asks: boolean; served: ClientName[] }[] = [
  { type: 'NoClientCert', clientCa: false, asks: false, served: ALL },
  { type: 'RequestClientCert', clientCa: true, asks: true, served: ALL },
  { type: 'RequestClientCert', clientCa: false, asks: true, served: ALL },
  { type: 'RequireAnyClientCert', clientCa: true, asks: true, served: CERTS },
  { type: 'RequireAnyClientCert', clientCa: false, asks: true, served: CERTS },
  // The toolkit's old name of RequireAnyClientCert, still read by it.
  { type: 'RequireClientCert', clientCa: false, asks: true, served: CERTS },
  { type: 'VerifyClientCertIfGiven', clientCa: true, asks: true, served: VERIFIED },
  { type: 'RequireAndVerifyClientCert', clientCa: true, asks: true, served: ['client CA'] },
];

let dir: string;


function versionArgs(version: TlsVersion): string[] {
  return version === '1.2' ? ['--tlsv1.2', '--tls-max', '1.2'] : ['--tlsv1.3'];
}

/** One curl request on a new connection: the HTTP status ('000' when there was none) and curl's exit code. */
function curl(url: string, version: TlsVersion, cert: string | null, extra: string[] = []): { http: string; exit: number | null; stderr: string } {
  const certArgs = cert ? ['--cert', join(dir, `${cert}.pem`), '--key', join(dir, `${cert}.key`)] : [];
  const run = spawnSync('curl', ['-sS', '--max-time', '10', '--cacert', join(dir, 'ca.pem'), ...versionArgs(version), ...certArgs, ...extra, '-o', '/dev/null', '-w', '%{http_code}', url], { encoding: 'utf8' });
  return { http: run.stdout, exit: run.status, stderr: run.stderr };
}

/** `openssl s_client -msg`: every handshake message, decrypted (TLS 1.3 too), and the CA names the server sent. */
function handshake(url: string, version: TlsVersion): string {
  const { host } = new URL(url);
  const run = spawnSync('openssl', ['s_client', '-connect', host, '-servername', 'localhost', '-CAfile', join(dir, 'ca.pem'), '-verify_return_error', `-tls1_${version === '1.2' ? '2' : '3'}`, '-msg'], {
    input: '',
    encoding: 'utf8',
    timeout: 10_000,
  });
  return run.stdout;
}

async function writeWeb(name: string, web: unknown): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, stringify(web));
  return file;
}

async function startWith(webFile: string, extraArgs: string[] = []): Promise<ExporterProcess> {
  const config = await writeConfig(dir, { state_file: null, libvirt: { discover: 'off' } });
  return ExporterProcess.start(config, ['--web.config.file', webFile, ...extraArgs]);
}

/**
 * The TCP connections to `port` that process `pid` holds open: its socket file descriptors
 * matched by inode against /proc/net/tcp(6), the listening socket left out.
 */
async function heldConnections(pid: number, port: number): Promise<number> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode) inodes.add(inode);
  }
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let count = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = (await readFile(table, 'utf8').catch(() => '')).split('\n').slice(1);
    for (const line of lines) {
      const fields = line.trim().split(/\s+/);
      // local_address, state (0A: LISTEN), inode
      const [local, state, inode] = [fields[1], fields[3], fields[9]];
      if (local?.endsWith(`:${hexPort}`) && state !== '0A' && inode !== undefined && inodes.has(inode)) count++;
    }
  }
  return count;
}

describe.runIf(RUN)('client_auth_type', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lme-client-auth-'));
    makeTestPki(dir, { selfSigned: true });
  }, 60_000);
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe.each(MODES)('$type (client_ca_file: $clientCa)', ({ type, clientCa, asks, served }) => {
    let exporter: ExporterProcess | undefined;
    let url: string;
    beforeAll(async () => {
      const name = `web-${type}-${clientCa ? 'ca' : 'noca'}.yml`;
      exporter = await startWith(await writeWeb(name, { tls_server_config: { cert_file: 'server.pem', key_file: 'server.key', client_auth_type: type, ...(clientCa ? { client_ca_file: 'ca.pem' } : {}) } }));
      url = exporter.url;
    }, 30_000);
    afterAll(async () => {
      await exporter?.stop();
    });

    it.each(TLS_VERSIONS)(`${asks ? 'sends' : 'sends no'} CertificateRequest in the TLS %s handshake`, (version) => {
      const out = handshake(url, version);
      // The handshake got as far as the server's certificate, so the absence below means something.
      expect(out).toMatch(/<<< TLS 1\.[23], Handshake \[length [0-9a-f]+\], Certificate\b/);
      expect(/<<< TLS 1\.[23], Handshake \[length [0-9a-f]+\], CertificateRequest/.test(out), out).toBe(asks);
      // The client CA's name is offered when there is one (Go sends config.ClientCAs' subjects), and no other.
      if (clientCa) expect(out).toMatch(/Acceptable client certificate CA names\nCN = livemig test ca\n(?!CN)/);
      else expect(out).toContain('No client certificate CA names sent');
    });

    it.each(ALL)(`client certificate: %s`, (client) => {
      const cert = CLIENTS[client];
      for (const version of TLS_VERSIONS) {
        const reply = curl(`${url}/metrics`, version, cert);
        const what = `${type}, TLS ${version}, client certificate: ${client}: ${reply.stderr}`;
        if (served.includes(client)) {
          expect(reply.http, what).toBe('200');
          expect(reply.exit, what).toBe(0);
        } else {
          expect(reply.http, what).toBe('000');
          expect(reply.exit, what).not.toBe(0);
        }
      }
    });
  });

  describe('--web.max-connections over https', () => {
    const CAP = 8;
    const PASSWORD = 'correct-horse-battery-staple';
    let exporter: ExporterProcess | undefined;
    const sockets: Socket[] = [];

    beforeAll(async () => {
      const web = await writeWeb('web-cap.yml', { tls_server_config: { cert_file: 'server.pem', key_file: 'server.key' }, basic_auth_users: { alice: bcrypt.hashSync(PASSWORD, 10) } });
      exporter = await startWith(web, ['--web.max-connections', String(CAP)]);
    }, 30_000);
    afterAll(async () => {
      for (const s of sockets) s.destroy();
      await exporter?.stop();
    });

    it('scrapes /metrics with basic auth with the cap reached by idle TLS connections and silent TCP ones, holding at most the cap', async () => {
      const proc = exporter as ExporterProcess;
      const pid = proc.child.pid as number;
      const { hostname, port: portText } = new URL(proc.url);
      const port = Number(portText);
      const ca = await readFile(join(dir, 'ca.pem'));
      const closed: number[] = [];
      const held: number[] = [];
      const started = Date.now();

      // Alternately: a TCP connection that never sends a ClientHello, and a TLS connection that
      // completes its handshake and sends no request. A completed handshake means the exporter
      // has handled every connection before it, so the count taken then is settled.
      for (let i = 0; i < CAP * 3; i++) {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s =
            i % 2 === 0
              ? tcpConnect(port, hostname, () => resolve(s))
              : tlsConnect({ host: hostname, port, ca, servername: 'localhost' }, () => resolve(s));
          s.once('error', reject);
        });
        // Closed by the exporter: no error expected, but an ECONNRESET must not fail the test.
        socket.on('error', () => {});
        socket.on('close', () => closed.push(i));
        sockets.push(socket);
        if (i % 2 === 1) held.push(await heldConnections(pid, port));
      }
      expect(Math.max(...held)).toBeLessThanOrEqual(CAP);
      // It counts what it should: the cap is full.
      expect(held.at(-1)).toBe(CAP);

      const scrapes: string[] = [];
      for (let i = 0; i < 5; i++) {
        const reply = curl(`${proc.url}/metrics`, i % 2 === 0 ? '1.3' : '1.2', null, ['-u', `alice:${PASSWORD}`]);
        scrapes.push(reply.http);
        expect(reply.exit, reply.stderr).toBe(0);
      }
      expect(scrapes).toEqual(['200', '200', '200', '200', '200']);
      const body = await new Promise<string>((resolve, reject) => {
        const req = httpsRequest(`${proc.url}/metrics`, { agent: false, ca, auth: `alice:${PASSWORD}` }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve(`${res.statusCode}\n${text}`));
        });
        req.on('error', reject);
        req.end();
      });
      expect(body).toMatch(/^200\n/);
      expect(body).toContain('livemig_build_info');
      // Without credentials still 401: the cap did not bypass anything.
      expect(curl(`${proc.url}/metrics`, '1.3', null).http).toBe('401');

      // Everything past the cap was closed by the exporter, the oldest first, well before the
      // 10 s header and handshake timeouts could have done it.
      await expect.poll(() => closed.length, { timeout: 3_000 }).toBeGreaterThanOrEqual(CAP * 3 - CAP);
      expect(Date.now() - started).toBeLessThan(9_000);
      expect(Math.min(...closed)).toBe(0);
      expect(closed).toContain(1);
      await expect.poll(() => heldConnections(pid, port)).toBeLessThanOrEqual(CAP);
    }, 60_000);
  });
});
