/**
 * The web config file of `--web.config.file`, in the layout of the Prometheus exporter-toolkit
 * (tls_server_config, http_server_config, basic_auth_users). Text in, typed record out: no I/O,
 * no clock. Every error names the file and the key path (LME_WEB_CONFIG). Relative file names
 * are taken relative to the web config file's directory, as the toolkit does.
 */
import { dirname, resolve } from 'node:path';
import type { SecureVersion } from 'node:tls';
import { parseDocument } from 'yaml';
import { errorMessage, livemigError } from '../errors.js';

export const CLIENT_AUTH_TYPES = ['NoClientCert', 'RequestClientCert', 'RequireAnyClientCert', 'VerifyClientCertIfGiven', 'RequireAndVerifyClientCert'] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];
/** Names the toolkit reads too (web/tls_config.go): Go's zero value, and RequireAnyClientCert's old name. */
const CLIENT_AUTH_ALIASES: Record<string, ClientAuthType> = { '': 'NoClientCert', RequireClientCert: 'RequireAnyClientCert' };

/** What each client_auth_type asks of a client: is a certificate asked for, must there be one, must it verify against client_ca_file. */
export const CLIENT_AUTH: Record<ClientAuthType, { request: boolean; require: boolean; verify: boolean }> = {
  NoClientCert: { request: false, require: false, verify: false },
  RequestClientCert: { request: true, require: false, verify: false },
  RequireAnyClientCert: { request: true, require: true, verify: false },
  VerifyClientCertIfGiven: { request: true, require: false, verify: true },
  RequireAndVerifyClientCert: { request: true, require: true, verify: true },
};

export const TLS_VERSIONS: Record<string, SecureVersion> = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' };
const VERSION_ORDER: SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/**
 * Go's names of the TLS 1.2 cipher suites (crypto/tls) and OpenSSL's for the same suite. TLS 1.3
 * suites are not configurable, in Go as here.
 */
export const CIPHER_SUITES: Record<string, string> = {
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
};

/** Go's curve names (curve_preferences) and OpenSSL's. */
export const CURVES: Record<string, string> = { CurveP256: 'P-256', CurveP384: 'P-384', CurveP521: 'P-521', X25519: 'X25519' };

/**
 * Headers http_server_config.headers may not set: the exporter's own (content, framing, auth)
 * would be wrong or lost with them.
 */
export const RESERVED_HEADERS = ['authorization', 'www-authenticate', 'content-type', 'content-length', 'content-encoding', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'date'];

export interface WebTlsConfig {
  /** Absolute paths. */
  certFile: string;
  keyFile: string;
  clientCaFile: string | null;
  clientAuth: ClientAuthType;
  minVersion: SecureVersion;
  maxVersion: SecureVersion | null;
  /** OpenSSL names, in the file's order; null: OpenSSL's defaults. */
  ciphers: string[] | null;
  preferServerCipherSuites: boolean;
  /** OpenSSL names; null: the defaults. */
  curves: string[] | null;
}

export interface WebConfig {
  tls: WebTlsConfig | null;
  /** Added to every response, in the file's order. */
  headers: [name: string, value: string][];
  /** User name to bcrypt hash; empty: no authentication. */
  users: Map<string, string>;
}

export const EMPTY_WEB_CONFIG: WebConfig = { tls: null, headers: [], users: new Map() };

const BCRYPT_HASH = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

type Fail = (key: string, problem: string) => never;

export function parseWebConfigText(text: string, file: string): WebConfig {
  const fail: Fail = (key, problem) => {
    throw livemigError('LME_WEB_CONFIG', file, key, problem);
  };
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const at = yamlError.linePos?.[0];
    fail(at ? `line ${at.line}, column ${at.col}` : '(YAML)', `not valid YAML: ${(yamlError.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    fail('(YAML)', `not valid YAML: ${errorMessage(err)}`);
  }
  const top = mapping(raw, '(top level)', fail);
  onlyKeys(top, ['tls_server_config', 'http_server_config', 'basic_auth_users'], '', fail);
  const base = dirname(resolve(file));
  return {
    tls: top.tls_server_config === undefined || top.tls_server_config === null ? null : parseTls(top.tls_server_config, base, fail),
    headers: parseHttp(top.http_server_config, fail),
    users: parseUsers(top.basic_auth_users, fail),
  };
}

function parseTls(raw: unknown, base: string, fail: Fail): WebTlsConfig {
  const key = 'tls_server_config';
  const tls = mapping(raw, key, fail);
  onlyKeys(tls, ['cert_file', 'key_file', 'client_auth_type', 'client_ca_file', 'min_version', 'max_version', 'cipher_suites', 'prefer_server_cipher_suites', 'curve_preferences'], `${key}.`, fail);
  const path = (name: string, required: boolean): string | null => {
    const value = tls[name];
    if (value === undefined || value === null || value === '') {
      if (required) fail(`${key}.${name}`, 'is required when tls_server_config is given');
      return null;
    }
    if (typeof value !== 'string') fail(`${key}.${name}`, `expected a file name, got ${describe(value)}`);
    return resolve(base, value);
  };
  const certFile = path('cert_file', true) as string;
  const keyFile = path('key_file', true) as string;
  const clientCaFile = path('client_ca_file', false);
  const authName = tls.client_auth_type ?? 'NoClientCert';
  const clientAuth = (typeof authName === 'string' && Object.hasOwn(CLIENT_AUTH_ALIASES, authName) ? CLIENT_AUTH_ALIASES[authName] : authName) as ClientAuthType;
  if (!CLIENT_AUTH_TYPES.includes(clientAuth)) fail(`${key}.client_auth_type`, `"${String(clientAuth)}" is not one of ${CLIENT_AUTH_TYPES.join(', ')}`);
  if (CLIENT_AUTH[clientAuth].verify && !clientCaFile) fail(`${key}.client_ca_file`, `is required with client_auth_type ${clientAuth} (the CA that signs client certificates)`);
  if (clientCaFile && clientAuth === 'NoClientCert') fail(`${key}.client_auth_type`, 'client_ca_file is given but client_auth_type is NoClientCert, which never asks for a client certificate');
  const version = (name: string): SecureVersion | null => {
    const value = tls[name];
    if (value === undefined || value === null) return null;
    const mapped = typeof value === 'string' ? TLS_VERSIONS[value] : undefined;
    if (!mapped) fail(`${key}.${name}`, `${describe(value)} is not one of ${Object.keys(TLS_VERSIONS).join(', ')}`);
    return mapped;
  };
  const minVersion = version('min_version') ?? 'TLSv1.2';
  const maxVersion = version('max_version');
  if (maxVersion && VERSION_ORDER.indexOf(maxVersion) < VERSION_ORDER.indexOf(minVersion)) fail(`${key}.max_version`, `is below min_version (${minVersion}; the default is TLS12)`);
  const names = (name: string, table: Record<string, string>, what: string): string[] | null => {
    const value = tls[name];
    if (value === undefined || value === null) return null;
    if (!Array.isArray(value) || value.length === 0) fail(`${key}.${name}`, `expected a non-empty list of ${what}`);
    return (value as unknown[]).map((item, i) => {
      const mapped = typeof item === 'string' && Object.hasOwn(table, item) ? table[item] : undefined;
      if (mapped === undefined) {
        const hint = typeof item === 'string' && /^TLS_(AES|CHACHA20)_/.test(item) ? ' (a TLS 1.3 suite: those are not configurable)' : '';
        fail(`${key}.${name}[${i}]`, `unknown ${what.replace(/s$/, '')} ${describe(item)}${hint}; known: ${Object.keys(table).join(', ')}`);
      }
      return mapped;
    });
  };
  const ciphers = names('cipher_suites', CIPHER_SUITES, 'cipher suites');
  const curves = names('curve_preferences', CURVES, 'curves');
  const prefer = tls.prefer_server_cipher_suites ?? false;
  if (typeof prefer !== 'boolean') fail(`${key}.prefer_server_cipher_suites`, `expected true or false, got ${describe(prefer)}`);
  return { certFile, keyFile, clientCaFile, clientAuth, minVersion, maxVersion, ciphers, preferServerCipherSuites: prefer, curves };
}

function parseHttp(raw: unknown, fail: Fail): [string, string][] {
  if (raw === undefined || raw === null) return [];
  const key = 'http_server_config';
  const http = mapping(raw, key, fail);
  onlyKeys(http, ['headers', 'http2'], `${key}.`, fail);
  // http2 is accepted for compatibility with the toolkit's files and not used: the exporter serves HTTP/1.1.
  if (http.http2 !== undefined && http.http2 !== null && typeof http.http2 !== 'boolean') fail(`${key}.http2`, `expected true or false, got ${describe(http.http2)}`);
  if (http.headers === undefined || http.headers === null) return [];
  const headers = mapping(http.headers, `${key}.headers`, fail);
  return Object.entries(headers).map(([name, value]) => {
    const at = `${key}.headers.${name}`;
    if (!HEADER_NAME.test(name)) fail(at, 'is not a valid header name');
    if (RESERVED_HEADERS.includes(name.toLowerCase())) fail(at, 'cannot be set here: the exporter sets it itself');
    if (typeof value !== 'string') fail(at, `expected a string value, got ${describe(value)}`);
    if (/[\r\n\0]/.test(value)) fail(at, 'the value holds a line break or NUL');
    return [name, value];
  });
}

function parseUsers(raw: unknown, fail: Fail): Map<string, string> {
  const users = new Map<string, string>();
  if (raw === undefined || raw === null) return users;
  const key = 'basic_auth_users';
  for (const [name, hash] of Object.entries(mapping(raw, key, fail))) {
    const at = `${key}.${name}`;
    if (name === '' || name.includes(':')) fail(at, 'a user name must be non-empty and hold no ":"');
    // The hash is not shown: it is a secret too.
    if (typeof hash !== 'string' || !BCRYPT_HASH.test(hash)) fail(at, 'expected a bcrypt hash ($2y$, $2b$ or $2a$, 60 characters)');
    users.set(name, hash);
  }
  return users;
}

function mapping(value: unknown, key: string, fail: Fail): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(key, `expected a mapping, got ${describe(value)}`);
  return value as Record<string, unknown>;
}

function onlyKeys(record: Record<string, unknown>, known: string[], prefix: string, fail: Fail): void {
  const unknown = Object.keys(record).find((k) => !known.includes(k));
  if (unknown !== undefined) fail(`${prefix}${unknown}`, `unknown key; known: ${known.join(', ')}`);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return typeof value === 'string' ? `"${value}"` : String(value);
}
