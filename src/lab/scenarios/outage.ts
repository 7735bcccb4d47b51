import { randomUUID } from 'node:crypto';
import type { LabVmSpec } from '../engine.js';
import { migrateEachOnce } from './common.js';
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
 */
export const OUTAGE_VM_ADDRESS = '198.19.0.10';
export const OUTAGE_POSTCOPY_BANDWIDTH = 8 * 1024 * 1024;
export const OUTAGE_BLACKHOLE = { delayMs: 1_500, lengthMs: 2_000 };

export function outage(): Scenario {
  const vm: LabVmSpec = {
    name: 'outage-1',
    flavor: 's',
    memoryMiB: 128,
    fillMiB: 16,
    stressedMiB: 32,
    instanceUuid: randomUUID(),
    guest: 'linux',
    labels: { stressed_mib: '32' },
    pingAddress: OUTAGE_VM_ADDRESS,
    arpNotify: false,
  };
  return {
    name: 'outage',
    vms: [vm],
    migrations: 1,
    needsLinuxGuest: true,
    announceRounds: 0,
    postcopyBandwidth: OUTAGE_POSTCOPY_BANDWIDTH,
    postcopyBlackhole: OUTAGE_BLACKHOLE,
    notes: [
      'the Linux guest under TCG without announcements at the destination (announce-rounds 0, arp_notify 0); post-copy at 8 MiB/s; ping every 100 ms from the lan namespace',
      'the LAN loses the VM for 2.0 s from 1.5 s after RESUME (blackhole route in the lan namespace)',
    ],
    run: (ctx) => migrateEachOnce(ctx, [vm], () => 'no announcement'),
  };
}
