import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * A pure reader of OpenSSH known_hosts files (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): plain and
 * hashed host fields (`|1|SALT|HASH`, HMAC-SHA1 of the host name keyed with the salt), patterns
 * with `*`, `?` and `!` negation, `[host]:port` for non-standard ports, and the `@revoked` marker.
 * `@cert-authority` lines are kept but never match a plain host key.
 */

export type KnownHostMarker = 'cert-authority' | 'revoked' | null;

export interface KnownHostEntry {
  /** 1-based line number in the file, for errors. */
  line: number;
  marker: KnownHostMarker;
  hosts: HostField;
  keyType: string;
  /** The public key blob (SSH wire format), base64 as written in the file. */
  keyBase64: string;
}

export type HostField = { kind: 'hashed'; salt: Buffer; hash: Buffer } | { kind: 'patterns'; patterns: string[] };

export interface KnownHostsParse {
  entries: KnownHostEntry[];
  /** Lines that are neither comments, blank nor entries; they are skipped (with the reason). */
  invalid: { line: number; reason: string }[];
}

export function parseKnownHosts(text: string): KnownHostsParse {
  const entries: KnownHostEntry[] = [];
  const invalid: { line: number; reason: string }[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const fields = trimmed.split(/\s+/);
    let marker: KnownHostMarker = null;
    if (fields[0]?.startsWith('@')) {
      const name = fields.shift()?.slice(1);
      if (name !== 'cert-authority' && name !== 'revoked') {
        invalid.push({ line, reason: `unknown marker @${name}` });
        return;
      }
      marker = name;
    }
    const [hostText, keyType, keyBase64] = fields;
    if (!hostText || !keyType || !keyBase64) {
      invalid.push({ line, reason: 'expected "HOSTS KEYTYPE BASE64-KEY"' });
      return;
    }
    if (!/^[A-Za-z0-9+/]+=*$/.test(keyBase64)) {
      invalid.push({ line, reason: 'the key is not base64' });
      return;
    }
    const hosts = parseHostField(hostText);
    if (typeof hosts === 'string') {
      invalid.push({ line, reason: hosts });
      return;
    }
    entries.push({ line, marker, hosts, keyType, keyBase64 });
  });
  return { entries, invalid };
}

function parseHostField(text: string): HostField | string {
  if (!text.startsWith('|')) return { kind: 'patterns', patterns: text.split(',').filter((p) => p !== '') };
  const parts = text.split('|');
  if (parts.length !== 4 || parts[1] !== '1') return `hashed host field "${text}" is not |1|SALT|HASH`;
  const salt = Buffer.from(parts[2] as string, 'base64');
  const hash = Buffer.from(parts[3] as string, 'base64');
  if (salt.length !== 20 || hash.length !== 20) return 'hashed host field: salt and hash must be 20 bytes each';
  return { kind: 'hashed', salt, hash };
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function hashHostName(name: string, salt: Buffer): Buffer {
  return createHmac('sha1', salt).update(name).digest();
}

/** True when the entry's host field names `name` (already in knownHostsName form). */
export function hostFieldMatches(field: HostField, name: string): boolean {
  if (field.kind === 'hashed') {
    const digest = hashHostName(name, field.salt);
    return digest.length === field.hash.length && timingSafeEqual(digest, field.hash);
  }
  let matched = false;
  for (const pattern of field.patterns) {
    const negated = pattern.startsWith('!');
    if (wildcardMatch(negated ? pattern.slice(1) : pattern, name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

function wildcardMatch(pattern: string, text: string): boolean {
  const source = pattern
    .toLowerCase()
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`).test(text.toLowerCase());
}

export type HostKeyVerdict =
  | { ok: true; line: number }
  | { ok: false; reason: 'unknown'; knownTypes: [] }
  | { ok: false; reason: 'changed'; knownTypes: string[]; lines: number[] }
  | { ok: false; reason: 'revoked'; line: number };

/**
 * Checks a presented host key (type and wire blob) for `host:port` against parsed entries:
 * accepted when a non-revoked plain entry for the host has exactly this key; `revoked` when a
 * @revoked line lists the key (for any host); `changed` when the host is known but with other
 * keys; `unknown` when no entry names the host.
 */
export function verifyHostKey(entries: readonly KnownHostEntry[], host: string, port: number, keyType: string, key: Buffer): HostKeyVerdict {
  const keyBase64 = key.toString('base64');
  const revoked = entries.find((e) => e.marker === 'revoked' && e.keyBase64 === keyBase64);
  if (revoked) return { ok: false, reason: 'revoked', line: revoked.line };
  const name = knownHostsName(host, port);
  const forHost = entries.filter((e) => e.marker === null && hostFieldMatches(e.hosts, name));
  const match = forHost.find((e) => e.keyBase64 === keyBase64 && e.keyType === keyType);
  if (match) return { ok: true, line: match.line };
  if (forHost.length === 0) return { ok: false, reason: 'unknown', knownTypes: [] };
  return { ok: false, reason: 'changed', knownTypes: [...new Set(forHost.map((e) => e.keyType))], lines: forHost.map((e) => e.line) };
}

/** Key types known for a host, so the client asks the server for a key it can check. */
export function knownKeyTypes(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  const name = knownHostsName(host, port);
  return [...new Set(entries.filter((e) => e.marker === null && hostFieldMatches(e.hosts, name)).map((e) => e.keyType))];
}

/** The key type written inside an SSH wire-format public key blob (its first string). */
export function keyTypeOfBlob(blob: Buffer): string | null {
  if (blob.length < 4) return null;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > 64 || blob.length < 4 + length) return null;
  return blob.subarray(4, 4 + length).toString('latin1');
}
