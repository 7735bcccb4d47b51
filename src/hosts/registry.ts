import { EventEmitter } from 'node:events';
import type { HostConfig } from '../config/schema.js';
import { LivemigError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Host } from './host.js';
import { LocalHost } from './local.js';
import { NetnsHost } from './netns.js';
import { SshHost } from './ssh.js';

export interface HostRegistryOptions {
  hosts: readonly HostConfig[];
  logger?: Logger;
  /** Cap of the reconnect backoff of SSH hosts (polling.reconnect_max_backoff). */
  reconnectMaxBackoffMs?: number;
  /** $SSH_AUTH_SOCK, for hosts with `agent: true`. */
  agentSocket?: string | undefined;
}

export interface HostRegistryEvents {
  up: [host: string];
  down: [host: string, reason: Error];
}

/**
 * The hosts of the config by name. A name that no `hosts` entry declares (a monitor's `host`
 * in a config written before hosts existed) is this machine, so such configs keep working.
 */
export class HostRegistry extends EventEmitter<HostRegistryEvents> {
  private readonly hosts = new Map<string, Host>();
  private readonly configs = new Map<string, HostConfig>();

  constructor(options: HostRegistryOptions) {
    super();
    for (const config of options.hosts) {
      this.configs.set(config.name, config);
      this.hosts.set(config.name, createHost(config, options));
    }
    for (const host of this.hosts.values()) {
      if (host instanceof SshHost) {
        host.on('up', () => this.emit('up', host.name));
        host.on('down', (reason) => this.emit('down', host.name, reason));
      }
    }
  }

  /** The host of that name; an undeclared name is the local machine. */
  get(name: string): Host {
    let host = this.hosts.get(name);
    if (!host) {
      host = new LocalHost(name);
      this.hosts.set(name, host);
    }
    return host;
  }

  /** Hosts declared in the config, with their entries. */
  declared(): { host: Host; config: HostConfig }[] {
    return [...this.configs.values()].map((config) => ({ host: this.get(config.name), config }));
  }

  /** livemig_source_up{source="host"} of each declared host. */
  health(): { source: string; host: string; up: boolean }[] {
    return this.declared().map(({ host }) => ({ source: 'host', host: host.name, up: host.up }));
  }

  /** Starts connecting every SSH host now, in parallel (none waits for another). */
  start(): void {
    for (const host of this.hosts.values()) if (host instanceof SshHost) host.start();
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.hosts.values()].map((host) => host.close()));
  }
}

export function createHost(config: HostConfig, options: Omit<HostRegistryOptions, 'hosts'> = {}): Host {
  if (config.netns) return new NetnsHost(config.name, config.netns);
  if (!config.ssh) return new LocalHost(config.name);
  const ssh = config.ssh;
  if (ssh.agent && !options.agentSocket) {
    throw new LivemigError('LME_HOST_CONFIG', [config.name, 'ssh.agent is true but SSH_AUTH_SOCK is not set in the exporter\'s environment']);
  }
  if (!ssh.agent && !ssh.identityFile) {
    throw new LivemigError('LME_HOST_CONFIG', [config.name, 'ssh needs identity_file or agent: true']);
  }
  const capMs = Math.max(500, options.reconnectMaxBackoffMs ?? 30_000);
  return new SshHost({
    name: config.name,
    address: ssh.address,
    port: ssh.port,
    user: ssh.user,
    knownHostsFile: ssh.knownHosts,
    keepaliveIntervalMs: ssh.keepaliveIntervalMs,
    connectTimeoutMs: ssh.connectTimeoutMs,
    backoff: { baseMs: Math.min(500, capMs), capMs },
    ...(ssh.identityFile ? { identityFile: ssh.identityFile } : {}),
    ...(ssh.agent && options.agentSocket ? { agentSocket: options.agentSocket } : {}),
    ...(options.logger ? { logger: options.logger.child({ component: 'host' }) } : {}),
  });
}
