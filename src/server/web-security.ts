/**
 * --web.config.file at run time: TLS, response headers and basic auth for every endpoint. The
 * file (and the certificate, key and CA files it names) is looked at again on each request and
 * each new connection: a stat, and a re-read when something changed. A file that goes bad keeps
 * the last good config serving, and the problem is logged once (until it changes).
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Server as HttpsServer, ServerOptions as HttpsOptions } from 'node:https';
import { createSecureContext, type TLSSocket } from 'node:tls';
import bcrypt from 'bcryptjs';
import { errorMessage, livemigError } from '../errors.js';
import type { Logger } from '../log.js';
import type { TlsHooks } from './listen.js';
import { CLIENT_AUTH, parseWebConfigText, type WebConfig, type WebTlsConfig } from './web-config.js';

/** Successful credential checks remembered (bcrypt is slow on purpose); the oldest goes first. */
const AUTH_CACHE_SIZE = 100;

/** Reads and checks the whole web config (YAML and the TLS files). Throws LME_WEB_CONFIG(_READ). */
export function readWebConfig(file: string): { config: WebConfig; tls: HttpsOptions | null } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw livemigError('LME_WEB_CONFIG_READ', file, (err as NodeJS.ErrnoException).code ?? err);
  }
  const config = parseWebConfigText(text, file);
  return { config, tls: config.tls ? tlsOptions(config.tls, file) : null };
}

/** Node's server options for the TLS section; the files are read and the secure context tried. */
function tlsOptions(tls: WebTlsConfig, file: string): HttpsOptions {
  const read = (key: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw livemigError('LME_WEB_CONFIG', file, `tls_server_config.${key}`, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
    }
  };
  const policy = CLIENT_AUTH[tls.clientAuth];
  const options: HttpsOptions = {
    cert: read('cert_file', tls.certFile),
    key: read('key_file', tls.keyFile),
    ...(tls.clientCaFile ? { ca: read('client_ca_file', tls.clientCaFile) } : {}),
    minVersion: tls.minVersion,
    ...(tls.maxVersion ? { maxVersion: tls.maxVersion } : {}),
    ...(tls.ciphers ? { ciphers: tls.ciphers.join(':') } : {}),
    ...(tls.curves ? { ecdhCurve: tls.curves.join(':') } : {}),
    honorCipherOrder: tls.preferServerCipherSuites,
    requestCert: policy.request,
    // Only the strictest type lets OpenSSL refuse in the handshake; the others are checked in `accept`.
    rejectUnauthorized: policy.require && policy.verify,
  };
  try {
    createSecureContext(options);
  } catch (err) {
    throw livemigError('LME_WEB_CONFIG', file, 'tls_server_config', `the certificate, key or CA cannot be used: ${errorMessage(err)}`);
  }
  return options;
}

export class WebSecurity {
  private config: WebConfig;
  private tls: HttpsOptions | null;
  /** Bumped when the TLS options change; the server's context is renewed when it lags. */
  private tlsGeneration = 0;
  private appliedGeneration = 0;
  private goodStamp: string;
  private badStamp: string | null = null;
  private lastProblem: string | null = null;
  private readonly authCache = new Map<string, true>();
  private dummyHash: string | null = null;

  private constructor(
    readonly file: string,
    private readonly logger: Logger,
    loaded: { config: WebConfig; tls: HttpsOptions | null },
  ) {
    this.config = loaded.config;
    this.tls = loaded.tls;
    this.goodStamp = this.stamp();
  }

  /** At start: a missing or invalid file throws (exit 2). */
  static load(file: string, logger: Logger): WebSecurity {
    return new WebSecurity(file, logger, readWebConfig(file));
  }

  get current(): WebConfig {
    return this.config;
  }

  /** Re-reads the file when it (or a TLS file it names) changed; a bad one is logged once and ignored. */
  refresh(): void {
    const stamp = this.stamp();
    if (stamp === this.goodStamp || stamp === this.badStamp) return;
    try {
      const next = readWebConfig(this.file);
      if ((next.tls === null) !== (this.tls === null)) throw livemigError('LME_WEB_CONFIG', this.file, 'tls_server_config', `${next.tls ? 'adding' : 'removing'} TLS needs a restart`);
      const tlsChanged = JSON.stringify(next.tls) !== JSON.stringify(this.tls);
      this.config = next.config;
      this.tls = next.tls;
      if (tlsChanged) this.tlsGeneration++;
      this.goodStamp = this.stamp();
      this.badStamp = null;
      this.logger.info({ file: this.file, tlsChanged, users: next.config.users.size, headers: next.config.headers.length }, 'web config file re-read');
      this.lastProblem = null;
    } catch (err) {
      this.badStamp = stamp;
      const problem = errorMessage(err);
      if (problem !== this.lastProblem) this.logger.error({ file: this.file, err: problem }, 'web config file not usable; keeping the last good one');
      this.lastProblem = problem;
    }
  }

  /** For listen(): null without tls_server_config. */
  tlsHooks(): TlsHooks | null {
    if (!this.tls) return null;
    return {
      options: this.tls,
      beforeHandshake: (server) => this.renewContext(server),
      accept: (socket) => this.acceptClient(socket),
    };
  }

  /** Wraps the app: the configured headers on every response, then basic auth when users are configured. */
  handler(app: RequestListener): RequestListener {
    return (req, res) => {
      this.refresh();
      const { headers, users } = this.config;
      for (const [name, value] of headers) res.setHeader(name, value);
      if (users.size === 0) {
        app(req, res);
        return;
      }
      this.authorized(req, users).then(
        (ok) => (ok ? app(req, res) : unauthorized(res)),
        (err: unknown) => {
          this.logger.error({ err: errorMessage(err) }, 'checking credentials failed');
          res.statusCode = 500;
          res.setHeader('Content-Type', 'application/json');
          res.end('{"status":"error","error":"internal error"}');
        },
      );
    };
  }

  private renewContext(server: HttpsServer): void {
    this.refresh();
    if (this.appliedGeneration === this.tlsGeneration || !this.tls) return;
    server.setSecureContext(this.tls);
    // Read by Node for each new connection; setSecureContext does not carry them.
    Object.assign(server, { requestCert: this.tls.requestCert, rejectUnauthorized: this.tls.rejectUnauthorized });
    this.appliedGeneration = this.tlsGeneration;
    this.logger.info({ file: this.file }, 'TLS settings renewed for new connections');
  }

  private acceptClient(socket: TLSSocket): boolean {
    const tls = this.config.tls;
    if (!tls) return true;
    const policy = CLIENT_AUTH[tls.clientAuth];
    const cert = socket.getPeerCertificate();
    const given = cert !== null && Object.keys(cert).length > 0;
    const refused = policy.require && !given ? 'no client certificate' : policy.verify && given && !socket.authorized ? `client certificate not verified: ${String(socket.authorizationError)}` : null;
    if (refused) this.logger.debug({ remote: socket.remoteAddress, clientAuth: tls.clientAuth, why: refused }, 'TLS connection refused');
    return refused === null;
  }

  /** True when the Authorization header names a user with the right password. Neither is ever logged. */
  private async authorized(req: IncomingMessage, users: Map<string, string>): Promise<boolean> {
    const match = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(req.headers.authorization ?? '');
    if (!match?.[1]) return false;
    const decoded = Buffer.from(match[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const hash = users.get(user);
    // Keyed by a digest of all three: a changed hash or password never hits an old entry, and the
    // lookup compares digests, which tell nothing of the password.
    const key = createHash('sha256').update(user).update('\0').update(password).update('\0').update(hash ?? '').digest('hex');
    if (hash !== undefined && this.authCache.has(key)) return true;
    // An unknown user costs a bcrypt comparison too, so that timing does not tell which users exist.
    this.dummyHash ??= bcrypt.hashSync('not a password', 10);
    const ok = await bcrypt.compare(password, hash ?? this.dummyHash);
    if (!ok || hash === undefined) return false;
    this.authCache.set(key, true);
    if (this.authCache.size > AUTH_CACHE_SIZE) this.authCache.delete(this.authCache.keys().next().value as string);
    return true;
  }

  /** What the file and its TLS files look like on disk now: size, mtime and inode of each. */
  private stamp(): string {
    const files = [this.file, ...(this.config.tls ? [this.config.tls.certFile, this.config.tls.keyFile, this.config.tls.clientCaFile] : [])];
    return files
      .map((f) => {
        if (f === null) return '-';
        try {
          const st = statSync(f);
          return `${st.ino}:${st.size}:${st.mtimeMs}`;
        } catch (err) {
          return (err as NodeJS.ErrnoException).code ?? 'error';
        }
      })
      .join('|');
  }
}

function unauthorized(res: ServerResponse): void {
  res.statusCode = 401;
  res.setHeader('WWW-Authenticate', 'Basic');
  res.setHeader('Content-Type', 'application/json');
  res.end('{"status":"error","error":"unauthorized: valid basic auth credentials needed"}\n');
}
