import { randomUUID } from 'node:crypto';
import { LivemigError } from '../../errors.js';
import type { LabVmSpec } from '../engine.js';
import { migrateEachOnce, nthLanAddress } from './common.js';
import type { Scenario } from './types.js';

/**
 * The study's post-copy outage: a VM that answers ping (the Linux guest, pinged every 100 ms
 * from the lan namespace) migrates hybrid while nothing announces it at the destination
 * (announce-rounds 0, arp_notify off in the guest), so the LAN's bridges keep sending its
 * frames to the source host after the switch-over until the guest happens to send a frame of
 * its own: seconds in some runs, under one in others (measured here). So that every run shows
 * a post-copy outage, the LAN also loses the VM for 2 s from 1.5 s after the destination's
 * RESUME (a blackhole route in the lan namespace: the stale forwarding entry of a switch, made
 * exact). Its dirty set (32 MiB) is more than pre-copy can finish with, and post-copy runs at
 * 8 MiB/s (about 5 s) so the outage falls inside it and the live gauge has time to show it.
 * With --count N, N such VMs (outage-1..N, on addresses .10, .11, ...: other MACs, so the LAN
 * keeps nothing from the one before) are booted and migrated in turn, each once.
 */
export const OUTAGE_VM_ADDRESS = '198.19.0.10';
export const OUTAGE_POSTCOPY_BANDWIDTH = 8 * 1024 * 1024;
export const OUTAGE_BLACKHOLE = { delayMs: 1_500, lengthMs: 2_000 };

/** Addresses .10 to .99 of the lab's LAN. */
export const OUTAGE_MAX_COUNT = 90;

export function outage(count = 1): Scenario {
  if (count > OUTAGE_MAX_COUNT) throw new LivemigError('LME_FLAG_INVALID', ['--count', `outage runs at most ${OUTAGE_MAX_COUNT} VMs (one address each), not ${count}`]);
  const vms = Array.from({ length: count }, (_, i) => outageVm(i));
  return {
    name: 'outage',
    vms,
    migrations: vms.length,
    needsLinuxGuest: true,
    announceRounds: 0,
    postcopyBandwidth: OUTAGE_POSTCOPY_BANDWIDTH,
    postcopyBlackhole: OUTAGE_BLACKHOLE,
    needsQmpEngine:
      'it turns the destination QEMU\'s announcements off over QMP and pings the VM on the lab\'s LAN, ' +
      'but libvirt owns its domains\' monitors and the libvirt engine\'s guest has user-mode networking (nothing to ping)',
    notes: [
      'the Linux guest under TCG without announcements at the destination (announce-rounds 0, arp_notify 0); post-copy at 8 MiB/s; ping every 100 ms from the lan namespace',
      'the LAN loses the VM for 2.0 s from 1.5 s after RESUME (blackhole route in the lan namespace)',
      ...(count > 1 ? [`${count} such VMs (outage-1..${count}), each on its own address, migrated in turn`] : []),
    ],
    run: (ctx) => migrateEachOnce(ctx, vms, (spec) => (count === 1 ? 'no announcement' : `no announcement (${spec.name})`)),
  };
}

/** The i-th outage VM (from 0): outage-1 on OUTAGE_VM_ADDRESS, then the next addresses. */
function outageVm(i: number): LabVmSpec {
  return {
    name: `outage-${i + 1}`,
    flavor: 's',
    memoryMiB: 128,
    fillMiB: 16,
    stressedMiB: 32,
    instanceUuid: randomUUID(),
    guest: 'linux',
    labels: { stressed_mib: '32' },
    pingAddress: nthLanAddress(OUTAGE_VM_ADDRESS, i),
    arpNotify: false,
  };
}
