import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SimMigration, type SimGuest, type SimSnapshot } from './model.js';
import { qmpError, SimQmpServer, type QmpReply } from './qmp-server.js';

/**
 * The SIMULATED cloud: VMs that are QMP servers on unix sockets (one SimQemu per VM per host),
 * migrating by the model of ./model.ts, and each host's migration-interface counters in a file
 * in /proc/net/dev's format (the exporter's hosts[].netdev_path). Every reply says SIMULATED in
 * the greeting's package.
 */

export const SIM_INTERFACE = 'mig0';
const TICK_MS = 20;
/** TSO: one 66-byte header per 64 KiB segment (the lab-notes ratio 1.0011). */
const SEGMENT_BYTES = 65_160;
const HEADER_BYTES = 66;
/** Destination to source in post-copy: a page request and acks per 64 pages. */
const REQUEST_BYTES_PER_PAGE = 2;

interface Counters {
  rxBytes: number;
  rxPackets: number;
  txBytes: number;
  txPackets: number;
}

export interface SimQemuOptions {
  name: string;
  host: string;
  guest: SimGuest;
  qmpSockets: string[];
  incoming: boolean;
  /** The VM answers (SIMULATED) ping on this address while it runs. */
  pingAddress?: string;
}

export class SimCloud {
  private readonly counters = new Map<string, Counters>();
  private readonly listening = new Map<string, SimQemu>();
  private readonly vms = new Set<SimQemu>();
  private readonly timer: NodeJS.Timeout;
  private writing: Promise<void> = Promise.resolve();
  /** Address -> [from, until] wall ms during which the LAN loses it. */
  private readonly blackholes = new Map<string, [number, number]>();
  private lastPingState = '';

  constructor(
    readonly dir: string,
    readonly hosts: readonly string[],
    /** Link rate, bytes per second. */
    readonly linkBytesPerSecond: number,
  ) {
    for (const host of hosts) this.counters.set(host, { rxBytes: 0, rxPackets: 0, txBytes: 0, txPackets: 0 });
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  netdevPath(host: string): string {
    return join(this.dir, `${host}.netdev`);
  }

  /** What the SIMULATED fping reads: which addresses answer now. */
  get pingStatePath(): string {
    return join(this.dir, 'ping-state.json');
  }

  blackhole(address: string, fromMs: number, untilMs: number): void {
    this.blackholes.set(address, [fromMs, untilMs]);
  }

  async writePingState(now: number = Date.now()): Promise<void> {
    const answering: Record<string, boolean> = {};
    for (const vm of this.vms) {
      const address = vm.pingAddress;
      if (!address) continue;
      const dark = this.blackholes.get(address);
      const lost = dark !== undefined && now >= dark[0] && now < dark[1];
      answering[address] = (answering[address] ?? false) || (vm.runState === 'running' && !lost);
    }
    const text = JSON.stringify({ SIMULATED: true, answering });
    if (text === this.lastPingState) return;
    this.lastPingState = text;
    await writeFile(`${this.pingStatePath}.tmp`, text);
    await rename(`${this.pingStatePath}.tmp`, this.pingStatePath);
  }

  async startQemu(options: SimQemuOptions): Promise<SimQemu> {
    const vm = new SimQemu(this, options);
    await vm.listen();
    this.vms.add(vm);
    return vm;
  }

  async writeCounters(): Promise<void> {
    this.writing = this.writing.then(async () => {
      for (const host of this.hosts) {
        const path = this.netdevPath(host);
        await writeFile(`${path}.tmp`, netdevText(this.counters.get(host) as Counters));
        await rename(`${path}.tmp`, path);
      }
    });
    return this.writing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.vms].map((vm) => vm.stop()));
    await this.writing.catch(() => undefined);
  }

  /** @internal */
  listenOn(uri: string, vm: SimQemu): void {
    this.listening.set(uri, vm);
  }

  /** @internal */
  takeListener(uri: string): SimQemu | undefined {
    const vm = this.listening.get(uri);
    this.listening.delete(uri);
    return vm;
  }

  /** @internal */
  forget(vm: SimQemu): void {
    this.vms.delete(vm);
    for (const [uri, listener] of this.listening) if (listener === vm) this.listening.delete(uri);
  }

  /** @internal: bytes the model moved since the last tick, on the hosts' interfaces. */
  carry(from: string, to: string, payloadBytes: number, requestBytes: number): void {
    const src = this.counters.get(from);
    const dst = this.counters.get(to);
    if (!src || !dst) return;
    const segments = Math.ceil(payloadBytes / SEGMENT_BYTES);
    const wire = payloadBytes + segments * HEADER_BYTES;
    src.txBytes += wire;
    src.txPackets += segments;
    dst.rxBytes += wire;
    dst.rxPackets += segments;
    const back = requestBytes + segments * HEADER_BYTES;
    dst.txBytes += back;
    dst.txPackets += segments;
    src.rxBytes += back;
    src.rxPackets += segments;
  }

  private tick(): void {
    let moved = false;
    for (const vm of this.vms) moved = vm.tick(Date.now()) || moved;
    if (moved) void this.writeCounters().catch(() => undefined);
    this.writing = this.writing.then(() => this.writePingState()).catch(() => undefined);
  }
}

/** /proc/net/dev with loopback and the migration interface. */
export function netdevText(c: Counters): string {
  const row = (name: string, k: Counters): string =>
    `${name.padStart(6)}: ${[k.rxBytes, k.rxPackets, 0, 0, 0, 0, 0, 0, k.txBytes, k.txPackets, 0, 0, 0, 0, 0, 0].map((n) => String(Math.round(n)).padStart(8)).join(' ')}\n`;
  return (
    'Inter-|   Receive                                                |  Transmit\n' +
    ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n' +
    row('lo', { rxBytes: 0, rxPackets: 0, txBytes: 0, txPackets: 0 }) +
    row(SIM_INTERFACE, c)
  );
}

interface Outgoing {
  model: SimMigration;
  startWallMs: number;
  peer: SimQemu;
  lastTransferred: number;
  lastPostcopy: number;
  ended: boolean;
  cancelled: boolean;
  final: SimSnapshot | null;
}

export class SimQemu {
  readonly name: string;
  readonly host: string;
  runState: string;
  private readonly servers: SimQmpServer[] = [];
  private readonly capabilities = new Set<string>();
  private maxBandwidth = Number.POSITIVE_INFINITY;
  private downtimeLimitMs: number | undefined;
  private maxPostcopyBandwidth: number | undefined;
  private outgoing: Outgoing | undefined;
  /** Destination side: the source whose migration this QEMU receives. */
  private incomingFrom: SimQemu | undefined;
  private incomingStatus: string | undefined;
  private incomingUri: string | undefined;
  private stopped = false;

  constructor(
    private readonly cloud: SimCloud,
    private readonly options: SimQemuOptions,
  ) {
    this.name = options.name;
    this.host = options.host;
    this.runState = options.incoming ? 'inmigrate' : 'running';
  }

  get pingAddress(): string | undefined {
    return this.options.pingAddress;
  }

  get qmpSockets(): readonly string[] {
    return this.options.qmpSockets;
  }

  async listen(): Promise<void> {
    for (const path of this.options.qmpSockets) this.servers.push(await SimQmpServer.listen(path, (command, args) => this.handle(command, args)));
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.runState = 'shutdown';
    this.cloud.forget(this);
    await Promise.all(this.servers.map((server) => server.close()));
  }

  /** Advances this VM's outgoing migration; true when bytes moved. */
  tick(nowMs: number): boolean {
    const out = this.outgoing;
    if (!out || out.ended) return false;
    const elapsed = nowMs - out.startWallMs;
    for (const event of out.model.advance(elapsed)) {
      const target = event.side === 'source' ? this : out.peer;
      target.emit(event.event, out.startWallMs + event.atMs, event.data);
      if (event.side === 'destination' && event.event === 'MIGRATION') out.peer.incomingStatus = String(event.data?.status);
      if (event.event === 'STOP') this.runState = 'finish-migrate';
      if (event.event === 'RESUME') out.peer.runState = 'running';
    }
    const snap = out.model.snapshot(elapsed);
    if (this.runState === 'finish-migrate' && snap.status === 'postcopy-active') this.runState = 'postmigrate';
    const delta = snap.ram.transferred - out.lastTransferred;
    const requests = (snap.ram['postcopy-bytes'] - out.lastPostcopy) / 4096 * REQUEST_BYTES_PER_PAGE;
    out.lastTransferred = snap.ram.transferred;
    out.lastPostcopy = snap.ram['postcopy-bytes'];
    if (delta > 0) this.cloud.carry(this.host, out.peer.host, delta, requests);
    if (snap.status === 'completed') {
      out.ended = true;
      out.final = snap;
      this.runState = 'postmigrate';
      out.peer.runState = 'running';
    }
    return delta > 0;
  }

  private emit(event: string, atMs: number, data?: Record<string, unknown>): void {
    for (const server of this.servers) server.emit(event, atMs, data);
  }

  private handle(command: string, args: Record<string, unknown>): QmpReply {
    switch (command) {
      case 'query-status':
        return { return: { status: this.runState, singlestep: false, running: this.runState === 'running' } };
      case 'query-migrate':
        return { return: this.queryMigrate() };
      case 'migrate-set-capabilities': {
        const list = Array.isArray(args.capabilities) ? (args.capabilities as { capability?: unknown; state?: unknown }[]) : [];
        for (const entry of list) {
          if (typeof entry.capability !== 'string') return qmpError("Parameter 'capability' is missing");
          if (entry.state) this.capabilities.add(entry.capability);
          else this.capabilities.delete(entry.capability);
        }
        return { return: {} };
      }
      case 'migrate-set-parameters': {
        if (typeof args['max-bandwidth'] === 'number') this.maxBandwidth = args['max-bandwidth'];
        if (typeof args['downtime-limit'] === 'number') this.downtimeLimitMs = args['downtime-limit'];
        if (typeof args['max-postcopy-bandwidth'] === 'number') this.maxPostcopyBandwidth = args['max-postcopy-bandwidth'];
        return { return: {} };
      }
      case 'migrate-incoming': {
        if (this.runState !== 'inmigrate') return qmpError("The command migrate-incoming can only be used with '-incoming defer'");
        const uri = String(args.uri ?? '');
        this.incomingUri = uri;
        this.incomingStatus = 'setup';
        this.cloud.listenOn(uri, this);
        this.emit('MIGRATION', Date.now(), { status: 'setup' });
        return { return: {} };
      }
      case 'migrate':
        return this.migrate(String(args.uri ?? ''));
      case 'migrate-start-postcopy': {
        if (!this.outgoing || this.outgoing.ended) return qmpError('Postcopy must be started after migration has been started');
        if (!this.capabilities.has('postcopy-ram')) return qmpError('Enable postcopy with migrate_set_capability before the start of migration');
        this.outgoing.model.startPostcopy(Date.now() - this.outgoing.startWallMs);
        return { return: {} };
      }
      case 'migrate_cancel': {
        const out = this.outgoing;
        if (out && !out.ended) {
          out.ended = true;
          out.cancelled = true;
          this.emit('MIGRATION', Date.now(), { status: 'cancelled' });
          out.peer.incomingStatus = 'failed';
          out.peer.emit('MIGRATION', Date.now(), { status: 'failed' });
        }
        return { return: {} };
      }
      default:
        return qmpError(`The command ${command} has not been found`, 'CommandNotFound');
    }
  }

  private migrate(uri: string): QmpReply {
    if (this.runState !== 'running') return qmpError(`Guest is not running (${this.runState})`);
    if (this.outgoing && !this.outgoing.ended) return qmpError('There is already a migration in progress');
    // query-migrate reports the latest migration: this outgoing one, no longer the one that brought the guest here.
    this.incomingStatus = undefined;
    this.incomingUri = undefined;
    const peer = this.cloud.takeListener(uri);
    if (!peer) {
      this.outgoing = undefined;
      this.failedUri = uri;
      this.emit('MIGRATION', Date.now(), { status: 'setup' });
      this.emit('MIGRATION', Date.now(), { status: 'failed' });
      return { return: {} };
    }
    const model = new SimMigration(this.options.guest, this.cloud.linkBytesPerSecond, this.maxBandwidth, this.downtimeLimitMs, this.maxPostcopyBandwidth);
    this.outgoing = { model, startWallMs: Date.now(), peer, lastTransferred: 0, lastPostcopy: 0, ended: false, cancelled: false, final: null };
    peer.incomingFrom = this;
    this.failedUri = undefined;
    return { return: {} };
  }

  private failedUri: string | undefined;

  private queryMigrate(): Record<string, unknown> {
    if (this.failedUri !== undefined) {
      return { status: 'failed', 'error-desc': `Failed to connect to '${this.failedUri}': SIMULATED: no destination listens there` };
    }
    if (this.incomingStatus !== undefined) {
      return this.incomingStatus === 'completed' || this.incomingStatus === 'failed'
        ? { status: this.incomingStatus }
        : { status: this.incomingStatus, 'socket-address': [{ type: 'unix', path: this.incomingUri?.replace(/^unix:/, '') ?? '' }] };
    }
    const out = this.outgoing;
    if (!out) return {};
    if (out.cancelled) return { status: 'cancelled' };
    const snap = out.final ?? out.model.snapshot(Date.now() - out.startWallMs);
    return {
      status: snap.status,
      'setup-time': snap.setupTimeMs,
      'total-time': snap.totalTimeMs,
      ...(snap.downtimeMs !== null ? { downtime: snap.downtimeMs } : { 'expected-downtime': 300 }),
      ram: { ...snap.ram, 'multifd-bytes': 0, 'pages-per-second': 0, skipped: 0, 'dirty-sync-missed-zero-copy': 0 },
    };
  }
}
