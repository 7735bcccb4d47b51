import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** Runs openssl in `dir` (its stderr kept for the error). */
export function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A test PKI in `dir`, by real openssl: two CAs (ca, other-ca); server.pem (SAN 127.0.0.1 and
 * localhost) and client.pem signed by ca; stranger.pem signed by other-ca; with `selfSigned`,
 * self.pem. Each NAME.pem has its NAME.key. Returns `sign` for more certificates.
 */
export function makeTestPki(dir: string, options: { selfSigned?: boolean } = {}): { sign(name: string, signer: string, extensions: string): void } {
  for (const name of ['ca', 'other-ca']) openssl(dir, 'req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=livemig test ${name}`);
  const sign = (name: string, signer: string, extensions: string): void => {
    openssl(dir, 'req', '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    writeFileSync(join(dir, `${name}.ext`), `${extensions}\n`);
    openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${signer}.pem`, '-CAkey', `${signer}.key`, '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
  };
  sign('server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth');
  sign('client', 'ca', 'extendedKeyUsage=clientAuth');
  sign('stranger', 'other-ca', 'extendedKeyUsage=clientAuth');
  if (options.selfSigned) openssl(dir, 'req', '-x509', ...EC, '-keyout', 'self.key', '-out', 'self.pem', '-days', '2', '-subj', '/CN=self', '-addext', 'extendedKeyUsage=clientAuth');
  return { sign };
}
