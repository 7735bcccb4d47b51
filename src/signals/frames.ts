/**
 * Frames: while a VM with a known NIC (`vms[].nic`, or a discovered domain's interface target
 * and MAC) migrates, tcpdump watches its MAC on the destination's device. At the record's close
 * the capture stops and its figures go in `record.frames`; the ping enricher names each
 * outage's cause from them. Until the destination is known, every other host the VM has a
 * monitor on is watched.
 */
import type { ActiveMigration, MigrationRecord, OutageCause } from '../records/record.js';
import { provisionalCause } from '../enrichers/ping/outage-causes.js';
import { FrameCapture } from '../sources/frames/capture.js';
import type { SignalFactory } from './signal.js';

export const framesSignal: SignalFactory = ({ config, clock, logger, hosts, vms, tracker, enrichment, metrics }) => {
  if (!config.frames.enabled) return null;
  const log = logger.child({ component: 'frames' });
  /** Per migration id, a capture per host. */
  const captures = new Map<string, Map<string, FrameCapture>>();

  const nicOf = (vm: string) => {
    const nic = vms.named(vm)?.interfaces?.find((i) => i.mac);
    return nic?.mac ? { device: nic.device, mac: nic.mac } : null;
  };
  const ensure = (active: ActiveMigration) => {
    const nic = nicOf(active.vm);
    if (!nic) return;
    let byHost = captures.get(active.id);
    if (!byHost) captures.set(active.id, (byHost = new Map()));
    const candidates = active.destination
      ? [active.destination.host]
      : [...new Set((vms.named(active.vm)?.monitors ?? []).map((m) => m.host))].filter((h) => h !== active.source.host);
    for (const name of candidates) {
      if (byHost.has(name)) continue;
      byHost.set(
        name,
        new FrameCapture({
          host: hosts.get(name),
          device: nic.device,
          mac: nic.mac,
          tcpdumpPath: config.frames.tcpdumpPath,
          maxFrames: config.frames.maxFrames,
          deliveryGapMs: 2 * config.ping.periodMs + 50,
          clock,
          onProblem: (reason) => {
            metrics.sourceError('frames', name, /^tcpdump on /.test(reason) ? 'command' : 'protocol');
            log.warn({ vm: active.vm, host: name, err: reason }, 'frame capture problem');
          },
        }),
      );
    }
    if (active.destination) {
      // The destination is known now: the other hosts' captures have nothing to say.
      for (const [name, capture] of byHost) {
        if (name !== active.destination.host) {
          capture.stop();
          byHost.delete(name);
        }
      }
    }
  };
  tracker.on('started', ensure);
  tracker.on('phase', ensure);

  enrichment.add({
    closed: (record: MigrationRecord) => {
      const byHost = captures.get(record.id);
      if (!byHost) return;
      captures.delete(record.id);
      for (const capture of byHost.values()) capture.stop();
      const kept = record.destination ? byHost.get(record.destination.host) : undefined;
      if (kept) enrichment.patch(record.id, { frames: kept.figures(record.resumedAt?.value ?? null) });
    },
    tick: () => {},
  });

  const provisional = (outages: ReadonlyMap<string, number>): Map<string, OutageCause> => {
    const now = clock.wallMs();
    const causes = new Map<string, OutageCause>();
    for (const active of tracker.activeMigrations()) {
      const seconds = outages.get(active.vm);
      if (!seconds || active.postcopyAtMs === null) continue;
      const capture = active.destination ? captures.get(active.id)?.get(active.destination.host) : undefined;
      // While it runs, the switch to post-copy stands in for the destination's RESUME (they are milliseconds apart).
      causes.set(active.vm, provisionalCause(now - seconds * 1000, now, active.postcopyAtMs, capture?.firstFrameAt ?? null, config.ping.periodMs, capture !== undefined));
    }
    return causes;
  };

  return {
    name: 'frames',
    start: async () => {},
    reload: async () => {},
    stop: async () => {
      for (const byHost of captures.values()) for (const capture of byHost.values()) capture.stop();
      captures.clear();
    },
    health: () => [],
    views: { outageCauses: provisional },
    describe: () => `frames: tcpdump (${config.frames.tcpdumpPath}) on the destination's VM device while a VM with a known NIC migrates`,
  };
};
