/**
 * FrameCapture's bookkeeping on a real migration's frames. migration-dst.txt is tcpdump 4.99.3's
 * output for one lab migration (outage-causes, the VM 52:54:00:13:00:6b) on the destination's
 * tap0, read back with tcpdumpArgs()' filter: QEMU's RARP rounds from RESUME, the LAN's probes to
 * the VM, then the guest's first replies and gratuitous ARPs 1.2 s later (its post-copy at 2 MiB/s). A shell script
 * that prints the file stands in for tcpdump, so the capture runs its real spawn, line and exit
 * paths; the real tcpdump runs in test/integration/lab-outage-causes.test.ts.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { LocalHost } from '../../src/hosts/local.js';
import { FrameCapture } from '../../src/sources/frames/capture.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/tcpdump/migration-dst.txt', import.meta.url));
const VM = '52:54:00:13:00:6b';
/** The destination's RESUME event of that migration (its record's resumedAt). */
const RESUME = 1796236047299.165;
const FIRST_PROBE_TO_VM = 1796236047359.737;
const FIRST_REPLY = 1796236048516.598;

let dir = '';
let replay = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lme-frames-'));
  replay = join(dir, 'tcpdump');
  await writeFile(replay, `#!/bin/sh\nexec cat '${FIXTURE}'\n`);
  await chmod(replay, 0o755);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function replayed(mac = VM): Promise<{ capture: FrameCapture; problems: string[] }> {
  const problems: string[] = [];
  const capture = new FrameCapture({ host: new LocalHost('dst'), device: 'tap0', mac, tcpdumpPath: replay, maxFrames: 2000, deliveryGapMs: 250, clock: systemClock, onProblem: (r) => problems.push(r) });
  await expect.poll(() => capture.capturing, { timeout: 5_000 }).toBe(false);
  return { capture, problems };
}

describe('FrameCapture on a migration destination\'s frames', () => {
  it('keeps QEMU\'s RARP rounds, the first probe that reached the VM here and the guest\'s first own frame after RESUME', async () => {
    const { capture, problems } = await replayed();
    const figures = capture.figures(RESUME);
    expect(problems).toEqual([]);
    expect(figures.framesSeen).toBe(62);
    // QEMU's five RARP rounds from RESUME on; the guest's own gratuitous ARPs (the announcement
    // QEMU asks of virtio-net) only once the stalled guest runs again, 1.2 s later.
    expect(figures.announcements.map((a) => a.kind)).toEqual([...Array(5).fill('rarp'), ...Array(5).fill('garp')]);
    expect(figures.announcements[0]?.at).toBeCloseTo(1796236047299.233, 2);
    expect(figures.announcements[5]?.at).toBeCloseTo(1796236048535.567, 2);
    expect(figures.announcementRounds).toBe(10);
    expect(figures.firstDeliveredAt).toBeCloseTo(FIRST_PROBE_TO_VM, 2);
    expect(figures.firstGuestFrameAt).toBeCloseTo(FIRST_REPLY, 2);
    expect(capture.firstFrameAt).toBeCloseTo(1796236047299.233, 2);
    expect(figures).toMatchObject({ host: 'dst', device: 'tap0', mac: VM, truncated: false, error: null });
    expect(figures.evidence).toMatch(/frames from and to 52:54:00:13:00:6b/);
  });

  it('counts from RESUME: frames before it (the guest still on the source) are not the destination\'s', async () => {
    const { capture } = await replayed();
    const later = capture.figures(FIRST_REPLY + 500);
    expect(later.firstGuestFrameAt).toBeGreaterThanOrEqual(FIRST_REPLY + 500 - 50);
    expect(later.firstDeliveredAt).toBeGreaterThanOrEqual(FIRST_REPLY + 500 - 50);
    const unknownResume = capture.figures(null);
    expect(unknownResume.firstDeliveredAt).toBeCloseTo(FIRST_PROBE_TO_VM, 2);
  });

  it('takes a MAC written in capitals or with dashes as the same VM', async () => {
    const { capture } = await replayed('52-54-00-13-00-6B');
    expect(capture.figures(RESUME).firstDeliveredAt).toBeCloseTo(FIRST_PROBE_TO_VM, 2);
  });

  it('sees nothing for another VM\'s MAC: no announcement, no frame to it', async () => {
    const { capture } = await replayed('52:54:00:13:00:01');
    const figures = capture.figures(RESUME);
    expect(figures).toMatchObject({ announcements: [], announcementRounds: 0, firstGuestFrameAt: null, firstDeliveredAt: null, framesSeen: 62 });
  });
});
