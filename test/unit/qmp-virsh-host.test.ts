/**
 * The virsh session and libvirt discovery on this machine's host, against a stand-in virsh (a
 * shell script that answers as virsh does), so the one host path is checked without libvirtd.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalHost } from '../../src/hosts/local.js';
import { listDomains } from '../../src/sources/qmp/libvirt-discovery.js';
import { isQemuGone, openQmpSession } from '../../src/sources/qmp/transports.js';
import { VirshError, VirshQmpSession } from '../../src/sources/qmp/virsh.js';
import { rejection } from '../helpers/rejection.js';

const dir = mkdtempSync(join(tmpdir(), 'lme-fake-virsh-'));
const virshPath = join(dir, 'virsh');
// qemu-monitor-event prints one STOP event (once open() has resolved) and waits; qemu-monitor-command answers query-status
// for domain "vm1" and fails as virsh does for any other; `list --name` lists two domains.
writeFileSync(
  virshPath,
  `#!/bin/sh
case "$*" in
  *"list --name"*) printf 'vm1\\nvm 2\\n\\n' ;;
  *qemu-monitor-event*"--domain vm1 "*) sleep 0.5; echo "event STOP at 1795641411.211999 for domain 'vm1': <null>"; exec sleep 30 ;;
  *qemu-monitor-event*) exec sleep 30 ;;
  *qemu-monitor-command*"--domain vm1 "*) echo '{"return":{"status":"running","running":true},"id":"libvirt-1"}' ;;
  *) echo "error: failed to get domain '$3'" >&2; exit 1 ;;
esac
`,
);
chmodSync(virshPath, 0o755);
const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('virsh on a host', () => {
  it('runs commands and follows events through the host; close() ends the event process', async () => {
    const session = await VirshQmpSession.open({ domain: 'vm1', virshPath }, { host: new LocalHost('hv1') });
    const event = new Promise((resolve) => session.once('event', resolve));
    expect(await session.execute('query-status')).toEqual({ status: 'running', running: true });
    expect(await event).toEqual({ event: 'STOP', timestamp: { seconds: 1795641411, microseconds: 211999 } });
    const pid = session.eventStreamPid!;
    expect(isAlive(pid)).toBe(true);
    await session.close();
    expect(isAlive(pid)).toBe(false);
    expect((await rejection(session.execute('query-status'))).code).toBe('LME_QMP_CLOSED');
  });

  it('a domain virsh does not know is LME_VIRSH_FAILED with its stderr, and QEMU gone', async () => {
    const direct = await rejection(VirshQmpSession.open({ domain: 'gone', virshPath }));
    expect(direct).toBeInstanceOf(VirshError);
    expect(direct.message).toContain("failed to get domain 'gone'");
    const viaTransport = await rejection(openQmpSession({ kind: 'virsh', domain: 'gone', virshPath }));
    expect(viaTransport.code).toBe('LME_QMP_CONNECT');
    expect(isQemuGone(viaTransport)).toBe(true);
  });

  it('a virsh that cannot run is LME_VIRSH_FAILED naming ENOENT', async () => {
    const err = await rejection(VirshQmpSession.open({ domain: 'vm1', virshPath: join(dir, 'no-virsh') }));
    expect(err.code).toBe('LME_VIRSH_FAILED');
    expect(err.message).toContain('ENOENT');
  });

  it('libvirt discovery lists the domains through the host', async () => {
    expect(await listDomains(new LocalHost('hv1'), virshPath, 'qemu:///system', 5000)).toEqual(['vm1', 'vm 2']);
  });
});
