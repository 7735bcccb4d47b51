import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hostFieldMatches, keyTypeOfBlob, knownKeyTypes, parseKnownHosts, verifyHostKey } from '../../src/hosts/known-hosts.js';

/** An ssh-ed25519 public key blob: string "ssh-ed25519", string 32 key bytes. */
function blob(type: string, fill: number): Buffer {
  const t = Buffer.from(type);
  const k = Buffer.alloc(32, fill);
  const out = Buffer.alloc(8 + t.length + k.length);
  out.writeUInt32BE(t.length, 0);
  t.copy(out, 4);
  out.writeUInt32BE(k.length, 4 + t.length);
  k.copy(out, 8 + t.length);
  return out;
}
const KEY_A = blob('ssh-ed25519', 1);
const KEY_B = blob('ssh-ed25519', 2);
const b64 = (b: Buffer) => b.toString('base64');

function hashed(name: string, saltByte: number): string {
  const salt = Buffer.alloc(20, saltByte);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe('known_hosts', () => {
  it('reads plain, bracketed-port, hashed and marker lines, and reports bad ones by line', () => {
    const text = [
      '# comment',
      '',
      `compute-7,10.0.0.7 ssh-ed25519 ${b64(KEY_A)} comment here`,
      `[10.0.0.8]:2222 ssh-ed25519 ${b64(KEY_A)}`,
      `${hashed('10.0.0.9', 7)} ssh-ed25519 ${b64(KEY_B)}`,
      `@revoked * ssh-ed25519 ${b64(blob('ssh-ed25519', 9))}`,
      `@bogus host ssh-ed25519 ${b64(KEY_A)}`,
      'onlyhost ssh-ed25519',
      `|1|short|short ssh-ed25519 ${b64(KEY_A)}`,
    ].join('\n');
    const parsed = parseKnownHosts(text);
    expect(parsed.entries.map((e) => e.line)).toEqual([3, 4, 5, 6]);
    expect(parsed.invalid.map((i) => i.line)).toEqual([7, 8, 9]);
    expect(parsed.invalid[0]?.reason).toContain('@bogus');
    const entries = parsed.entries;
    expect(verifyHostKey(entries, '10.0.0.7', 22, 'ssh-ed25519', KEY_A)).toEqual({ ok: true, line: 3 });
    expect(verifyHostKey(entries, 'compute-7', 22, 'ssh-ed25519', KEY_B)).toMatchObject({ ok: false, reason: 'changed', lines: [3] });
    // Port 2222 is only known as [10.0.0.8]:2222; port 22 of the same address is unknown.
    expect(verifyHostKey(entries, '10.0.0.8', 2222, 'ssh-ed25519', KEY_A)).toMatchObject({ ok: true });
    expect(verifyHostKey(entries, '10.0.0.8', 22, 'ssh-ed25519', KEY_A)).toMatchObject({ ok: false, reason: 'unknown' });
    expect(verifyHostKey(entries, '10.0.0.9', 22, 'ssh-ed25519', KEY_B)).toMatchObject({ ok: true, line: 5 });
    expect(verifyHostKey(entries, '10.0.0.9', 22, 'ssh-ed25519', KEY_A)).toMatchObject({ ok: false, reason: 'changed' });
    expect(verifyHostKey(entries, 'x', 22, 'ssh-ed25519', blob('ssh-ed25519', 9))).toMatchObject({ ok: false, reason: 'revoked', line: 6 });
    expect(knownKeyTypes(entries, '10.0.0.9', 22)).toEqual(['ssh-ed25519']);
  });

  it('matches wildcard patterns and honours negation', () => {
    const field = { kind: 'patterns' as const, patterns: ['compute-*', '!compute-13', '10.0.0.?'] };
    expect(hostFieldMatches(field, 'compute-7')).toBe(true);
    expect(hostFieldMatches(field, 'COMPUTE-8')).toBe(true);
    expect(hostFieldMatches(field, 'compute-13')).toBe(false);
    expect(hostFieldMatches(field, '10.0.0.1')).toBe(true);
    expect(hostFieldMatches(field, '10.0.0.10')).toBe(false);
    expect(hostFieldMatches(field, 'compute.7')).toBe(false);
  });

  it('compares the key type too, and reads it from the blob', () => {
    const entries = parseKnownHosts(`h ssh-rsa ${b64(KEY_A)}`).entries;
    expect(verifyHostKey(entries, 'h', 22, 'ssh-ed25519', KEY_A)).toMatchObject({ ok: false, reason: 'changed' });
    expect(keyTypeOfBlob(KEY_A)).toBe('ssh-ed25519');
    expect(keyTypeOfBlob(Buffer.from([0, 0]))).toBeNull();
  });
});
