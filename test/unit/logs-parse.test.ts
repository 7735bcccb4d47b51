import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseNovaLine, type NovaParse } from '../../src/sources/logs/nova-parse.js';
import { parseOsloLine } from '../../src/sources/logs/oslo-line.js';
import { parseLibvirtLine } from '../../src/sources/logs/libvirt-parse.js';
import { parseTimeZone } from '../../src/config/timezone.js';
import { LivemigError } from '../../src/errors.js';

const UTC = parseTimeZone('UTC');
const UUID = '0b5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f';

function fixtureLines(name: string): string[] {
  const text = readFileSync(new URL(`../fixtures/logs/${name}`, import.meta.url), 'utf8');
  return text.split('\n').slice(0, text.endsWith('\n') ? -1 : undefined);
}

function parsed(name: string): NovaParse[] {
  return fixtureLines(name).map((line) => parseNovaLine(line, UTC));
}

/** `kind` of each event, `state` for lifecycle events; `.` for a non-event line, `~` for a continuation. */
function eventTrail(name: string): string[] {
  return parsed(name).map((p) => {
    if (p.kind === 'event') return p.event.kind === 'lifecycle' ? `lifecycle:${p.event.state}` : p.event.kind;
    if (p.kind === 'other') return '.';
    if (p.kind === 'continuation') return '~';
    return `unparseable:${p.reason}`;
  });
}

describe('nova-compute fixtures, one per release family', () => {
  it.each([
    ['nova-compute.2014.1-icehouse.src.log', ['.', '.', 'lifecycle:Paused', 'post-migration-started', 'success', '.', 'lifecycle:Stopped']],
    ['nova-compute.2014.1-icehouse.dst.log', ['lifecycle:Started', 'lifecycle:Resumed', 'post-operation-started']],
    ['nova-compute.2014.2-juno.src.log', ['.', 'failure', 'manager-failure', '~', '~', '~', '~', 'lifecycle:Resumed']],
    ['nova-compute.2015.1-kilo.src.log', ['monitoring-started', '.', 'progress', 'progress', 'completed', 'post-migration-started', 'success', 'monitoring-done']],
    ['nova-compute.12.0-liberty.src.log', ['monitoring-started', 'downtime-step', 'progress', '.', 'progress-timeout', 'completion-timeout', 'cancelled']],
    ['nova-compute.13.0-mitaka.src.log', ['downtime-step', 'aborted']],
    ['nova-compute.14.0-newton.src.log', ['progress', 'postcopy-switch', 'postcopy-switch-failed']],
    ['nova-compute.18.0-rocky.src.log', ['pre-live-migration', 'postcopy-switch', 'lifecycle:Postcopy started', 'lifecycle:Migration completed', 'post-operation-failed', '~', '~', '~']],
    ['nova-compute.20.0-train.src.log', ['progress', 'progress', 'completed']],
    [
      'nova-compute.33.0-2026.1.src.log',
      [
        '.', 'pre-live-migration', 'monitoring-started', '.', 'downtime-step', 'progress', 'progress', 'completion-timeout',
        'postcopy-switch', 'lifecycle:Postcopy started', 'progress', 'lifecycle:Migration completed', 'completed',
        'post-migration-started', 'success', 'monitoring-done', 'lifecycle:Stopped',
      ],
    ],
    ['nova-compute.33.0-2026.1.dst.log', ['.', '.', 'lifecycle:Started', 'lifecycle:Resumed', 'post-operation-started']],
  ])('%s', (fixture, expected) => {
    expect(eventTrail(fixture)).toEqual(expected);
  });

  it('every event line of every fixture names the instance', () => {
    for (const name of ['2014.1-icehouse.src', '2014.2-juno.src', '2015.1-kilo.src', '12.0-liberty.src', '18.0-rocky.src', '33.0-2026.1.src', '33.0-2026.1.dst']) {
      for (const p of parsed(`nova-compute.${name}.log`)) {
        if (p.kind === 'event') expect(p.instanceUuid, name).toBe(UUID);
      }
    }
  });

  it('reads the 2026.1 progress line: memory and disk, elapsed seconds, DEBUG suffix stripped', () => {
    const p = parsed('nova-compute.33.0-2026.1.src.log')[6];
    expect(p).toMatchObject({
      kind: 'event',
      level: 'DEBUG',
      logger: 'nova.virt.libvirt.driver',
      requestId: 'req-6f0e2a1b-3c4d-4e5f-8a9b-0c1d2e3f4a5b',
      timeMs: Date.UTC(2026, 2, 10, 12, 34, 57, 240),
      event: {
        kind: 'progress',
        elapsedSeconds: 5,
        memory: { percentRemaining: 45, processed: 2147483648, remaining: 1932735283, total: 4294967296 },
        disk: { percentRemaining: 100, processed: 0, remaining: 0, total: 0 },
      },
    });
  });

  it('reads the Kilo..Stein progress line (memory only, `;` before the bytes)', () => {
    const p = parsed('nova-compute.2015.1-kilo.src.log')[3];
    expect(p).toMatchObject({ kind: 'event', event: { kind: 'progress', elapsedSeconds: 5, memory: { percentRemaining: 61, processed: 1717986918, remaining: 2621440000, total: 4294967296 } } });
    expect(p?.kind === 'event' && p.event.kind === 'progress' ? p.event.disk : 'not progress').toBe(undefined);
  });

  it('reads downtime steps in the Liberty (`46ms`) and Mitaka+ (`46 ms`) wording', () => {
    expect(parsed('nova-compute.12.0-liberty.src.log')[1]).toMatchObject({ event: { kind: 'downtime-step', downtimeMs: 46, afterSeconds: 0 } });
    expect(parsed('nova-compute.13.0-mitaka.src.log')[0]).toMatchObject({ event: { kind: 'downtime-step', downtimeMs: 46, afterSeconds: 0 } });
  });

  it('reads destination names, pre-live-migration timing, failure reasons and timeouts', () => {
    expect(parsed('nova-compute.18.0-rocky.src.log')[0]).toMatchObject({ event: { kind: 'pre-live-migration', seconds: 1.52, destination: 'compute-2' } });
    expect(parsed('nova-compute.18.0-rocky.src.log')[4]).toMatchObject({ level: 'ERROR', event: { kind: 'post-operation-failed', destination: 'compute-2' } });
    expect(parsed('nova-compute.33.0-2026.1.src.log')[14]).toMatchObject({ event: { kind: 'success', destination: 'compute-2' } });
    expect(parsed('nova-compute.2014.2-juno.src.log')[1]).toMatchObject({
      level: 'ERROR',
      requestId: 'req-6f0e2a1b-3c4d-4e5f-8a9b-0c1d2e3f4a5b',
      event: { kind: 'failure', reason: 'operation failed: migration job: unexpectedly failed' },
    });
    expect(parsed('nova-compute.33.0-2026.1.src.log')[7]).toMatchObject({ level: 'WARNING', event: { kind: 'completion-timeout', afterSeconds: 10 } });
    expect(parsed('nova-compute.14.0-newton.src.log')[2]).toMatchObject({ event: { kind: 'postcopy-switch-failed', reason: expect.stringContaining('post-copy can only be started') } });
  });

  it('takes the Icehouse lifecycle event state from its number and the instance from the text', () => {
    expect(parsed('nova-compute.2014.1-icehouse.src.log')[2]).toMatchObject({ instanceUuid: UUID, event: { kind: 'lifecycle', state: 'Paused' } });
    expect(parseNovaLine('2014-05-12 10:00:04.303 2345 INFO nova.compute.manager [-] Lifecycle event 9 on VM 0b5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f', UTC).kind).toBe('other');
  });

  it('never takes a traceback line for an event, even when it quotes one', () => {
    const juno = parsed('nova-compute.2014.2-juno.src.log');
    expect(juno[5]).toEqual({ kind: 'continuation', timeMs: Date.UTC(2014, 10, 3, 8, 15, 9, 121) });
    const current = '2026-03-10 12:35:09.310 12345 ERROR nova.compute.manager [instance: 0b5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f] Migration operation has completed';
    expect(parseNovaLine(current, UTC).kind).toBe('continuation');
  });
});

describe('oslo.log layout', () => {
  const line = '2025-03-10 12:34:56.789 12345 INFO nova.virt.libvirt.driver [-] Migration operation has completed';

  it('reads the stamp in the configured zone', () => {
    expect(parseOsloLine(line, UTC)).toMatchObject({ timeMs: Date.UTC(2025, 2, 10, 12, 34, 56, 789), pid: 12345, level: 'INFO' });
    expect(parseOsloLine(line, parseTimeZone('+02:00'))).toMatchObject({ timeMs: Date.UTC(2025, 2, 10, 10, 34, 56, 789) });
    expect(parseOsloLine(line, parseTimeZone('-0530'))).toMatchObject({ timeMs: Date.UTC(2025, 2, 10, 18, 4, 56, 789) });
    // Berlin is UTC+1 on 10 March 2025 and UTC+2 in summer.
    expect(parseOsloLine(line, parseTimeZone('Europe/Berlin'))).toMatchObject({ timeMs: Date.UTC(2025, 2, 10, 11, 34, 56, 789) });
    expect(parseOsloLine(line.replace('2025-03-10', '2025-07-10'), parseTimeZone('Europe/Berlin'))).toMatchObject({ timeMs: Date.UTC(2025, 6, 10, 10, 34, 56, 789) });
    expect(parseOsloLine(line, parseTimeZone('America/New_York'))).toMatchObject({ timeMs: Date.UTC(2025, 2, 10, 16, 34, 56, 789) });
  });

  it('refuses a time zone it does not know, naming it', () => {
    expect(() => parseTimeZone('Mars/Olympus')).toThrow(LivemigError);
    expect(() => parseTimeZone('Mars/Olympus')).toThrow(/Mars\/Olympus/);
    expect(() => parseTimeZone('+15:00')).toThrow(/out of range/);
  });

  it('reads the contexts of each oslo.log generation', () => {
    const req = 'req-6f0e2a1b-3c4d-4e5f-8a9b-0c1d2e3f4a5b';
    const glob = 'req-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
    const at = (ctx: string) => parseOsloLine(`2025-03-10 12:34:56.789 1 INFO n [${ctx}] msg`, UTC);
    expect(at(`${req} user tenant`)).toMatchObject({ requestId: req, message: 'msg' });
    expect(at(`${req} None`)).toMatchObject({ requestId: req });
    expect(at(`None ${req} u p - - default default`)).toMatchObject({ requestId: req });
    expect(at(`${glob} ${req} u p - - default default`)).toMatchObject({ requestId: req, globalRequestId: glob });
    expect(at('-')).toMatchObject({ kind: 'line', message: 'msg' });
    expect(at('-')).not.toHaveProperty('requestId');
  });

  it('says what is wrong with a line outside the layout', () => {
    expect(parseOsloLine('Traceback (most recent call last):', UTC)).toMatchObject({ kind: 'unparseable', reason: expect.stringContaining('time stamp') });
    expect(parseOsloLine('2025-13-10 12:34:56.789 1 INFO n [-] m', UTC)).toMatchObject({ kind: 'unparseable', reason: 'time stamp out of range' });
    expect(parseOsloLine('2025-03-10 12:34:56.789 1 INFO n [req-x never closed', UTC)).toMatchObject({ kind: 'unparseable' });
  });

  it('accepts CRLF line ends and a stamp without milliseconds', () => {
    expect(parseNovaLine('2025-03-10 12:34:56 1 INFO n [-] Migration operation has completed\r', UTC)).toMatchObject({ kind: 'event', timeMs: Date.UTC(2025, 2, 10, 12, 34, 56), event: { kind: 'completed' } });
  });
});

describe('libvirt per-domain QEMU log', () => {
  it('destination: start, then a command line with -uuid and -incoming', () => {
    const lines = fixtureLines('libvirt-qemu.instance-0000002a.dst.log').map(parseLibvirtLine);
    expect(lines[0]).toEqual({ kind: 'starting', timeMs: Date.UTC(2026, 2, 10, 11, 34, 51, 912), libvirtVersion: '11.0.0', qemuVersion: '10.0.2Debian 1:10.0.2+ds-1' });
    expect(lines.filter((l) => l.kind === 'command-line')).toEqual([
      { kind: 'command-line', name: 'instance-0000002a' },
      { kind: 'command-line', uuid: UUID },
      { kind: 'command-line', incoming: 'defer' },
    ]);
    expect(lines[11]).toMatchObject({ kind: 'message', timeMs: Date.UTC(2026, 2, 10, 11, 34, 51, 998), text: expect.stringContaining('warning') });
  });

  it('source: one-line command line, then shutting down with reason=migrated', () => {
    const lines = fixtureLines('libvirt-qemu.instance-0000002a.src.log').map(parseLibvirtLine);
    expect(lines[1]).toEqual({ kind: 'command-line', name: 'instance-0000002a', uuid: UUID });
    expect(lines[2]).toEqual({ kind: 'shutdown', timeMs: Date.UTC(2026, 2, 10, 11, 35, 9, 402), reason: 'migrated' });
  });

  it('honours the offset in the stamp', () => {
    expect(parseLibvirtLine('2026-03-10 12:35:09.402+0100: shutting down, reason=destroyed')).toEqual({ kind: 'shutdown', timeMs: Date.UTC(2026, 2, 10, 11, 35, 9, 402), reason: 'destroyed' });
  });
});

describe('parsers never throw', () => {
  const stamp = fc.constantFrom('2026-03-10 12:34:56.789 ', '2014-05-12 10:00:04 ', '2026-03-10T11:34:51.998471Z qemu-system-x86_64: ', '');
  const pieces = fc.constantFrom(
    '123 ', 'INFO ', 'DEBUG ', 'TRACE ', 'nova.virt.libvirt.driver ', '[-] ', '[req-6f0e2a1b-3c4d-4e5f-8a9b-0c1d2e3f4a5b None] ',
    `[instance: ${UUID}] `, 'Migration running for ', '5 secs, memory 45% remaining', ' (bytes processed=', '99999999999999999999999',
    ', remaining=', ', total=', ')', '; disk ', 'VM ', 'Paused', ' (Lifecycle Event)', 'Lifecycle event ', ' on VM ',
    'Increasing downtime to ', 'ms after ', ' sec elapsed time', 'Migrating instance to ', ' finished successfully.', '-uuid ', '-incoming ',
    'shutting down, reason=', '+0000: ', '\r', '\u0000', '\uffff', ']', '[',
  );
  const line = fc.oneof(fc.string({ unit: 'binary' }), fc.tuple(stamp, fc.array(fc.oneof(pieces, fc.string()), { maxLength: 12 })).map(([s, p]) => s + p.join('')));
  const zones = [UTC, parseTimeZone('Europe/Berlin'), parseTimeZone('+05:45')];

  it('parseNovaLine and parseLibvirtLine return a record for any input', () => {
    fc.assert(
      fc.property(line, fc.nat(2), (text, z) => {
        const nova = parseNovaLine(text, zones[z]!);
        expect(['event', 'other', 'continuation', 'unparseable']).toContain(nova.kind);
        if (nova.kind !== 'unparseable') expect(Number.isFinite(nova.timeMs)).toBe(true);
        const libvirt = parseLibvirtLine(text);
        expect(['starting', 'command-line', 'shutdown', 'message', 'other', 'unparseable']).toContain(libvirt.kind);
      }),
      { numRuns: 3000 },
    );
  });
});
