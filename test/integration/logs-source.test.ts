/**
 * LogSource on real files: nova-compute and libvirt per-domain logs side by side, the events it
 * hands on (with the host that logged them), its counters, health and positions.
 */
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { LocalHost } from '../../src/hosts/local.js';
import { LogSource, type LogEvent } from '../../src/sources/logs/source.js';
import type { LogFileConfig } from '../../src/config/log-files.js';

const FIXTURES = new URL('../fixtures/logs/', import.meta.url);
const fixture = (name: string) => readFileSync(new URL(name, FIXTURES), 'utf8');
const UUID = '0b5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f';

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('LogSource on real files', () => {
  let dir: string;
  let source: LogSource | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lme-logsrc-'));
  });
  afterEach(async () => {
    await source?.stop();
    source = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  function start(files: LogFileConfig[], events: LogEvent[], maxLineLength = 4096): Promise<void> {
    const host = new LocalHost('local');
    source = new LogSource({
      files,
      hostOf: () => host,
      maxLineLength,
      pollMs: 50,
      startAt: 'end',
      clock: systemClock,
      logger: pino({ level: 'silent' }),
      onEvent: (e) => events.push(e),
    });
    return source.start();
  }

  it('nova and libvirt lines become events of the host that logged them; counters, lag and rotations follow', async () => {
    const nova = join(dir, 'nova-compute.log');
    const qemuDst = join(dir, 'instance-0000002a.dst.log');
    const qemuSrc = join(dir, 'instance-0000002a.src.log');
    for (const p of [nova, qemuDst, qemuSrc]) writeFileSync(p, '');
    const events: LogEvent[] = [];
    await start(
      [
        { host: 'compute-1', path: nova, kind: 'nova-compute', timezone: '+01:00' },
        { host: 'compute-2', path: qemuDst, kind: 'libvirt-qemu', timezone: 'UTC' },
        { host: 'compute-1', path: qemuSrc, kind: 'libvirt-qemu', timezone: 'UTC' },
      ],
      events,
    );
    appendFileSync(nova, fixture('nova-compute.33.0-2026.1.src.log'));
    appendFileSync(nova, 'binary \u0000 garbage without a stamp\n');
    appendFileSync(nova, '2026-03-10 12:40:00.000 12345 INFO nova.compute.manager [req-broken Migration is in the context that never closes\n');
    appendFileSync(nova, `2026-03-10 12:40:01.000 12345 INFO nova.compute.manager [-] ${'migration '.repeat(1000)}\n`);
    appendFileSync(qemuDst, fixture('libvirt-qemu.instance-0000002a.dst.log'));
    appendFileSync(qemuSrc, fixture('libvirt-qemu.instance-0000002a.src.log'));
    await waitFor('all events', () => events.length === 15 + 2 + 2);

    const nv = events.filter((e) => e.source === 'nova-compute');
    expect(nv.map((e) => e.host)).toEqual(Array(15).fill('compute-1'));
    expect(nv[0]?.line.timeMs).toBe(Date.UTC(2026, 2, 10, 11, 34, 51, 600)); // 12:34:51.600 at +01:00
    const lv = events.filter((e) => e.source === 'libvirt-qemu');
    expect(lv.map((e) => (e.source === 'libvirt-qemu' ? `${e.host}:${e.event}` : '')).sort()).toEqual(['compute-1:qemu-shutdown', 'compute-1:qemu-start', 'compute-2:qemu-incoming', 'compute-2:qemu-start']);
    const shutdown = lv.find((e) => e.source === 'libvirt-qemu' && e.event === 'qemu-shutdown');
    expect(shutdown).toMatchObject({ reason: 'migrated', instanceUuid: UUID, timeMs: Date.UTC(2026, 2, 10, 11, 35, 9, 402) });
    expect(lv.find((e) => e.source === 'libvirt-qemu' && e.event === 'qemu-incoming')).toMatchObject({ incoming: 'defer', instanceUuid: UUID });

    const stats = source!.stats();
    const novaStats = stats.find((s) => s.kind === 'nova-compute')!;
    expect(novaStats).toMatchObject({ host: 'compute-1', linesRead: 17 + 3, unparseable: 2, truncated: 1, rotations: 0 });
    expect(novaStats.matched.get('progress')).toBe(3);
    expect(novaStats.matched.get('lifecycle')).toBe(3);
    expect(novaStats.newestLineMs).toBe(Date.UTC(2026, 2, 10, 11, 40, 1, 0));
    const c1 = stats.find((s) => s.kind === 'libvirt-qemu' && s.host === 'compute-1')!;
    expect(c1.matched.get('qemu-shutdown')).toBe(1);

    renameSync(nova, `${nova}.1`);
    writeFileSync(nova, '2026-03-10 13:00:00.000 12345 INFO nova.virt.libvirt.driver [-] [instance: 0b5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f] Migration operation was cancelled\n');
    await waitFor('the line of the new file', () => events.length === 20);
    expect(source!.stats().find((s) => s.kind === 'nova-compute')).toMatchObject({ rotations: 1, linesRead: 21 });
    expect(source!.positions().map((p) => [p.host, p.path]).sort()).toEqual([
      ['compute-1', qemuSrc],
      ['compute-1', nova],
      ['compute-2', qemuDst],
    ]);
    expect(source!.health()).toEqual(new Map([['compute-1', true], ['compute-2', true]]));
  });

  it('a file that cannot be read marks its host down; the other host is not stopped by it', async () => {
    const bad = join(dir, 'is-a-directory.log');
    mkdirSync(bad);
    const good = join(dir, 'nova-compute.log');
    writeFileSync(good, '');
    const events: LogEvent[] = [];
    await start(
      [
        { host: 'broken', path: bad, kind: 'nova-compute', timezone: 'UTC' },
        { host: 'fine', path: good, kind: 'nova-compute', timezone: 'UTC' },
      ],
      events,
    );
    appendFileSync(good, fixture('nova-compute.20.0-train.src.log'));
    await waitFor('3 events', () => events.length === 3);
    await waitFor('broken down', () => source!.health().get('broken') === false);
    expect(source!.health().get('fine')).toBe(true);
  });
});
