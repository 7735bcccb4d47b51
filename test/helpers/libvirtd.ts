import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { libvirtKvmProblem, libvirtQemuAccount } from '../../src/lab/libvirt-accel.js';
import { canConnect, isAlive } from '../../src/lab/libvirt-daemons.js';

export { canConnect, isAlive };

export const run = promisify(execFile);
export const LIBVIRT_URI = 'qemu:///system';
export const LIBVIRT_SOCKET = '/run/libvirt/libvirt-sock';
const VIRTLOGD_SOCKET = '/run/libvirt/virtlogd-sock';

export function virsh(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run('virsh', ['-c', LIBVIRT_URI, ...args]);
}

export async function waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Starts virtlogd and libvirtd unless they already run; returns the PIDs started, so that only
 * those are stopped afterwards. Called once per test run (test/global-setup.ts), because two
 * test files starting and stopping the same daemons would race.
 */
export async function startLibvirtd(): Promise<number[]> {
  const started: number[] = [];
  for (const [name, socket] of [['virtlogd', VIRTLOGD_SOCKET], ['libvirtd', LIBVIRT_SOCKET]] as const) {
    if (await canConnect(socket)) continue;
    await run(name, ['-d']);
    await waitFor(() => canConnect(socket), `${name} socket ${socket}`);
    started.push(Number(readFileSync(`/run/${name}.pid`, 'utf8').trim()));
  }
  return started;
}

export async function stopDaemons(pids: number[]): Promise<void> {
  for (const pid of [...pids].reverse()) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      continue;
    }
    await waitFor(async () => !isAlive(pid), `daemon ${pid} to exit`);
  }
}

export function xmlEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

/** Whether libvirt's QEMU can use KVM: the lab's libvirt engine decides the same way. */
export { libvirtKvmProblem, libvirtQemuAccount };

export type DomainAccel = 'kvm' | 'tcg';

let chosenAccel: DomainAccel | undefined;
/** KVM when libvirt's QEMU can really use it, TCG otherwise; decided once per test file. */
export function libvirtAccel(): DomainAccel {
  chosenAccel ??= libvirtKvmProblem() === null ? 'kvm' : 'tcg';
  return chosenAccel;
}

/** A minimal transient domain: no disks, 64 MiB, qemu64 without pni/svm (lab-notes.md). */
export function domainXml(name: string, extraDevices = '', accel: DomainAccel = libvirtAccel()): string {
  return `<domain type='${accel === 'kvm' ? 'kvm' : 'qemu'}'>
  <name>${xmlEscape(name)}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <cpu mode='custom' match='exact' check='none'>
    <model fallback='allow'>qemu64</model>
    <feature policy='disable' name='pni'/>
    <feature policy='disable' name='svm'/>
  </cpu>
  <on_poweroff>destroy</on_poweroff>
  <devices>${extraDevices}</devices>
</domain>
`;
}
