/** QMP: every watched VM's monitors polled, their replies and events observed by the tracker. */
import { QmpMonitor } from '../sources/qmp/monitor.js';
import { QmpSource } from '../sources/qmp/source.js';
import type { SignalFactory } from './signal.js';

export const qmpSignal: SignalFactory = ({ config, logger, clock, hosts, vms, tracker, metrics }) => {
  const { polling } = config;
  const qmp = new QmpSource({
    clock,
    logger: logger.child({ component: 'qmp' }),
    idleIntervalMs: polling.idleIntervalMs,
    migratingIntervalMs: polling.migratingIntervalMs,
    commandTimeoutMs: polling.commandTimeoutMs,
    createMonitor: (endpoint, target, hostName) =>
      new QmpMonitor({
        endpoint,
        logger: logger.child({ component: 'qmp', monitor: target }),
        sessionOptions: { commandTimeoutMs: polling.commandTimeoutMs, connectTimeoutMs: polling.commandTimeoutMs, host: hosts.get(hostName) },
        backoff: { baseMs: Math.min(500, polling.reconnectMaxBackoffMs), capMs: polling.reconnectMaxBackoffMs },
      }),
    onObservation: (observation) => tracker.observe(observation),
    onError: (host, reason) => metrics.sourceError('qmp', host, reason),
  });
  const snapshot = () => [...qmp.snapshot()];
  return {
    name: 'qmp',
    start: () => qmp.setVms(vms.all()),
    reload: () => qmp.setVms(vms.all()),
    stop: () => qmp.stop(),
    health: () => [...qmp.hostHealth()].map(([host, up]) => ({ source: 'qmp', host, up })),
    views: { monitors: snapshot },
    describe: () => `QMP: ${snapshot().length} monitors of ${vms.all().length} VMs (${snapshot().filter((s) => s.up).length} connected)`,
  };
};
