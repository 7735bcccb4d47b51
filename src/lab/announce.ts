import type { QmpSession } from '../sources/qmp/client.js';

/**
 * Whether a migration destination announces the VM once it runs there. QEMU does, by default,
 * `announce-rounds` times: a RARP from the NIC's MAC, and for virtio-net a request to the guest,
 * which then sends gratuitous ARP (whatever its arp_notify sysctl says). Either updates the
 * bridges' forwarding tables, so pings resume within a probe or two.
 *
 * With 0 rounds nothing is announced, as when the announcements are sent before the destination
 * port is wired (neutron's late port binding): the LAN keeps sending the VM's frames to the
 * source host until an ARP exchange happens to start from the VM or its peer. That is the
 * post-copy outage of the study. Set on the destination before `migrate-incoming`.
 */

/** QEMU 7.2's default number of announcement rounds (`query-migrate-parameters`). */
export const QEMU_DEFAULT_ANNOUNCE_ROUNDS = 5;

export async function setAnnounceRounds(destination: QmpSession, rounds: number): Promise<void> {
  await destination.execute('migrate-set-parameters', { 'announce-rounds': rounds });
}
