/** Announcement frames closer than this are one round (QEMU's RARP, and the guest's ARP it asks for). */
export const ROUND_GAP_MS = 25;

/** Rounds among announcement times (in order): clusters less than ROUND_GAP_MS apart. Pure. */
export function announcementRounds(times: readonly number[]): number {
  let rounds = 0;
  let last = -Infinity;
  for (const at of times) {
    if (at - last >= ROUND_GAP_MS) rounds += 1;
    last = at;
  }
  return rounds;
}
