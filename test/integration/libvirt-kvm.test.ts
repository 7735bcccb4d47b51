/**
 * Which accelerator libvirt's domains get in the tests, against a real libvirtd (started once per
 * run by test/global-setup.ts). libvirt starts QEMU as its own user, so a /dev/kvm that root can
 * open may still be closed to it (no udev: root:root 0600); the helpers must see that.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { missingTools, needsRoot, requireCapability, requireEnvironment } from '../helpers/env.js';
import { domainXml, libvirtKvmProblem, libvirtQemuAccount, virsh, type DomainAccel } from '../helpers/libvirtd.js';

const workDir = mkdtempSync(join(tmpdir(), 'lme-libvirt-kvm-'));
// libvirt's QEMU user must reach the device nodes made below.
chmodSync(workDir, 0o755);

/** Starts a paused transient domain, asks its QEMU whether KVM is on, and destroys it. */
async function kvmEnabledIn(accel: DomainAccel): Promise<boolean> {
  const name = `lme-accel-${accel}-${process.pid}`;
  const xml = join(workDir, `${name}.xml`);
  writeFileSync(xml, domainXml(name, '', accel));
  await virsh('create', xml, '--paused');
  try {
    const { stdout } = await virsh('qemu-monitor-command', '--domain', name, '--cmd', JSON.stringify({ execute: 'query-kvm' }));
    return (JSON.parse(stdout) as { return: { enabled: boolean } }).return.enabled;
  } finally {
    await virsh('destroy', '--domain', name).catch(() => undefined);
    rmSync(join('/var/log/libvirt/qemu', `${name}.log`), { force: true });
  }
}

/** A character device with /dev/kvm's numbers, owner and mode of our choosing. */
function kvmNode(file: string, gid: number, mode: number): string {
  const path = join(workDir, file);
  const { rdev } = statSync('/dev/kvm');
  execFileSync('mknod', [path, 'c', String(Math.floor(rdev / 256)), String(rdev % 256)]);
  chownSync(path, 0, gid);
  chmodSync(path, mode);
  return path;
}

const kvmGid = (): number => Number(execFileSync('getent', ['group', 'kvm'], { encoding: 'utf8' }).split(':')[2]);

describe.runIf(requireEnvironment(missingTools('virsh', 'libvirtd', 'qemu-system-x86_64', 'runuser', 'mknod'), needsRoot()))('libvirt domains and KVM', () => {
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  it("gives libvirt's QEMU user a /dev/kvm it can open (scripts/setup), and its domains run on KVM", async (ctx) => {
    requireCapability(ctx, libvirtKvmProblem());
    expect(domainXml('x')).toContain("<domain type='kvm'>");
    expect(await kvmEnabledIn('kvm')).toBe(true);
  });

  it("names the cause when libvirt's QEMU user cannot open the KVM device", (ctx) => {
    requireCapability(ctx, statSync('/dev/kvm', { throwIfNoEntry: false }) ? null : 'no /dev/kvm on this machine');
    const { user } = libvirtQemuAccount();
    const closed = kvmNode('kvm-root-0600', 0, 0o600);
    const problem = libvirtKvmProblem(closed);
    expect(problem).toContain(`libvirt's QEMU user ${user} cannot open ${closed}`);
    expect(problem).toContain('mode 0600');
    expect(problem).toContain('Permission denied');
    // The same device as Debian's udev rule leaves it: group kvm, 0660.
    expect(libvirtKvmProblem(kvmNode('kvm-kvm-0660', kvmGid(), 0o660))).toBeNull();
    expect(libvirtKvmProblem(join(workDir, 'absent'))).toContain('does not exist');
  });

  it('runs a TCG domain, the fallback where KVM cannot be had', async () => {
    expect(domainXml('x', '', 'tcg')).toContain("<domain type='qemu'>");
    expect(await kvmEnabledIn('tcg')).toBe(false);
  });
});
