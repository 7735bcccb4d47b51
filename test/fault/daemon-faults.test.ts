/**
 * libvirtd, sshd and QEMU killed mid-migration: what each record says (issue 13). Real QEMU, a
 * real sshd, the lab's private libvirt daemons and the exporter as a user runs it; the cases are
 * in daemon-faults.ts. Each case must leave exactly one record of its migration, whose result is
 * what really happened there (and, where the source QEMU lived to report them, QEMU's bytes).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { runDaemonFaults, type DaemonFaultResult, type FaultName } from './daemon-faults.js';

/** What each fault really does to its migration: the record must say so. */
const EXPECTED: Record<FaultName, { result: string; mode: string; qemuBytes: boolean; timeoutMs: number }> = {
  // The destination has nothing to run without its source: its incoming side fails and it exits.
  'qemu-source-precopy': { result: 'failed', mode: 'precopy', qemuBytes: false, timeoutMs: 60_000 },
  // The source's stream breaks; the guest runs on there.
  'qemu-destination-precopy': { result: 'failed', mode: 'precopy', qemuBytes: false, timeoutMs: 60_000 },
  // The guest ran at the destination: the source pauses for good (closed by the paused timeout).
  'qemu-destination-postcopy': { result: 'postcopy-paused', mode: 'hybrid', qemuBytes: false, timeoutMs: 60_000 },
  // The pages left at the source are lost: the destination pauses for good.
  'qemu-source-postcopy': { result: 'postcopy-paused', mode: 'hybrid', qemuBytes: false, timeoutMs: 60_000 },
  // Only the exporter's path to the monitors is cut: QEMU completes, and the record has its bytes.
  sshd: { result: 'completed', mode: 'hybrid', qemuBytes: true, timeoutMs: 75_000 },
  'sshd-restart': { result: 'completed', mode: 'hybrid', qemuBytes: true, timeoutMs: 75_000 },
  // virsh's migration dies with the source libvirtd: the destination is torn down, the guest stays home.
  'libvirtd-source': { result: 'failed', mode: 'precopy', qemuBytes: false, timeoutMs: 100_000 },
};

const TOOLS = ['qemu-system-x86_64', 'nasm', '/usr/sbin/sshd', 'ssh-keygen', 'libvirtd', 'virtlogd', 'virsh', 'ip', 'unshare', 'runuser'];

describe.runIf(requireEnvironment(missingTools(...TOOLS), needsRoot()))('daemons killed mid-migration: one record each, saying what happened', () => {
  const results: DaemonFaultResult[] = [];

  afterAll(() => {
    if (results.length === 0) return;
    console.log(
      results
        .map((r) => `${r.fault} | ${r.what} | records ${r.records} | ${r.result} | ${r.mode} | ${r.says} | truth: ${r.truth} | ${r.ok ? 'ok' : 'NOT OK'} | ${r.seconds} s`)
        .join('\n'),
    );
  });

  for (const [fault, expected] of Object.entries(EXPECTED) as [FaultName, (typeof EXPECTED)[FaultName]][]) {
    it(`${fault}: ${expected.result}`, async () => {
      const [r] = await runDaemonFaults({ only: [fault], log: (line) => console.log(line) });
      if (!r) throw new Error('no result');
      results.push(r);
      const story = JSON.stringify(r, null, 2);
      // The fault did what it was meant to (else the case tests nothing) ...
      expect(r.truthResult, story).toBe(expected.result);
      // ... and the exporter made one record of it, saying so.
      expect(r.records, story).toBe(1);
      expect(r.result, story).toBe(r.truthResult);
      expect(r.mode, story).toBe(expected.mode);
      if (expected.qemuBytes) {
        expect(r.qemuTransferredBytes, story).toBeGreaterThan(0);
        expect(r.transferredBytes, story).toBe(r.qemuTransferredBytes);
      }
      // Reconnected, the libvirt source looks at the interrupted job again: the source's own domain
      // state decides, not the stale timeout (10 s here, an hour by default).
      if (fault === 'libvirtd-source') expect(r.says, story).toMatch(/result from "libvirt:source domain state/);
      expect(r.ok, story).toBe(true);
    }, expected.timeoutMs);
  }
});
