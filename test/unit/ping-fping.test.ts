import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../src/clock.js';
import type { LivemigError } from '../../src/errors.js';
import { exitError, FpingProcess, fpingArgs, fpingCommand, type FpingRun, type FpingSettings } from '../../src/sources/ping/fping.js';
import { parseFpingLine, type FpingLine } from '../../src/sources/ping/parse.js';

const SETTINGS: FpingSettings = { binary: 'fping', periodMs: 100, timeoutMs: 1000, intervalMs: 0.1 };
const fixture = (name: string) => new URL(`../fixtures/fping/${name}`, import.meta.url).pathname;

describe('fpingArgs / fpingCommand', () => {
  it('runs fping in loop mode with epoch stamps, elapsed times and the outage summary; targets after --', () => {
    expect(fpingArgs({ ...SETTINGS, sourceAddress: '198.18.0.1' }, ['198.18.1.1', '198.18.1.2'])).toEqual([
      '-l', '-D', '-e', '-o', '-p', '100', '-t', '1000', '-i', '0.1', '-S', '198.18.0.1', '--', '198.18.1.1', '198.18.1.2',
    ]);
  });

  it('runs the configured binary, or `ip netns exec NS binary` for a namespace', () => {
    expect(fpingCommand({ ...SETTINGS, binary: '/opt/fping' }, ['a'])).toEqual({ command: '/opt/fping', args: fpingArgs(SETTINGS, ['a']) });
    expect(fpingCommand({ ...SETTINGS, netns: 'probe' }, ['a'])).toEqual({
      command: 'ip',
      args: ['netns', 'exec', 'probe', 'fping', ...fpingArgs(SETTINGS, ['a'])],
    });
  });
});

describe('exitError', () => {
  const permissionLine = parseFpingLine(readFileSync(fixture('no-cap-as-nobody.5.1.stderr.txt'), 'utf8').trim());

  it('fping without CAP_NET_RAW: says to grant the capability or run as root', () => {
    if (permissionLine.kind !== 'fatal') throw new Error('fixture is not a fatal line');
    const err = exitError('/usr/bin/fping', { code: 4, signal: null, fatal: permissionLine, stderrTail: [permissionLine.message] });
    expect(err.code).toBe('LME_PING_PERMISSION');
    expect(err.message).toBe(
      "fping /usr/bin/fping cannot open an ICMP socket (/tmp/fping-without-cap/fping: can't create socket (must run as root?)): grant it CAP_NET_RAW with `setcap cap_net_raw+ep /usr/bin/fping`, or run the exporter as root",
    );
  });

  it('names `$(command -v fping)` when the binary is found through PATH', () => {
    if (permissionLine.kind !== 'fatal') throw new Error('fixture is not a fatal line');
    expect(exitError('fping', { code: 4, signal: null, fatal: permissionLine, stderrTail: [] }).message).toContain('setcap cap_net_raw+ep $(command -v fping)');
  });

  it('an exec refused with EPERM is the capability bounding set', () => {
    const spawnError = Object.assign(new Error('spawn fping EPERM'), { code: 'EPERM' });
    const err = exitError('fping', { code: -1, signal: null, spawnError, stderrTail: [] });
    expect(err.code).toBe('LME_PING_PERMISSION');
    expect(err.message).toContain('bounding set');
  });

  it('a missing binary', () => {
    const spawnError = Object.assign(new Error('spawn /nope/fping ENOENT'), { code: 'ENOENT' });
    const err = exitError('/nope/fping', { code: -2, signal: null, spawnError, stderrTail: [] });
    expect(err.code).toBe('LME_PING_SPAWN');
    expect(err.message).toBe('cannot start fping /nope/fping: spawn /nope/fping ENOENT (install the fping package or set the fping path)');
  });

  it('any other end carries what fping said last, or how it died', () => {
    const line = parseFpingLine(readFileSync(fixture('sequence-exhausted.5.1.stderr.txt'), 'utf8').trim());
    if (line.kind !== 'fatal') throw new Error('fixture is not a fatal line');
    expect(exitError('fping', { code: 4, signal: null, fatal: line, stderrTail: [] }).message).toMatch(/^fping fping exited \(code 4\): fping error: not enough sequence numbers available!/);
    expect(exitError('fping', { code: null, signal: 'SIGKILL', stderrTail: [] }).message).toBe('fping fping exited (signal SIGKILL): nothing on stderr');
  });
});

describe('FpingProcess', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lme-fake-fping-'));
  const running: FpingProcess[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.stop()));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A stand-in for fping: records its arguments, prints a real capture, then runs `tail`. */
  function fakeFping(name: string, body: string): string {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\nprintf '%s\\n' "$@" > '${path}.args'\n${body}\n`);
    chmodSync(path, 0o755);
    return path;
  }

  function start(binary: string, addresses: string[], random = () => 0) {
    const events = { starts: [] as FpingRun[], lines: [] as { line: FpingLine; stream: string; run: number }[], exits: [] as { error: LivemigError; restartInMs: number }[] };
    const proc = new FpingProcess({
      settings: { ...SETTINGS, binary },
      addresses,
      clock: systemClock,
      restartBackoff: { baseMs: 50, capMs: 1000, random },
      onStart: (run) => events.starts.push(run),
      onLine: (line, stream, run) => events.lines.push({ line, stream, run }),
      onExit: (error, restartInMs) => events.exits.push({ error, restartInMs }),
    });
    running.push(proc);
    proc.start();
    return { proc, events };
  }

  it('passes the arguments as an array (a shell never sees a target) and parses both streams', async () => {
    const binary = fakeFping('replay', `cat '${fixture('host-unreachable.5.1.stdout.txt')}'; cat '${fixture('host-unreachable.5.1.stderr.txt')}' >&2; exec sleep 30`);
    const targets = ['198.18.1.1', '$(touch /tmp/pwned)', 'a b;c'];
    const { proc, events } = start(binary, targets);
    await vi.waitFor(() => expect(events.lines.filter((l) => l.stream === 'stderr')).toHaveLength(6), { timeout: 5000 });
    expect(readFileSync(`${binary}.args`, 'utf8').split('\n').slice(0, -1)).toEqual(fpingArgs(SETTINGS, targets));
    expect(events.starts).toEqual([expect.objectContaining({ run: 1, pid: proc.pid })]);
    expect(events.lines.filter((l) => l.stream === 'stdout').every((l) => l.line.kind === 'reply' || l.line.kind === 'timeout')).toBe(true);
    expect(events.lines.filter((l) => l.line.kind === 'icmp-error')).toHaveLength(2);
    expect(proc.isUp).toBe(true);
    expect(events.exits).toEqual([]);
  });

  it('restarts an fping that exits, with backoff, and reports each exit', async () => {
    const binary = fakeFping('dies', `echo 'fping error: not enough sequence numbers available! (test)' >&2; exit 4`);
    const { proc, events } = start(binary, ['198.18.1.1'], () => 0.5);
    await vi.waitFor(() => expect(events.exits.length).toBeGreaterThanOrEqual(3), { timeout: 5000 });
    await proc.stop();
    expect(events.exits.slice(0, 3).map((e) => e.restartInMs)).toEqual([25, 50, 100]);
    expect(events.exits[0]!.error.code).toBe('LME_PING_EXITED');
    expect(events.exits[0]!.error.message).toContain('not enough sequence numbers available');
    expect(events.starts.map((s) => s.run).slice(0, 3)).toEqual([1, 2, 3]);
    expect(proc.restarts).toBe(events.exits.length);
  });

  it('a binary that is not there is LME_PING_SPAWN, retried', async () => {
    const { proc, events } = start(join(dir, 'no-such-fping'), ['198.18.1.1']);
    await vi.waitFor(() => expect(events.exits.length).toBeGreaterThanOrEqual(2), { timeout: 5000 });
    expect(events.exits[0]!.error.code).toBe('LME_PING_SPAWN');
    expect(events.starts).toEqual([]);
    expect(proc.isUp).toBe(false);
  });

  it('stop() ends the process without reporting an exit, and no restart follows', async () => {
    const binary = fakeFping('sleeps', 'exec sleep 30');
    const { proc, events } = start(binary, ['198.18.1.1']);
    await vi.waitFor(() => expect(events.starts).toHaveLength(1));
    const pid = proc.pid!;
    await proc.stop();
    expect(() => process.kill(pid, 0)).toThrow();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(events.exits).toEqual([]);
    expect(events.starts).toHaveLength(1);
    expect(proc.isUp).toBe(false);
  });
});
