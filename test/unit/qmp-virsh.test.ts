import { describe, it, expect } from 'vitest';
import { monitorCommandArgs, monitorEventArgs, parseVirshEventLine, VirshError } from '../../src/sources/qmp/virsh.js';

/** Lines printed by the installed virsh 9.0.0 (Debian 12) for a real domain, as captured. */
const DOMAIN = `lme test 'q" dom`;
const CAPTURED = {
  resume: `event RESUME at 1795641411.211999 for domain 'lme test 'q" dom': <null>`,
  shutdown: `event SHUTDOWN at 1795641485.937235 for domain '--help': {"guest":false,"reason":"host-signal"}`,
  stampedStop: `2026-11-25 21:16:49.356+0000: event STOP for domain 'lme test 'q" dom': <null>`,
  stampedMigration: `2026-11-25 21:16:49.386+0000: event MIGRATION for domain 'lme test 'q" dom': {"status":"setup"}`,
};

describe('parseVirshEventLine', () => {
  it("reads QEMU's own time stamp and an event without data", () => {
    expect(parseVirshEventLine(CAPTURED.resume, DOMAIN)).toEqual({
      event: 'RESUME',
      timestamp: { seconds: 1795641411, microseconds: 211999 },
    });
  });

  it('reads the event data', () => {
    expect(parseVirshEventLine(CAPTURED.shutdown, '--help')).toEqual({
      event: 'SHUTDOWN',
      timestamp: { seconds: 1795641485, microseconds: 937235 },
      data: { guest: false, reason: 'host-signal' },
    });
  });

  it("reads virsh's --timestamp format (millisecond receipt time)", () => {
    expect(parseVirshEventLine(CAPTURED.stampedMigration, DOMAIN)).toEqual({
      event: 'MIGRATION',
      timestamp: { seconds: Date.UTC(2026, 10, 25, 21, 16, 49) / 1000, microseconds: 386000 },
      data: { status: 'setup' },
    });
    expect(parseVirshEventLine(CAPTURED.stampedStop, DOMAIN)?.event).toBe('STOP');
  });

  it('keeps leading zeros of the microseconds right', () => {
    expect(parseVirshEventLine(`event STOP at 1795641411.000042 for domain 'vm': <null>`)?.timestamp).toEqual({
      seconds: 1795641411,
      microseconds: 42,
    });
  });

  it('finds the end of a name holding the separator when the name is known', () => {
    const name = `odd': {"x":1} name`;
    const line = `event MIGRATION at 1.000002 for domain '${name}': {"status":"active"}`;
    expect(parseVirshEventLine(line, name)?.data).toEqual({ status: 'active' });
  });

  it('finds the details when the name is not known (domain given by UUID)', () => {
    expect(parseVirshEventLine(CAPTURED.resume)?.event).toBe('RESUME');
    expect(parseVirshEventLine(`event MIGRATION at 1.000002 for domain 'vm1': {"status":"active"}`)?.data).toEqual({ status: 'active' });
  });

  it.each([
    ['an empty line', ''],
    ['a virsh message', 'events received: 3'],
    ['broken details', `event STOP at 1.000001 for domain 'vm': {"status"`],
    ['no details', `event STOP at 1.000001 for domain 'vm'`],
  ])('returns null for %s', (_case, line) => {
    expect(parseVirshEventLine(line, 'vm')).toBeNull();
  });
});

describe('virsh argument arrays', () => {
  const target = { domain: '-rf; $(reboot) `x`', uri: 'qemu:///system', virshPath: '/usr/bin/virsh' };

  it('passes the domain and the command as single arguments, behind their options', () => {
    expect(monitorCommandArgs(target, { execute: 'query-migrate' })).toEqual([
      '-c',
      'qemu:///system',
      'qemu-monitor-command',
      '--domain',
      '-rf; $(reboot) `x`',
      '--cmd',
      '{"execute":"query-migrate"}',
    ]);
  });

  it('listens for events without --timestamp so the time is QEMU\'s own', () => {
    expect(monitorEventArgs({ domain: 'vm1', virshPath: 'virsh' })).toEqual(['qemu-monitor-event', '--domain', 'vm1', '--loop']);
  });
});

describe('VirshError', () => {
  it('names the command and carries the exit status and stderr', () => {
    const err = new VirshError('qemu-monitor-command query-status on domain "nodom"', "error: failed to get domain 'nodom'\n", 1);
    expect(err.code).toBe('LME_VIRSH_FAILED');
    expect(err.message).toBe(`virsh qemu-monitor-command query-status on domain "nodom" failed: exit status 1: error: failed to get domain 'nodom'`);
    expect(err.domainGone).toBe(true);
  });

  it('does not take other failures for a gone domain', () => {
    expect(new VirshError('x', 'error: failed to connect to the hypervisor', 1).domainGone).toBe(false);
  });
});
