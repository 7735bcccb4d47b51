/** What the frame watcher reports: the kinds of frame it tells apart, and one migration's capture (record.frames). */

/** What the frame watcher tells apart: QEMU's self-announce (RARP), a gratuitous ARP, any other frame of the guest's. */
export const FRAME_KINDS = ['rarp', 'garp', 'guest'] as const;
export type FrameKind = (typeof FRAME_KINDS)[number];

/** Frames this much before the destination's RESUME still count as after it (the two hosts' clocks). */
export const RESUME_SLACK_MS = 50;

/** What the destination's frame capture saw for one migration (record.frames). */
export interface FrameFigures {
  host: string;
  device: string;
  mac: string;
  /** When the capture ran (wall ms); stoppedAt null: it was still running when the record was patched. */
  startedAt: number;
  stoppedAt: number | null;
  /** Announcement frames (RARP, gratuitous ARP) after the capture began, in order (at most 64 kept). */
  announcements: { at: number; kind: 'rarp' | 'garp' }[];
  /** Clusters of announcement frames less than 25 ms apart: QEMU's rounds (a RARP, and the guest's ARP it asks for). */
  announcementRounds: number;
  /** The guest's first own frame (not an announcement) after the destination's RESUME, wall ms. */
  firstGuestFrameAt: number | null;
  /**
   * The first unicast frame to the VM's MAC on the device after RESUME (wall ms): the LAN's path
   * to the destination works from then on. null: none before the capture stopped; absent in
   * records of exporters that did not capture frames to the VM.
   */
  firstDeliveredAt?: number | null;
  /**
   * When unicast frames to the VM arrived after RESUME, as spans of frames less than the capture's
   * gap apart (two probe periods and 50 ms), at most 64: which parts of an outage the path led here.
   */
  deliveries?: { from: number; to: number }[];
  framesSeen: number;
  /** The line cap was reached: the capture stopped early. */
  truncated: boolean;
  /** Why the capture failed or could not start (tcpdump's words), null when it ran. */
  error: string | null;
  /** Where the figures came from (tcpdump's host, device and filter). */
  evidence: string;
}
