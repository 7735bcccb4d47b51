import { describe, expect, it } from 'vitest';
import { CIPHER_SUITES, CLIENT_AUTH, parseWebConfigText } from '../../src/server/web-config.js';

const FILE = '/etc/livemig/web.yml';
// A bcrypt hash of "secret" (cost 4), made with bcryptjs for this test.
const HASH = '$2b$04$U1aIjqeFF/3DQHYj0w0hZe6/govVbp38MwndZCeQxibrqTmD5v5Ku';

const parse = (text: string) => parseWebConfigText(text, FILE);
const error = (text: string): string => {
  try {
    parse(text);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('parsed');
};

describe('web config file', () => {
  it('an empty file: no TLS, no users, no headers', () => {
    expect(parse('')).toEqual({ tls: null, headers: [], users: new Map() });
  });

  it('reads every key, relative file names from the file\'s directory', () => {
    const config = parse(`
tls_server_config:
  cert_file: tls.crt
  key_file: /abs/tls.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.pem
  min_version: TLS13
  max_version: TLS13
  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305]
  prefer_server_cipher_suites: true
  curve_preferences: [X25519, CurveP256]
http_server_config:
  http2: true
  headers:
    Strict-Transport-Security: max-age=31536000
    X-Frame-Options: deny
basic_auth_users:
  alice: ${HASH}
`);
    expect(config.tls).toEqual({
      certFile: '/etc/livemig/tls.crt',
      keyFile: '/abs/tls.key',
      clientCaFile: '/etc/livemig/ca.pem',
      clientAuth: 'RequireAndVerifyClientCert',
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ciphers: ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-CHACHA20-POLY1305'],
      preferServerCipherSuites: true,
      curves: ['X25519', 'P-256'],
    });
    expect(config.headers).toEqual([
      ['Strict-Transport-Security', 'max-age=31536000'],
      ['X-Frame-Options', 'deny'],
    ]);
    expect(config.users).toEqual(new Map([['alice', HASH]]));
  });

  it('defaults: NoClientCert, TLS 1.2 at least, no maximum, OpenSSL\'s ciphers', () => {
    expect(parse('tls_server_config: {cert_file: c, key_file: k}').tls).toMatchObject({ clientAuth: 'NoClientCert', clientCaFile: null, minVersion: 'TLSv1.2', maxVersion: null, ciphers: null, curves: null, preferServerCipherSuites: false });
  });

  it.each([
    ['TLS10', 'TLSv1'],
    ['TLS11', 'TLSv1.1'],
    ['TLS12', 'TLSv1.2'],
    ['TLS13', 'TLSv1.3'],
  ])('min_version %s is %s', (name, node) => {
    expect(parse(`tls_server_config: {cert_file: c, key_file: k, min_version: ${name}}`).tls?.minVersion).toBe(node);
  });

  it('maps client_auth_type: asks for, requires, verifies', () => {
    expect(CLIENT_AUTH).toEqual({
      NoClientCert: { request: false, require: false, verify: false },
      RequestClientCert: { request: true, require: false, verify: false },
      RequireAnyClientCert: { request: true, require: true, verify: false },
      VerifyClientCertIfGiven: { request: true, require: false, verify: true },
      RequireAndVerifyClientCert: { request: true, require: true, verify: true },
    });
    for (const type of ['RequestClientCert', 'RequireAnyClientCert']) {
      expect(parse(`tls_server_config: {cert_file: c, key_file: k, client_auth_type: ${type}}`).tls?.clientAuth).toBe(type);
    }
    // As the toolkit: RequireAnyClientCert's old name, and an empty value.
    expect(parse('tls_server_config: {cert_file: c, key_file: k, client_auth_type: RequireClientCert}').tls?.clientAuth).toBe('RequireAnyClientCert');
    expect(parse('tls_server_config: {cert_file: c, key_file: k, client_auth_type: ""}').tls?.clientAuth).toBe('NoClientCert');
  });

  it('maps Go\'s cipher suite names to OpenSSL\'s: AES-GCM and CHACHA20 for ECDSA and RSA', () => {
    expect(CIPHER_SUITES).toMatchObject({
      TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
      TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
      TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
      TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
      TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
      TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
    });
  });

  it.each([
    ['tls_server_config: {key_file: k}', 'tls_server_config.cert_file: is required'],
    ['tls_server_config: {cert_file: c}', 'tls_server_config.key_file: is required'],
    ['tls_server_config: {cert_file: c, key_file: k, client_auth_type: Sometimes}', 'tls_server_config.client_auth_type: "Sometimes" is not one of NoClientCert, RequestClientCert'],
    ['tls_server_config: {cert_file: c, key_file: k, client_auth_type: RequireAndVerifyClientCert}', 'tls_server_config.client_ca_file: is required with client_auth_type RequireAndVerifyClientCert'],
    ['tls_server_config: {cert_file: c, key_file: k, client_auth_type: VerifyClientCertIfGiven}', 'tls_server_config.client_ca_file: is required with client_auth_type VerifyClientCertIfGiven'],
    ['tls_server_config: {cert_file: c, key_file: k, client_ca_file: ca}', 'tls_server_config.client_auth_type: client_ca_file is given but client_auth_type is NoClientCert'],
    ['tls_server_config: {cert_file: c, key_file: k, min_version: TLS14}', 'tls_server_config.min_version: "TLS14" is not one of TLS10, TLS11, TLS12, TLS13'],
    ['tls_server_config: {cert_file: c, key_file: k, max_version: TLS11}', 'tls_server_config.max_version: is below min_version'],
    ['tls_server_config: {cert_file: c, key_file: k, cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_MADE_UP]}', 'tls_server_config.cipher_suites[1]: unknown cipher suite "TLS_MADE_UP"'],
    ['tls_server_config: {cert_file: c, key_file: k, cipher_suites: [TLS_AES_128_GCM_SHA256]}', 'a TLS 1.3 suite: those are not configurable'],
    ['tls_server_config: {cert_file: c, key_file: k, cipher_suites: []}', 'tls_server_config.cipher_suites: expected a non-empty list'],
    ['tls_server_config: {cert_file: c, key_file: k, curve_preferences: [CurveP999]}', 'tls_server_config.curve_preferences[0]: unknown curve "CurveP999"'],
    ['tls_server_config: {cert_file: c, key_file: k, prefer_server_cipher_suites: maybe}', 'tls_server_config.prefer_server_cipher_suites: expected true or false'],
    ['tls_server_config: {cert_file: c, key_file: k, cert: inline}', 'tls_server_config.cert: unknown key'],
    ['tls_server_config: [a]', 'tls_server_config: expected a mapping, got a list'],
    ['http_server_config: {headers: {Authorization: x}}', 'http_server_config.headers.Authorization: cannot be set here'],
    ['http_server_config: {headers: {content-type: x}}', 'http_server_config.headers.content-type: cannot be set here'],
    ['http_server_config: {headers: {WWW-Authenticate: x}}', 'http_server_config.headers.WWW-Authenticate: cannot be set here'],
    ['http_server_config: {headers: {"Bad Name": x}}', 'http_server_config.headers.Bad Name: is not a valid header name'],
    ['http_server_config: {headers: {X-A: [1]}}', 'http_server_config.headers.X-A: expected a string value'],
    ['http_server_config: {headers: {X-A: "a\\r\\nB: c"}}', 'http_server_config.headers.X-A: the value holds a line break'],
    ['http_server_config: {http2: sometimes}', 'http_server_config.http2: expected true or false'],
    ['http_server_config: {gzip: true}', 'http_server_config.gzip: unknown key'],
    ['basic_auth_users: {alice: plain-password}', 'basic_auth_users.alice: expected a bcrypt hash'],
    [`basic_auth_users: {"a:b": "${HASH}"}`, 'basic_auth_users.a:b: a user name must be non-empty and hold no ":"'],
    ['basic_auth_users: [alice]', 'basic_auth_users: expected a mapping'],
    ['tls_config: {}', 'tls_config: unknown key; known: tls_server_config'],
    ['- a list', '(top level): expected a mapping'],
    ['a: [unclosed', 'line 1, column'],
    ['a: 1\na: 2', 'not valid YAML'],
  ])('%s: %s', (text, message) => {
    const got = error(text);
    expect(got.startsWith(`web config file ${FILE}: `), got).toBe(true);
    expect(got).toContain(message);
  });

  it('never shows a hash it refuses', () => {
    expect(error('basic_auth_users: {alice: "$2b$04$short"}')).not.toContain('$2b$04$short');
  });

  it('accepts $2y$ hashes (htpasswd -B) and $2a$', () => {
    const users = parse(`basic_auth_users: {a: "${HASH.replace('$2b$', '$2y$')}", b: "${HASH.replace('$2b$', '$2a$')}"}`).users;
    expect([...users.keys()]).toEqual(['a', 'b']);
  });
});
