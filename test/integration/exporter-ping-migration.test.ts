/**
 * The exporter as a user runs it (its CLI and a config file) pinging a Linux VM with fping from
 * the lab's lan namespace while the VM migrates, hybrid, between the lab's namespace hosts: the
 * ping figures of the migration record, the downtime histograms, and the live outage gauges.
 *
 * Two cases, as in the study: the destination announces the VM (QEMU's default), and pings go on
 * being answered; it does not (announce-rounds 0), and pings are lost for seconds after the
 * switch-over, until the guest sends a frame of its own (test/integration/lab-linux-guest.test.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LinuxGuestParams } from '../../src/lab/guest/linux.js';
import type { LinuxMigrationRun, LinuxVmMigration } from '../../src/lab/linux-migration.js';
import type { MigrationOutcome } from '../../src/lab/migrate.js';
import type { LabNetwork } from '../../src/lab/netns.js';
import type { MigrationRecord, OutageFigure, PingFigures } from '../../src/records/record.js';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { ExporterProcess, metricValue, writeConfig } from '../helpers/exporter-process.js';
import { eventMs, expectCompletedHybrid, LINUX_GUEST, LINUX_LAB_TOOLS, LINUX_MIGRATION_BANDWIDTH, LinuxLab, MiB, VM_ADDRESS } from '../helpers/linux-lab.js';

const VM = 'pinged';
const FLAVOR = 'lab';
const PERIOD_MS = 100;
const PING_TIMEOUT_MS = 500;
const AFTER_MS = 3_000;
const BLACKOUT_GRACE_MS = 1_000;
/**
 * The lab's guest with more of its memory dirtied: 32 MiB, more than QEMU lets pre-copy finish
 * with (what fits its 300 ms downtime-limit at 100 MiB/s, about 31 MB), so pre-copy never
 * converges before MigrationDriver's switch to post-copy after the first pass: every migration
 * here is hybrid. (With the lab's 16 MiB some converge.) Lowering the downtime-limit or the
 * bandwidth instead moves the switch towards the end of the first pass, which broke the guest's
 * virtio-net on the destination in most migrations (see expectGuestNetworkIntact).
 */
const GUEST: LinuxGuestParams = { ...LINUX_GUEST, fillMiB: 16, dirtyMiB: 32 };
/**
 * Post-copy then sends 40 to 55 MB: at 12 MiB/s it lasts 3 to 4 s, long enough for the live
 * post-copy gauge to show the outage growing (a probe counts as lost only once it timed out).
 */
const SLOW_POSTCOPY_BANDWIDTH = 12 * MiB;
const SAMPLE_EVERY_MS = 100;
const MIGRATION_TIMEOUT_MS = 30_000;
const TEST_TIMEOUT_MS = 60_000;
const HISTOGRAM_LABELS = `{result="completed",mode="hybrid",flavor="${FLAVOR}"}`;

/** What one scrape of /metrics said about the VM. */
interface Sample {
  atMs: number;
  /** livemig_migration_phase: the phase whose series is 1; null when not migrating. */
  phase: string | null;
  pingOutage: number | undefined;
  postcopyOutage: number | undefined;
}

interface Watched {
  exporter: ExporterProcess;
  outcome: MigrationOutcome;
  record: MigrationRecord;
  ping: PingFigures;
  samples: Sample[];
}

/** A migration of the lab's Linux VM; `maxPostcopyBandwidth` is LinuxMigrationRun's post-copy limit (max-postcopy-bandwidth). */
type Run = LinuxMigrationRun & { maxPostcopyBandwidth?: number };

describe.runIf(requireEnvironment(missingTools(...LINUX_LAB_TOOLS), needsRoot()))('exporter pinging a Linux VM that migrates (real QEMU, TCG, fping)', () => {
  const lab = new LinuxLab();
  let dir = '';
  let exporter: ExporterProcess | undefined;
  let sampler: Sampler | undefined;
  let counter = 0;

  beforeAll(async () => {
    await lab.init();
    dir = await mkdtemp(join(tmpdir(), 'lme-ping-mig-'));
  }, 300_000);
  // A fresh network per test: its forwarding tables and ARP caches must not remember the last VM.
  beforeEach(async () => {
    await lab.createNetwork();
  });
  afterEach(async () => {
    try {
      await sampler?.stop();
      await exporter?.stop();
    } finally {
      sampler = undefined;
      exporter = undefined;
      await lab.stopTest();
    }
  });
  afterAll(async () => {
    await lab.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /**
   * Boots the VM, starts the exporter on both QEMUs' observer monitors with the VM's ping
   * address, migrates once the exporter polls the source and the VM answers its pings, scraping
   * /metrics all along, and waits for the record and then for its ping figures.
   */
  async function watchMigration(run: Omit<Run, 'maxBandwidth' | 'timeoutMs'>): Promise<Watched> {
    const name = `pingmig${++counter}`;
    const { migration: pair, bootMs } = await lab.bootSource(GUEST, name);
    // The destination's observer socket: the source's with the other host's name. It appears
    // when migrate() starts the destination; until then the exporter retries it.
    const dstSocket = pair.source.observerSocket.replace(`${name}-src.`, `${name}-dst.`);
    expect(dstSocket).not.toBe(pair.source.observerSocket);
    const config = exporterConfig(join(dir, `${name}.state.json`), lab.network, pair.source.observerSocket, dstSocket);
    const watcher = await ExporterProcess.start(await writeConfig(dir, config));
    exporter = watcher;
    const started = Date.now();
    await watcher.waitForMonitors(VM, 1);
    await expect.poll(async () => metricValue(await watcher.metrics(), `livemig_ping_replies_received_total{vm="${VM}"}`) ?? 0, { timeout: 10_000, interval: 50 }).toBeGreaterThanOrEqual(3);
    const answeredMs = Date.now() - started;

    // migrate() starts the destination only now, as LinuxVmMigration wants (a destination started
    // a second early also made broken guests more frequent, see expectGuestNetworkIntact). The
    // exporter finds its monitor on its own, well before RESUME.
    const watching = Sampler.start(watcher);
    sampler = watching;
    const outcome = await migrate(pair, run);
    expect(pair.destination?.observerSocket).toBe(dstSocket);
    expectCompletedHybrid(outcome);

    const closed = await watcher.waitForRecord((r) => r.vm === VM, MIGRATION_TIMEOUT_MS);
    expect(closed).toMatchObject({ result: 'completed', mode: 'hybrid', destination: { host: 'dst-host' } });
    // The ping figures come once ping.after has passed after the end (and its probes settled).
    const record = await watcher.waitForRecord((r) => r.vm === VM && r.ping !== undefined, AFTER_MS + 10_000);
    const samples = await watching.stop();
    if (!record.resumedAt) console.log(`DEBUG no resumedAt; exporter log:\n${watcher.stderr.slice(-8000)}`);
    const ping = record.ping;
    if (!ping) throw new Error(`record ${record.id} has ping ${JSON.stringify(ping)}: no figures`);
    const watched = { exporter: watcher, outcome, record, ping, samples };
    console.log(describeRun(run, { ...watched, bootMs, answeredMs }));
    expectGuestNetworkIntact(pair);
    return watched;
  }

  it('destination announcing the VM (QEMU default): no loss before or in pre-copy, a short switch-over blackout, little post-copy outage', async () => {
    const { exporter: watcher, record, ping } = await watchMigration({});

    expect(ping.target).toBe(VM_ADDRESS);
    expect(ping.periodMs).toBe(PERIOD_MS);
    expect(ping.evidence).toMatch(/fping/);
    expect(ping.phases.before.sent).toBeGreaterThan(0);
    expect(ping.phases.before.lost).toBe(0);
    // The study: pre-copy loses nothing.
    expect(ping.phases.precopy.sent).toBeGreaterThan(0);
    expect(ping.phases.precopy.lost).toBe(0);
    expect(ping.phases.postcopy).not.toBeNull();
    if (ping.switchoverBlackout) expect(ping.switchoverBlackout.seconds).toBeLessThan(1);
    expect(ping.postcopyOutageTotalSeconds).toBeLessThan(0.5);
    // Answering again well before the migration ended, and all along after it.
    expect(ping.phases.after.sent).toBeGreaterThanOrEqual(AFTER_MS / PERIOD_MS / 2);
    expect(ping.phases.after.lost).toBe(0);
    expect(ping.phases.after.rttMeanMs).not.toBeNull();
    expectPingOnStop(record, ping);
    await expectDowntimeMetrics(watcher, ping);
  }, TEST_TIMEOUT_MS);

  it('no announcement from the destination (announce-rounds 0): the switch-over blackout runs on into a post-copy outage of seconds, and the live gauges grow', async () => {
    const { exporter: watcher, record, ping, samples } = await watchMigration({ announceRounds: 0, maxPostcopyBandwidth: SLOW_POSTCOPY_BANDWIDTH });

    expect(ping.phases.before.lost).toBe(0);
    expect(ping.phases.precopy.lost).toBe(0);
    const blackout = ping.switchoverBlackout;
    expect(blackout, 'a switch-over blackout').not.toBeNull();
    if (!blackout) return;
    expectPingOnStop(record, ping);
    // The outage outlasts the blackout's grace after RESUME: the blackout is clipped there and the
    // rest of the outage is a post-copy outage.
    const switchAt = record.stoppedAt?.value ?? Number.NaN;
    const clipAt = Math.max(record.resumedAt?.value ?? switchAt, switchAt) + BLACKOUT_GRACE_MS;
    expect(blackout.endAt).toBeCloseTo(clipAt, -2);
    expect(ping.postcopyOutages.length).toBeGreaterThanOrEqual(1);
    expect(ping.postcopyOutages[0]?.startAt).toBe(blackout.endAt);
    expect(ping.postcopyOutageLongestSeconds).toBeGreaterThan(0);
    const outages = [blackout, ...ping.postcopyOutages];
    const seconds = outages.reduce((sum, o) => sum + o.seconds, 0);
    const lost = outages.reduce((sum, o) => sum + o.lostProbes, 0);
    expect(seconds).toBeGreaterThanOrEqual(1);
    expect(lost).toBeGreaterThanOrEqual(1_000 / PERIOD_MS - 1);
    // The phases count the same lost probes: post-copy, and after the end if it lasted that long.
    expect((ping.phases.postcopy?.lost ?? 0) + ping.phases.after.lost).toBeGreaterThanOrEqual(Math.min(lost, 1_000 / PERIOD_MS - 1));
    await expectDowntimeMetrics(watcher, ping);

    // Scraped during the outage: the VM's current outage grows from one scrape to the next.
    expect(growing(samples, (s) => s.pingOutage), describeSamples(samples)).toBeDefined();
    // The live post-copy gauge shows it while the VM is in post-copy, and only then. Post-copy
    // must outlast the first lost probe's timeout for that: LinuxMigrationRun.maxPostcopyBandwidth.
    const postcopySeconds = ((record.endedAt?.value ?? 0) - (record.postcopyAt?.value ?? 0)) / 1000;
    expect(postcopySeconds, 'post-copy slowed by maxPostcopyBandwidth').toBeGreaterThanOrEqual(1.5);
    for (const s of samples) if (s.postcopyOutage !== undefined) expect(s.phase).toMatch(/^postcopy/);
    const live = growing(samples, (s) => (s.phase === 'postcopy' ? s.postcopyOutage : undefined));
    expect(live, describeSamples(samples)).toBeDefined();
  }, TEST_TIMEOUT_MS);
});

function exporterConfig(stateFile: string, network: LabNetwork, srcSocket: string, dstSocket: string) {
  return {
    polling: { idle_interval: '500ms', migrating_interval: '100ms', command_timeout: '2s', reconnect_max_backoff: '100ms' },
    state_file: stateFile,
    libvirt: { discover: 'off' },
    ping: {
      period: `${PERIOD_MS}ms`,
      timeout: `${PING_TIMEOUT_MS}ms`,
      // fping from the LAN the VM is bridged to, as a prober on the management network would.
      netns: network.namespaces.lan,
      after: `${AFTER_MS}ms`,
      blackout_grace: `${BLACKOUT_GRACE_MS}ms`,
    },
    vms: [
      {
        name: VM,
        flavor: FLAVOR,
        ping_address: VM_ADDRESS,
        monitors: [
          { host: 'src-host', qmp: { unix: srcSocket } },
          { host: 'dst-host', qmp: { unix: dstSocket } },
        ],
      },
    ],
  };
}

function migrate(pair: LinuxVmMigration, run: Omit<Run, 'maxBandwidth' | 'timeoutMs'>): Promise<MigrationOutcome> {
  const full: Run = { maxBandwidth: LINUX_MIGRATION_BANDWIDTH, timeoutMs: MIGRATION_TIMEOUT_MS, ...run };
  return pair.migrate(full);
}

/**
 * The lab, not the exporter: QEMU 7.2 under TCG can leave the guest a broken transmit ring after
 * post-copy ("virtio_net virtio0: output.0:id 0 is not a head!" on the destination's console),
 * and the guest never answers again. Seen in most hybrid migrations switched late in the first
 * pass (downtime-limit 20 ms, or 40 MiB/s), in none switched at 100 MiB/s and QEMU's 300 ms.
 */
function expectGuestNetworkIntact(pair: LinuxVmMigration): void {
  const output = pair.destination?.vm.guestOutput() ?? '';
  expect(output, 'the guest broke its virtio-net queues after the migration (a lab problem, not the exporter)').not.toMatch(/is not a head|virtio_net.*(broken|error)/i);
}

/** The blackout begins with the probes the stopping guest no longer answered: at most a probe timeout before STOP. */
function expectPingOnStop(record: MigrationRecord, ping: PingFigures): void {
  const blackout = ping.switchoverBlackout;
  if (!blackout) return;
  const stoppedAt = record.stoppedAt?.value ?? Number.NaN;
  const seen = JSON.stringify({ stoppedAt: record.stoppedAt, resumedAt: record.resumedAt, destination: record.destination, statuses: record.statuses });
  expect(blackout.startAt, seen).toBeGreaterThanOrEqual(stoppedAt - PING_TIMEOUT_MS);
  expect(record.resumedAt, seen).not.toBeNull();
  expect(blackout.startAt, seen).toBeLessThanOrEqual((record.resumedAt?.value ?? Number.NaN) + PERIOD_MS);
}

/** The downtime histograms and last-migration gauges carry the record's figures. */
async function expectDowntimeMetrics(exporter: ExporterProcess, ping: PingFigures): Promise<void> {
  const text = () => exporter.metrics();
  await expect.poll(async () => metricValue(await text(), `livemig_migration_blackout_seconds_count${HISTOGRAM_LABELS}`), { timeout: 5_000 }).toBe(1);
  const metrics = await text();
  const blackout = ping.switchoverBlackout?.seconds ?? 0;
  expect(metricValue(metrics, `livemig_migration_blackout_seconds_sum${HISTOGRAM_LABELS}`)).toBeCloseTo(blackout, 6);
  expect(metricValue(metrics, `livemig_migration_postcopy_outage_seconds_count${HISTOGRAM_LABELS}`)).toBe(1);
  expect(metricValue(metrics, `livemig_migration_postcopy_outage_seconds_sum${HISTOGRAM_LABELS}`)).toBeCloseTo(ping.postcopyOutageTotalSeconds, 6);
  expect(metricValue(metrics, `livemig_last_migration_blackout_seconds{vm="${VM}"}`)).toBeCloseTo(blackout, 6);
  expect(metricValue(metrics, `livemig_last_migration_postcopy_outage_seconds{vm="${VM}"}`)).toBeCloseTo(ping.postcopyOutageTotalSeconds, 6);
}

/** Scrapes /metrics every SAMPLE_EVERY_MS until stopped. */
class Sampler {
  private readonly samples: Sample[] = [];
  private stopped = false;
  private readonly loop: Promise<void>;

  private constructor(private readonly exporter: ExporterProcess) {
    this.loop = this.run();
  }

  static start(exporter: ExporterProcess): Sampler {
    return new Sampler(exporter);
  }

  async stop(): Promise<Sample[]> {
    this.stopped = true;
    await this.loop;
    return this.samples;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const text = await this.exporter.metrics().catch(() => null);
      if (text !== null) {
        this.samples.push({
          atMs: Date.now(),
          phase: new RegExp(`^livemig_migration_phase\\{vm="${VM}",phase="([^"]+)"\\} 1$`, 'm').exec(text)?.[1] ?? null,
          pingOutage: metricValue(text, `livemig_ping_outage_seconds{vm="${VM}"}`),
          postcopyOutage: metricValue(text, `livemig_migration_current_postcopy_outage_seconds{vm="${VM}"}`),
        });
      }
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_EVERY_MS));
    }
  }
}

/** Two consecutive samples of a positive value, the second larger; undefined when there are none. */
function growing(samples: readonly Sample[], read: (s: Sample) => number | undefined): [Sample, Sample] | undefined {
  for (let i = 1; i < samples.length; i++) {
    const before = read(samples[i - 1] as Sample);
    const after = read(samples[i] as Sample);
    if (before !== undefined && after !== undefined && before > 0 && after > before) return [samples[i - 1] as Sample, samples[i] as Sample];
  }
  return undefined;
}

function describeSamples(samples: readonly Sample[]): string {
  const first = samples[0]?.atMs ?? 0;
  return samples
    .filter((s, i) => (s.pingOutage ?? 0) > 0 || s.postcopyOutage !== undefined || s.phase !== samples[i - 1]?.phase)
    .map((s) => `+${s.atMs - first}ms ${s.phase ?? '-'} outage=${s.pingOutage ?? '-'} postcopy=${s.postcopyOutage ?? '-'}`)
    .join('\n');
}

function describeRun(
  run: Omit<Run, 'maxBandwidth' | 'timeoutMs'>,
  w: Watched & { bootMs: number; answeredMs: number },
): string {
  const { record, ping, outcome } = w;
  const ms = (figure: { value: number } | null | undefined) => figure?.value ?? Number.NaN;
  const start = ms(record.startedAt);
  const at = (t: number | null | undefined) => (t === null || t === undefined ? 'open' : `+${Math.round(t - start)}ms`);
  const outage = (o: OutageFigure) => `${at(o.startAt)}..${at(o.endAt)} ${o.seconds.toFixed(2)}s (${o.lostProbes} lost)`;
  const phase = (name: string, p: PingFigures['phases']['before'] | null) =>
    p ? `${name} ${p.lost}/${p.sent} lost, rtt mean ${p.rttMeanMs?.toFixed(2) ?? '-'} max ${p.rttMaxMs?.toFixed(2) ?? '-'} ms` : `${name} -`;
  const live = w.samples.filter((s) => s.postcopyOutage !== undefined).map((s) => s.postcopyOutage?.toFixed(2));
  const pings = w.samples.filter((s) => (s.pingOutage ?? 0) > 0).map((s) => s.pingOutage?.toFixed(2));
  return [
    `announce-rounds ${run.announceRounds ?? 'default'}, post-copy ${run.maxPostcopyBandwidth ? `${run.maxPostcopyBandwidth / MiB} MiB/s` : 'at pre-copy bandwidth'}: ` +
      `boot ${w.bootMs} ms, exporter answered by ping ${w.answeredMs} ms after its start, pinging ${((ping.phases.before.sent * PERIOD_MS) / 1000).toFixed(1)} s before the start`,
    `  QEMU: postcopy ${at(ms(record.postcopyAt))}, STOP ${at(ms(record.stoppedAt))}, RESUME ${at(ms(record.resumedAt))} (dst event ${at(eventMs(outcome.destination?.events ?? [], 'RESUME'))}), end ${at(ms(record.endedAt))}; ` +
      `post-copy bytes ${record.bytes.postcopy?.value ?? '-'}`,
    `  blackout ${ping.switchoverBlackout ? outage(ping.switchoverBlackout) : 'none'}; post-copy outages ${ping.postcopyOutages.map(outage).join(', ') || 'none'} ` +
      `(longest ${ping.postcopyOutageLongestSeconds.toFixed(2)}s, total ${ping.postcopyOutageTotalSeconds.toFixed(2)}s)`,
    `  ${phase('before', ping.phases.before)}; ${phase('precopy', ping.phases.precopy)}; ${phase('postcopy', ping.phases.postcopy)}; ${phase('after', ping.phases.after)}`,
    `  scraped livemig_ping_outage_seconds > 0: [${pings.join(' ')}]; livemig_migration_current_postcopy_outage_seconds: [${live.join(' ')}]`,
  ].join('\n');
}
