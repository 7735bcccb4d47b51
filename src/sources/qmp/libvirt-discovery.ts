/**
 * Finds the running libvirt domains of a host so that, without a config, every VM there is
 * watched through `virsh qemu-monitor-command`. Domains that appear are added, those that go
 * (a source domain after its migration) are removed. Each new domain's XML is read once: its UUID
 * is nova's instance UUID (so nova's log lines join it), and nova's metadata gives its flavor,
 * display name and project.
 */
import type { VmConfig } from '../../config/schema.js';
import { errorMessage, livemigError } from '../../errors.js';
import type { Host } from '../../hosts/host.js';
import type { Logger } from '../../log.js';
import { describeQmpEndpoint, type QmpEndpoint } from '../../qemu/types.js';
import { domainVm } from '../libvirt/domain-vm.js';
import { parseDomainXml, type DomainDescription } from '../libvirt/domain-xml.js';

/** Parses `virsh list --name`: one domain name per line, a blank line at the end. */
export function parseDomainList(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
}

export function domainsToVms(
  domains: readonly string[],
  host: string,
  virshPath: string,
  uri: string,
  describe: (domain: string) => DomainDescription | undefined = () => undefined,
): VmConfig[] {
  return domains.map((domain) => {
    const endpoint: QmpEndpoint = { kind: 'virsh', domain, uri, virshPath };
    const description = describe(domain) ?? { name: domain, uuid: null, nova: null, interfaces: [] };
    return domainVm(description, [{ id: `${host}/${describeQmpEndpoint(endpoint)}`, host, endpoint }]);
  });
}

export async function listDomains(host: Host, virshPath: string, uri: string, timeoutMs: number): Promise<string[]> {
  return parseDomainList(await virshOutput(host, virshPath, ['-c', uri, 'list', '--name'], timeoutMs));
}

/** `virsh dumpxml` of one domain, parsed. */
export async function describeDomain(host: Host, virshPath: string, uri: string, domain: string, timeoutMs: number): Promise<DomainDescription> {
  return parseDomainXml(await virshOutput(host, virshPath, ['-c', uri, 'dumpxml', '--domain', domain], timeoutMs), domain);
}

/** virsh's stdout; a virsh that cannot run or exits non-zero is LME_VIRSH_FAILED with its stderr. */
async function virshOutput(host: Host, virshPath: string, args: string[], timeoutMs: number): Promise<string> {
  const what = args.join(' ');
  const result = await host.exec([virshPath, ...args], { timeoutMs }).catch((err: unknown) => {
    throw livemigError('LME_VIRSH_FAILED', what, errorMessage(err));
  });
  if (result.code !== 0) throw livemigError('LME_VIRSH_FAILED', what, result.stderr.trim() || `exit status ${result.code ?? result.signal}`);
  return result.stdout.toString('utf8');
}

/** `virsh dumpxml` processes run at once for newly found domains. */
const DESCRIBE_AT_ONCE = 8;

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
  /** The XML of each domain seen, read once (a domain that fails is tried again next time). */
  private readonly descriptions = new Map<string, DomainDescription>();

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
      await this.describeNew(domains);
      await this.options.onDomains(domainsToVms(domains, host.name, virshPath, uri, (d) => this.descriptions.get(d)));
    } catch (err) {
      const message = errorMessage(err);
      if (message !== this.lastError) logger.warn({ uri, err: message }, 'cannot list libvirt domains');
      this.lastError = message;
      this.options.onHealth(false);
    } finally {
      if (!this.stopped) this.timer = setTimeout(() => void this.tick(), this.options.intervalMs);
    }
  }

  private async describeNew(domains: readonly string[]): Promise<void> {
    const { virshPath, uri, host, logger, timeoutMs } = this.options;
    for (const name of this.descriptions.keys()) if (!domains.includes(name)) this.descriptions.delete(name);
    const unknown = domains.filter((d) => !this.descriptions.has(d));
    // A few at a time: a host with hundreds of domains must not hold up the start for seconds.
    for (let i = 0; i < unknown.length; i += DESCRIBE_AT_ONCE) {
      await Promise.all(
        unknown.slice(i, i + DESCRIBE_AT_ONCE).map(async (domain) => {
          try {
            this.descriptions.set(domain, await describeDomain(host, virshPath, uri, domain, timeoutMs));
          } catch (err) {
            logger.warn({ uri, domain, err: errorMessage(err) }, 'cannot read the domain XML: watching the domain without its UUID and nova metadata');
          }
        }),
      );
    }
  }
}
