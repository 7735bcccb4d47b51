/** Ping: fping probes every watched VM that has a ping_address; the ping enricher turns them into figures. */
import { errorMessage } from '../errors.js';
import { PingEnricher } from '../enrichers/ping/ping-enricher.js';
import { pingTargetView } from '../metrics/ping-metrics.js';
import { PingSource } from '../sources/ping/source.js';
import type { PingTarget } from '../sources/ping/types.js';
import { localHostName } from './local-host-name.js';
import type { SignalFactory } from './signal.js';

export const pingSignal: SignalFactory = ({ config, logger, clock, vms, store, enrichment, metrics }) => {
  const { ping: options } = config;
  const host = localHostName(config);
  const enricher = new PingEnricher({
    clock,
    periodMs: options.periodMs,
    beforeMs: options.beforeMs,
    afterMs: options.afterMs,
    blackoutGraceMs: options.blackoutGraceMs,
    settleMs: options.timeoutMs + Math.max(1000, 2 * options.periodMs),
    targetOf: (vm) => vms.named(vm)?.pingAddress ?? null,
    patch: enrichment.patch,
    // The record as stored now: the frame watcher's section is patched in at the close.
    latest: (id) => store.get(id),
  });
  enrichment.add(enricher);
  const ping = new PingSource({
    clock,
    logger: logger.child({ component: 'ping' }),
    periodMs: options.periodMs,
    timeoutMs: options.timeoutMs,
    fpingPath: options.fpingPath,
    maxTargetsPerProcess: options.targetsPerProcess,
    ...(options.sourceAddress ? { sourceAddress: options.sourceAddress } : {}),
    ...(options.netns ? { netns: options.netns } : {}),
    onObservation: (observation) => enricher.probe(observation),
    onRtt: (target, rttMs) => metrics.pingRtt(target.vm ?? target.address, rttMs / 1000),
    onError: (err) => {
      metrics.sourceError('ping', host, 'fping');
      logger.warn({ component: 'ping', err: errorMessage(err) }, 'ping source error');
    },
  });
  const targets = (): PingTarget[] => vms.all().flatMap((vm) => (vm.pingAddress ? [{ address: vm.pingAddress, vm: vm.name, labels: {} }] : []));
  const setTargets = () => ping.setTargets(targets()).catch((err: unknown) => logger.error({ err: errorMessage(err) }, 'ping targets refused'));
  return {
    name: 'ping',
    start: setTargets,
    reload: setTargets,
    stop: () => ping.stop(),
    health: () => (targets().length ? [{ source: 'ping', host, up: ping.health().up }] : []),
    views: {
      pingTargets: () => ping.snapshot().map(pingTargetView),
      currentOutages: () => new Map(ping.snapshot().flatMap((t) => (t.target.vm ? [[t.target.vm, t.currentOutageSeconds] as const] : []))),
    },
  };
};
