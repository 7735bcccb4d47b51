/**
 * Finds the running libvirt domains of a host so that, without a config, every VM there is
 * watched through `virsh qemu-monitor-command`. Domains that appear are added, those that go
 * (a source domain after its migration) are removed.
 */
import type { VmConfig } from '../../config/schema.js';
import { errorMessage, livemigError } from '../../errors.js';
import type { Host } from '../../hosts/host.js';
import type { Logger } from '../../log.js';
import { describeQmpEndpoint, type QmpEndpoint } from '../../qemu/types.js';

/** Parses `virsh list --name`: one domain name per line, a blank line at the end. */
export function parseDomainList(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
}

export function domainsToVms(domains: readonly string[], host: string, virshPath: string, uri: string): VmConfig[] {
  return domains.map((domain) => {
    const endpoint: QmpEndpoint = { kind: 'virsh', domain, uri, virshPath };
    return { name: domain, flavor: '', labels: {}, pingAddress: null, monitors: [{ id: `${host}/${describeQmpEndpoint(endpoint)}`, host, endpoint }] };
  });
}

export async function listDomains(host: Host, virshPath: string, uri: string, timeoutMs: number): Promise<string[]> {
  const what = `-c ${uri} list --name`;
  let result;
  try {
    result = await host.exec([virshPath, '-c', uri, 'list', '--name'], { timeoutMs });
  } catch (err) {
    throw livemigError('LME_VIRSH_FAILED', what, errorMessage(err));
  }
  if (result.code !== 0) throw livemigError('LME_VIRSH_FAILED', what, result.stderr.trim() || `exit status ${result.code ?? result.signal}`);
  return parseDomainList(result.stdout.toString('utf8'));
}

export interface DiscoveryOptions {
  virshPath: string;
  uri: string;
  host: Host;
  intervalMs: number;
  timeoutMs: number;
  logger: Logger;
  onDomains(vms: VmConfig[]): void | Promise<void>;
  onHealth(up: boolean): void;
}

export class LibvirtDiscovery {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private lastError: string | null = null;
  private known = '';

  constructor(private readonly options: DiscoveryOptions) {}

  async start(): Promise<void> {
    await this.tick();
  }

  /** Looks again now (e.g. after a MIGRATION event hints at a new domain). */
  async refresh(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    await this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const { virshPath, uri, host, logger } = this.options;
    try {
      const domains = await listDomains(host, virshPath, uri, this.options.timeoutMs);
      const signature = domains.join('\n');
      if (signature !== this.known) {
        logger.info({ uri, domains }, domains.length ? 'watching libvirt domains' : 'libvirt has no running domains');
        this.known = signature;
      }
      if (this.lastError) logger.info({ uri }, 'libvirt reachable again');
      this.lastError = null;
      this.options.onHealth(true);
      await this.options.onDomains(domainsToVms(domains, host.name, virshPath, uri));
    } catch (err) {
      const message = errorMessage(err);
      if (message !== this.lastError) logger.warn({ uri, err: message }, 'cannot list libvirt domains');
      this.lastError = message;
      this.options.onHealth(false);
    } finally {
      if (!this.stopped) this.timer = setTimeout(() => void this.tick(), this.options.intervalMs);
    }
  }
}
