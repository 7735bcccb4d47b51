/**
 * libvirt through its own protocol (`libvirt.transport: rpc`, the default): one read-only
 * connection to this machine's libvirt (unless `discover: off`) and one to each host of
 * `libvirt.hosts` over its SSH connection. Every running domain is a watched VM; libvirt's events
 * and, while a domain migrates, its job statistics go to the tracker.
 */
import { existsSync } from 'node:fs';
import type { Host } from '../hosts/host.js';
import { domainVm } from '../sources/libvirt/domain-vm.js';
import { socketCandidates } from '../sources/libvirt/socket.js';
import { LibvirtSource } from '../sources/libvirt/source.js';
import { localHostName } from './local-host-name.js';
import type { SignalFactory } from './signal.js';

export const libvirtSignal: SignalFactory = ({ config, clock, logger, hosts, vms, tracker, metrics, vmsChanged }) => {
  const { libvirt, polling } = config;
  if (libvirt.transport !== 'rpc') return null;
  const log = logger.child({ component: 'libvirt' });
  const sources: LibvirtSource[] = [];
  const watch = (host: Host, socket: string | null): LibvirtSource =>
    new LibvirtSource({
      host,
      ...(socket ? { socketPath: socket } : {}),
      uri: libvirt.uri,
      clock,
      logger: log,
      jobPollIntervalMs: libvirt.jobPollIntervalMs,
      listIntervalMs: libvirt.listIntervalMs,
      callTimeoutMs: polling.commandTimeoutMs * 5,
      reconnect: { baseMs: Math.min(500, polling.reconnectMaxBackoffMs), capMs: polling.reconnectMaxBackoffMs },
      vmOf: (domain) => vms.vmOfDomain(domain.name, domain.uuid),
      onDomains: async (from, domains) => {
        if (vms.discover(domains.map((d) => domainVm(d)), from)) await vmsChanged();
      },
      onObservation: (observation) => tracker.observe(observation),
      onError: (host, reason) => metrics.sourceError('libvirt', host, reason),
    });
  return {
    name: 'libvirt',
    start: async () => {
      if (localWanted()) sources.push(watch(hosts.get(localHostName(config)), libvirt.socket));
      for (const { host, socket } of libvirt.hosts) sources.push(watch(hosts.get(host), socket ?? libvirt.socket));
      await Promise.all(sources.map((s) => s.start()));
    },
    // Which VM a domain is, is asked on each report: nothing to redo.
    reload: async () => {},
    stop: async () => {
      await Promise.all(sources.map((s) => s.stop()));
    },
    health: () => sources.map((s) => ({ source: 'libvirt', host: s.hostName, up: s.up })),
    views: { monitors: () => sources.flatMap((s) => [...s.views()]) },
    describe: () =>
      sources.length
        ? `libvirt: ${sources.length} host(s) through the read-only socket (${sources.filter((s) => s.up).length} connected)`
        : `libvirt: not watched (discover ${libvirt.discover})`,
  };

  /** This machine's libvirt: `on` always; `auto` when one of its sockets is there. */
  function localWanted(): boolean {
    if (libvirt.discover === 'off') return false;
    if (libvirt.discover === 'on') return true;
    const candidates = socketCandidates({ ...(libvirt.socket ? { socketPath: libvirt.socket } : {}) });
    if (candidates.some((path) => existsSync(path))) return true;
    log.info({ sockets: candidates }, 'libvirt not found (no socket): not watching libvirt domains');
    return false;
  }
};
