/**
 * One frame capture: tcpdump on a host's VM-facing device, for one VM's MAC, while that VM
 * migrates there. It keeps what the outage causes need (the announcements, when the guest
 * spoke, when frames to the VM arrived), not the frames. Bounded by tcpdump's capture filter,
 * by `-c maxFrames`, and by stop() at the record's close. A device that does not exist yet (the
 * destination's tap comes with its QEMU) is tried again every RETRY_MS until stopped.
 */
import { createInterface } from 'node:readline';
import type { Clock } from '../../clock.js';
import type { Host, HostProcess } from '../../hosts/host.js';
import { RESUME_SLACK_MS, type FrameFigures } from './types.js';
import { announcementRounds } from './rounds.js';
import { normalizeMac, parseTcpdumpLine, tcpdumpArgs, type CapturedFrame } from './tcpdump-line.js';

export const MAX_ANNOUNCEMENTS_KEPT = 64;
/** Times kept of the guest's own frames, and spans of frames to it: enough to find the first after RESUME. */
export const MAX_FRAME_TIMES_KEPT = 64;
const RETRY_MS = 500;

export interface FrameCaptureOptions {
  host: Host;
  device: string;
  mac: string;
  tcpdumpPath: string;
  maxFrames: number;
  /** Frames to the VM less than this apart are one span of `deliveries` (the ping period's business). */
  deliveryGapMs: number;
  clock: Clock;
  /** A line that is not a frame, or tcpdump's failure: counted and logged by the caller. */
  onProblem(reason: string): void;
}

export class FrameCapture {
  private process: HostProcess | null = null;
  private stopped = false;
  private retry: NodeJS.Timeout | null = null;
  private readonly startedAt: number;
  private stoppedAt: number | null = null;
  private readonly announcements: { at: number; kind: 'rarp' | 'garp' }[] = [];
  private readonly guestFrameTimes: number[] = [];
  private readonly deliveries: { from: number; to: number }[] = [];
  private framesSeen = 0;
  private truncated = false;
  private error: string | null = null;
  private running = false;

  private readonly mac: string;

  constructor(private readonly options: FrameCaptureOptions) {
    this.startedAt = options.clock.wallMs();
    this.mac = normalizeMac(options.mac) ?? options.mac;
    this.spawn();
  }

  /** Capturing now (tcpdump started and not ended). */
  get capturing(): boolean {
    return this.running;
  }

  /** The first frame of any kind from the VM seen (the live cause), wall ms. */
  get firstFrameAt(): number | null {
    const announced = this.announcements[0]?.at ?? null;
    const guest = this.guestFrameTimes[0] ?? null;
    if (announced === null) return guest;
    return guest === null ? announced : Math.min(announced, guest);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stoppedAt = this.options.clock.wallMs();
    if (this.retry) clearTimeout(this.retry);
    this.process?.kill();
  }

  /**
   * What the capture saw. Before RESUME the guest still runs on the source, and its broadcasts
   * (and the LAN's flooding) reach this device too: the guest's first frame and the first frame
   * to it count from `resumedAt` (when known) on.
   */
  figures(resumedAt: number | null = null): FrameFigures {
    const { host, device, mac, maxFrames } = this.options;
    const from = resumedAt === null ? -Infinity : resumedAt - RESUME_SLACK_MS;
    const firstFrom = (times: number[]): number | null => times.find((at) => at >= from) ?? null;
    const deliveries = this.deliveries.filter((d) => d.to >= from).map((d) => ({ ...d }));
    return {
      host: host.name,
      device,
      mac,
      startedAt: this.startedAt,
      stoppedAt: this.stoppedAt,
      announcements: this.announcements.map((a) => ({ ...a })),
      announcementRounds: announcementRounds(this.announcements.map((a) => a.at)),
      firstGuestFrameAt: firstFrom(this.guestFrameTimes),
      firstDeliveredAt: deliveries[0] ? Math.max(deliveries[0].from, from) : null,
      deliveries,
      framesSeen: this.framesSeen,
      truncated: this.truncated,
      error: this.error,
      evidence: `tcpdump on ${host.name} ${device}, frames from and to ${mac} (RARP, ARP, IPv4, IPv6, VLAN), at most ${maxFrames}`,
    };
  }

  private spawn(): void {
    const { host, device, mac, maxFrames, tcpdumpPath } = this.options;
    const child = host.spawn([tcpdumpPath, ...tcpdumpArgs(device, mac, maxFrames)]);
    this.process = child;
    this.running = true;
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 2048) stderr += chunk.toString('utf8');
    });
    createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => this.line(line));
    void child.exited.then(({ code, error }) => {
      this.running = false;
      if (this.stopped) return;
      if (code === 0) {
        // -c reached: tcpdump ends by itself.
        this.truncated = this.framesSeen >= maxFrames;
        return;
      }
      const why = error ?? lastLine(stderr) ?? `tcpdump exited with code ${code}`;
      if (/no such device|doesn't exist|that device is not up/i.test(why) && this.framesSeen === 0) {
        this.retry = setTimeout(() => this.spawn(), RETRY_MS);
        this.retry.unref?.();
        return;
      }
      this.error = why.slice(0, 300);
      this.options.onProblem(`tcpdump on ${host.name} ${device}: ${this.error}`);
    });
  }

  private line(line: string): void {
    // tcpdump's hex dump of a frame it cannot decode comes on indented lines after it.
    if (line.trim() === '' || /^\s/.test(line)) return;
    const parsed = parseTcpdumpLine(line);
    if (!parsed.ok) {
      this.options.onProblem(parsed.reason);
      return;
    }
    this.framesSeen += 1;
    this.take(parsed.frame);
  }

  private delivered(at: number): void {
    const last = this.deliveries.at(-1);
    if (last && at - last.to <= this.options.deliveryGapMs) last.to = Math.max(last.to, at);
    else if (this.deliveries.length < MAX_FRAME_TIMES_KEPT) this.deliveries.push({ from: at, to: at });
  }

  private take(frame: CapturedFrame): void {
    if (frame.sourceMac !== this.mac) {
      // Unicast to the VM: the LAN's path leads here. Broadcasts reach every host and prove nothing.
      if (frame.destinationMac === this.mac) this.delivered(frame.atMs);
      return;
    }
    if (frame.kind === 'guest') {
      keep(this.guestFrameTimes, frame.atMs);
      return;
    }
    if (this.announcements.length < MAX_ANNOUNCEMENTS_KEPT) this.announcements.push({ at: frame.atMs, kind: frame.kind });
  }
}

function keep(times: number[], at: number): void {
  if (times.length < MAX_FRAME_TIMES_KEPT) times.push(at);
}

function lastLine(text: string): string | null {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.at(-1) ?? null;
}
