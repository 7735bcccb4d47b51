import type { Clock } from '../../clock.js';
import { errorMessage, LivemigError } from '../../errors.js';
import type { Host } from '../../hosts/host.js';
import type { Logger } from '../../log.js';
import { CounterTotals, plausibleBytes } from './counters.js';
import { interfaceMatches, parseProcNetDev, parseSysStatistic, type NetDevParse } from './parse.js';

/** netdev_path pointing at sysfs: each named interface's statistics files are read instead. */
export const SYS_CLASS_NET = '/sys/class/net';
const SYS_FILES = ['rx_bytes', 'tx_bytes', 'rx_packets', 'tx_packets'] as const;

/**
 * Reads /sys/class/net/IFACE/statistics/* of each configured interface (names only: sysfs is not
 * listed, so globs match nothing here). An interface that is not there is left out, as it would
 * be from /proc/net/dev.
 */
export async function readSysClassNet(host: Host, base: string, names: readonly string[]): Promise<NetDevParse> {
  const out: NetDevParse = { interfaces: [], errors: [] };
  await Promise.all(
    names
      .filter((name) => /^[A-Za-z0-9._@-]+$/.test(name) && name !== '.' && name !== '..')
      .map(async (name) => {
        let texts: Buffer[];
        try {
          texts = await Promise.all(SYS_FILES.map((file) => host.readFile(`${base}/${name}/statistics/${file}`)));
        } catch {
          return; // not there (now): like a missing line of /proc/net/dev
        }
        try {
          const [rxBytes, txBytes, rxPackets, txPackets] = texts.map((t) => parseSysStatistic(t.toString('utf8'))) as [bigint, bigint, bigint, bigint];
          out.interfaces.push({ interface: name, receiveBytes: rxBytes, transmitBytes: txBytes, receivePackets: rxPackets, transmitPackets: txPackets });
        } catch (err) {
          out.errors.push(`${base}/${name}/statistics: ${(err as Error).message}`);
        }
      }),
  );
  return out;
}

export interface NetdevHostSpec {
  host: Host;
  /** Interface names or globs; counters of other interfaces are not kept. */
  interfaces: readonly string[];
  netdevPath: string;
}

/** Totals per interface on one host at one read: monotonic across resets and wraps. */
export interface InterfaceSample {
  host: string;
  wallMs: number;
  monoMs: number;
  /** Packets are the kernel's raw counts (not carried across resets): deltas within a migration only. */
  interfaces: Map<string, { receiveBytes: bigint; transmitBytes: bigint; receivePackets: bigint | null; transmitPackets: bigint | null }>;
}

export interface NetdevSourceOptions {
  clock: Clock;
  logger?: Logger;
  periodMs: number;
  /** Period while a migration runs on the host. */
  migratingPeriodMs: number;
  isMigrating(host: string): boolean;
  onSample?(sample: InterfaceSample): void;
  onError?(host: string, err: Error): void;
  /** Fastest link assumed when telling a counter wrap from a reset; 100 Gbit/s by default. */
  maxLinkBitsPerSecond?: number;
  /** Interfaces kept per host and read at most (a glob on a host with thousands of taps); default MAX_INTERFACES_PER_HOST. */
  maxInterfacesPerHost?: number;
  /** Interfaces left out of a read by that cap (told once per interface name). */
  onRefused?(host: string, interfaces: string[]): void;
}

/** The cap on interfaces per host: every series of each is one per interface, kept for months. */
export const MAX_INTERFACES_PER_HOST = 256;

interface HostState {
  spec: NetdevHostSpec;
  totals: CounterTotals;
  /** Last packet counts per interface and direction: they tell a reset from a byte-counter wrap. */
  packets: Map<string, bigint>;
  timer: NodeJS.Timeout | undefined;
  reading: boolean;
  up: boolean;
  lastReadMono: number | null;
  last: InterfaceSample | null;
  /** Errors already logged at warn; repeats go to debug. */
  lastError: string | null;
  resets: number;
  /** Interface names the cap left out, already told. */
  refused: Set<string>;
}

const DEFAULT_MAX_LINK = 100e9;

/**
 * Reads each host's interface counters every `periodMs`, every `migratingPeriodMs` while a
 * migration runs there. Each host has its own timer and at most one read in flight, so a slow or
 * dead host never delays another's reads.
 */
export class NetdevSource {
  private readonly hosts = new Map<string, HostState>();
  private stopped = false;

  constructor(private readonly options: NetdevSourceOptions) {}

  setHosts(specs: readonly NetdevHostSpec[]): void {
    const wanted = new Map(specs.filter((s) => s.interfaces.length > 0).map((s) => [s.host.name, s]));
    for (const [name, state] of this.hosts) {
      if (!wanted.has(name)) {
        if (state.timer) clearTimeout(state.timer);
        this.hosts.delete(name);
      }
    }
    let index = 0;
    for (const [name, spec] of wanted) {
      const existing = this.hosts.get(name);
      if (existing) {
        existing.spec = spec;
        continue;
      }
      const state: HostState = { spec, totals: new CounterTotals(), packets: new Map(), timer: undefined, reading: false, up: false, lastReadMono: null, last: null, lastError: null, resets: 0, refused: new Set() };
      this.hosts.set(name, state);
      // Splay the first reads over one period so that many hosts are not read in step.
      const splay = wanted.size > 1 ? Math.floor((this.options.periodMs * index++) / wanted.size) : 0;
      if (!this.stopped) this.schedule(state, splay);
    }
  }

  /** Reads a host now (outside its schedule); resolves with the sample, or null when the read failed. */
  async readNow(host: string): Promise<InterfaceSample | null> {
    const state = this.hosts.get(host);
    if (!state) return null;
    return this.read(state);
  }

  /** Latest totals of every watched interface. */
  snapshot(): { host: string; interface: string; receiveBytes: bigint; transmitBytes: bigint }[] {
    const out: { host: string; interface: string; receiveBytes: bigint; transmitBytes: bigint }[] = [];
    for (const [host, state] of this.hosts) {
      for (const [name, c] of state.last?.interfaces ?? []) out.push({ host, interface: name, receiveBytes: c.receiveBytes, transmitBytes: c.transmitBytes });
    }
    return out;
  }

  latest(host: string): InterfaceSample | null {
    return this.hosts.get(host)?.last ?? null;
  }

  health(): { host: string; up: boolean }[] {
    return [...this.hosts].map(([host, state]) => ({ host, up: state.up }));
  }

  /** Counter resets seen per host (an interface deleted and re-created). */
  resets(host: string): number {
    return this.hosts.get(host)?.resets ?? 0;
  }

  watchedHosts(): string[] {
    return [...this.hosts.keys()];
  }

  stop(): void {
    this.stopped = true;
    for (const state of this.hosts.values()) if (state.timer) clearTimeout(state.timer);
  }

  private schedule(state: HostState, delayMs?: number): void {
    if (this.stopped) return;
    const period = this.options.isMigrating(state.spec.host.name) ? this.options.migratingPeriodMs : this.options.periodMs;
    // While idle, re-check the period often enough to speed up soon after a migration starts.
    const wait = delayMs ?? Math.min(period, Math.max(this.options.migratingPeriodMs, 100));
    state.timer = setTimeout(() => {
      state.timer = undefined;
      const due = state.lastReadMono === null || this.options.clock.monoMs() - state.lastReadMono >= this.currentPeriod(state) - 5;
      if (!due) return this.schedule(state);
      void this.read(state).finally(() => {
        if (this.hosts.get(state.spec.host.name) === state) this.schedule(state);
      });
    }, wait);
    state.timer.unref?.();
  }

  private currentPeriod(state: HostState): number {
    return this.options.isMigrating(state.spec.host.name) ? this.options.migratingPeriodMs : this.options.periodMs;
  }

  private async read(state: HostState): Promise<InterfaceSample | null> {
    if (state.reading) return state.last;
    state.reading = true;
    const { host, netdevPath, interfaces } = state.spec;
    const startedMono = this.options.clock.monoMs();
    try {
      const parsed =
        netdevPath.replace(/\/+$/, '') === SYS_CLASS_NET
          ? await readSysClassNet(host, SYS_CLASS_NET, interfaces)
          : parseProcNetDev((await host.readFile(netdevPath)).toString('utf8'));
      const monoMs = this.options.clock.monoMs();
      const wallMs = this.options.clock.wallMs();
      const sinceMs = state.lastReadMono === null ? this.options.periodMs : monoMs - state.lastReadMono;
      const limit = plausibleBytes(sinceMs, this.options.maxLinkBitsPerSecond ?? DEFAULT_MAX_LINK);
      const sample: InterfaceSample = { host: host.name, wallMs, monoMs, interfaces: new Map() };
      for (const error of parsed.errors) this.report(state, new LivemigError('LME_NETDEV_PARSE', [netdevPath, host.name, error]), false);
      const cap = this.options.maxInterfacesPerHost ?? MAX_INTERFACES_PER_HOST;
      const refused: string[] = [];
      for (const counters of parsed.interfaces) {
        if (!interfaceMatches(interfaces, counters.interface)) continue;
        if (sample.interfaces.size >= cap) {
          if (!state.refused.has(counters.interface)) refused.push(counters.interface);
          continue;
        }
        if (counters.receiveBytes === null || counters.transmitBytes === null) {
          this.report(state, new LivemigError('LME_NETDEV_PARSE', [netdevPath, host.name, `${counters.interface}: this layout has no byte counters`]), false);
          continue;
        }
        const back = (direction: 'rx' | 'tx', packets: bigint | null): boolean | undefined => {
          const key = `${counters.interface}\u0000${direction}`;
          const previous = state.packets.get(key);
          if (packets === null) return undefined;
          state.packets.set(key, packets);
          return previous === undefined ? undefined : packets < previous;
        };
        const rxBack = back('rx', counters.receivePackets);
        const txBack = back('tx', counters.transmitPackets);
        const rx = state.totals.update(`${counters.interface}\u0000rx`, counters.receiveBytes, limit, rxBack);
        const tx = state.totals.update(`${counters.interface}\u0000tx`, counters.transmitBytes, limit, txBack);
        if (rx?.kind === 'reset' || tx?.kind === 'reset') {
          state.resets++;
          this.options.logger?.info({ host: host.name, interface: counters.interface }, 'interface counters went back: device re-created, counting on from 0');
        }
        sample.interfaces.set(counters.interface, {
          receiveBytes: state.totals.total(`${counters.interface}\u0000rx`) ?? 0n,
          transmitBytes: state.totals.total(`${counters.interface}\u0000tx`) ?? 0n,
          receivePackets: counters.receivePackets,
          transmitPackets: counters.transmitPackets,
        });
      }
      if (refused.length > 0) {
        // Bounded too: past 10,000 names told, they are told again rather than kept.
        if (state.refused.size > 10_000) state.refused.clear();
        for (const name of refused) state.refused.add(name);
        this.options.logger?.warn({ host: host.name, cap, refused: refused.slice(0, 10), more: Math.max(0, refused.length - 10) }, 'interfaces past the cap of one host are not read (livemig_series_refused_total{kind="interface"})');
        this.options.onRefused?.(host.name, refused);
      }
      state.lastReadMono = startedMono;
      state.last = sample;
      state.up = true;
      state.lastError = null;
      this.options.onSample?.(sample);
      return sample;
    } catch (err) {
      state.up = false;
      this.report(state, err instanceof Error ? err : new Error(String(err)), true);
      return null;
    } finally {
      state.reading = false;
    }
  }

  private report(state: HostState, err: Error, fatal: boolean): void {
    const message = errorMessage(err);
    const repeated = state.lastError === message;
    if (fatal) state.lastError = message;
    this.options.onError?.(state.spec.host.name, err);
    if (repeated) this.options.logger?.debug({ host: state.spec.host.name, err: message }, 'interface counters not read');
    else this.options.logger?.warn({ host: state.spec.host.name, err: message }, 'interface counters not read');
  }
}
