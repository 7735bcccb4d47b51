/**
 * HostFollower over a real SSH host (OpenSSH sshd on loopback, the hosts helper's SshHost): the
 * remote `tail -F` is started with the path as one quoted argument, follows a rename rotation,
 * resumes from a saved position, and is gone from the remote side once the follower stops.
 */
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshHost } from '../../src/hosts/ssh.js';
import { HostFollower } from '../../src/sources/logs/host-follower.js';
import { LineScanner } from '../../src/sources/logs/line-scanner.js';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { TestSshd } from '../helpers/sshd.js';

const dir = mkdtempSync(join(tmpdir(), 'lme-logs-ssh-'));
/** A name no remote shell would survive unquoted. */
const PWNED = `lme-pwned-${process.pid}`;
const PATH = join(dir, `nova 'compute" $(touch ${PWNED}) \`touch ${PWNED}\`.log`);

function tails(): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return argv[0] === 'tail' && argv.includes(PATH);
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const line = (i: number) => `2026-03-10 12:34:56.789 4242 INFO nova.compute.manager [-] line ${i}`;

describe.runIf(requireEnvironment(missingTools('/usr/sbin/sshd', 'ssh-keygen', 'tail'), needsRoot()))('HostFollower over SSH (real sshd)', () => {
  let sshd: TestSshd;
  let host: SshHost;

  beforeAll(async () => {
    sshd = await TestSshd.start();
    host = sshd.sshHost('remote');
    host.start();
  });
  afterAll(async () => {
    await host?.close();
    await sshd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('follows from the end, through a rename rotation, resumes from the saved position, leaves no tail behind', async () => {
    writeFileSync(PATH, `${line(0)}\n`);
    const seen: string[] = [];
    const rotations: string[] = [];
    const make = () => new LineScanner({ maxLineLength: 4096, onLine: (l) => seen.push(l.text) });
    const a = new HostFollower({ host, path: PATH, pollMs: 100, makeScanner: make, onRotate: (r) => rotations.push(r) });
    await a.start();
    await waitFor('the remote tail', () => tails().length === 1);
    appendFileSync(PATH, `${line(1)}\n${line(2)}\n`);
    await waitFor('lines 1, 2', () => seen.length === 2);
    renameSync(PATH, `${PATH}.1`);
    writeFileSync(PATH, `${line(3)}\n`);
    await waitFor('line 3 from the new file', () => seen.length === 3);
    expect(rotations.length).toBe(1);
    appendFileSync(PATH, `${line(4)}\n`);
    await waitFor('line 4', () => seen.length === 4);
    // After a rotation the new file's identity is read with stat over SSH before a position is given.
    await waitFor('a position for the new file', () => a.position() !== undefined);
    const saved = a.position()!;
    expect(saved.offset).toBe(Buffer.byteLength(`${line(3)}\n${line(4)}\n`));
    await a.stop();
    await waitFor('the remote tail to end', () => tails().length === 0);
    appendFileSync(PATH, `${line(5)}\n${line(6)}\n`);
    const b = new HostFollower({ host, path: PATH, pollMs: 100, makeScanner: make, resume: saved });
    await b.start();
    await waitFor('lines 5, 6', () => seen.length === 6);
    await new Promise((r) => setTimeout(r, 300));
    await b.stop();
    expect(seen).toEqual([1, 2, 3, 4, 5, 6].map(line));
    // The remote shell starts in root's home; nothing ran there or here.
    expect(existsSync(join('/root', PWNED))).toBe(false);
    expect(existsSync(join(process.cwd(), PWNED))).toBe(false);
    await waitFor('no tail left', () => tails().length === 0);
  });
});
