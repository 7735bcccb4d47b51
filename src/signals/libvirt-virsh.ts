/**
 * libvirt through virsh (`libvirt.transport: virsh`): this host's running domains become watched
 * VMs, each watched through `virsh qemu-monitor-command` and `virsh qemu-monitor-event`. It costs a
 * virsh process per domain and taints every domain `custom-monitor`; the rpc transport does neither.
 */
import { access, constants } from 'node:fs/promises';
import { LibvirtDiscovery } from '../sources/qmp/libvirt-discovery.js';
import { localHostName } from './local-host-name.js';
import type { SignalFactory } from './signal.js';

export const libvirtVirshSignal: SignalFactory = ({ config, logger, hosts, vms, vmsChanged }) => {
  const { libvirt } = config;
  if (libvirt.transport !== 'virsh') return null;
  const host = localHostName(config);
  let up: boolean | null = null;
  let discovery: LibvirtDiscovery | null = null;
  return {
    name: 'libvirt',
    start: async () => {
      if (libvirt.discover === 'off') return;
      if (libvirt.discover === 'auto' && !(await onPath(libvirt.virshPath))) {
        logger.info({ virsh: libvirt.virshPath }, 'libvirt not found (no virsh on PATH): not watching libvirt domains');
        return;
      }
      discovery = new LibvirtDiscovery({
        virshPath: libvirt.virshPath,
        uri: libvirt.uri,
        host: hosts.get(host),
        intervalMs: libvirt.discoverIntervalMs,
        timeoutMs: config.polling.commandTimeoutMs * 5,
        logger: logger.child({ component: 'libvirt' }),
        onHealth: (ok) => (up = ok),
        // Every discovery interval lists the domains; the signals reload only when they changed.
        onDomains: async (domains) => {
          if (vms.discover(domains)) await vmsChanged();
        },
      });
      await discovery.start();
    },
    // The domains are listed again at the next interval.
    reload: async () => {},
    stop: async () => discovery?.stop(),
    health: () => (up === null ? [] : [{ source: 'libvirt', host, up }]),
    describe: () => `libvirt discovery through virsh: ${libvirt.discover}${discovery ? ` (${libvirt.uri})` : ' (inactive)'}`,
  };
};

async function onPath(binary: string): Promise<boolean> {
  const dirs = binary.includes('/') ? [''] : (process.env.PATH ?? '').split(':');
  for (const dir of dirs) {
    try {
      await access(dir ? `${dir}/${binary}` : binary, constants.X_OK);
      return true;
    } catch {
      // try the next directory
    }
  }
  return false;
}
