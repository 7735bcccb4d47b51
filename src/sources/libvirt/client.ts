import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { LivemigError, errorMessage } from '../../errors.js';
import { decodeDomainEvent, type DomainEvent } from './events.js';
import { domainStateName, jobTypeName, stateReasonName } from './names.js';
import {
  AuthType,
  CONNECT_READ_ONLY,
  DomainEventId,
  DriverFeature,
  JobStatsFlags,
  Procedure,
  procedureName,
} from './protocol.js';
import { RpcConnection, type KeepaliveOptions, type RpcConnectionOptions } from './rpc-connection.js';
import { typedParamsObject, type TypedParam, type TypedParamValue } from './typed-params.js';
import { encode, read, type DomainRef } from './wire.js';
import { XdrDecodeError, type XdrIn } from './xdr.js';

export const DEFAULT_LIBVIRT_URI = 'qemu:///system';
/** libvirt's own client default (virsh): a PING after 5 s of quiet, dead after 5 more. */
export const DEFAULT_KEEPALIVE: KeepaliveOptions = { intervalMs: 5_000, count: 5 };

export interface LibvirtClientEvents {
  event: [event: DomainEvent];
  /** The connection ended (daemon restart, parse failure, keepalive, close()). Emitted once. */
  close: [reason: LivemigError];
}

export interface LibvirtClientOptions extends RpcConnectionOptions {
  /** The URI CONNECT_OPEN names; the socket decides the daemon. */
  uri?: string;
  /** VIR_CONNECT_RO. True unless read-write access is asked for. */
  readOnly?: boolean;
  /** false: no keepalive (the daemon never pings us, we never ping it). */
  keepalive?: KeepaliveOptions | false;
}

export interface DomainState {
  state: number;
  reason: number;
  stateName: string;
  reasonName: string;
}

export interface JobStats {
  /** virDomainJobType. */
  type: number;
  typeName: string;
  stats: Record<string, TypedParamValue>;
  params: TypedParam[];
}

export type DomainEventName = keyof typeof DomainEventId;

/**
 * A libvirt connection over a byte stream (its unix socket, or one forwarded over SSH), with the
 * procedures a migration exporter needs. Open it with LibvirtClient.open(); watch 'close' to
 * reconnect.
 */
export class LibvirtClient extends EventEmitter<LibvirtClientEvents> {
  private libvirtLibVersion = 0n;

  static async open(stream: Duplex, target: string, options: LibvirtClientOptions = {}): Promise<LibvirtClient> {
    const client = new LibvirtClient(new RpcConnection(stream, target, options));
    try {
      await client.authenticate();
      const keepalive = options.keepalive ?? DEFAULT_KEEPALIVE;
      if (keepalive) {
        // Asking about the feature is how a client tells the daemon it answers PINGs.
        await client.rpc.call(Procedure.CONNECT_SUPPORTS_FEATURE, encode.supportsFeature(DriverFeature.PROGRAM_KEEPALIVE), read.int);
        client.rpc.startKeepalive(keepalive);
      }
      const flags = (options.readOnly ?? true) ? CONNECT_READ_ONLY : 0;
      await client.rpc.call(Procedure.CONNECT_OPEN, encode.connectOpen(options.uri ?? DEFAULT_LIBVIRT_URI, flags), read.nothing);
      client.libvirtLibVersion = await client.rpc.call(Procedure.CONNECT_GET_LIB_VERSION, Buffer.alloc(0), read.libVersion);
      return client;
    } catch (err) {
      await client.rpc.close();
      if (err instanceof LivemigError && err.code !== 'LME_LIBVIRT_CALL') throw err;
      throw new LivemigError('LME_LIBVIRT_CONNECT', [target, errorMessage(err)], { cause: err });
    }
  }

  private constructor(private readonly rpc: RpcConnection) {
    super();
    rpc.on('close', (reason) => this.emit('close', reason));
    rpc.on('message', (procedure, body) => this.handleMessage(procedure, body));
  }

  get target(): string {
    return this.rpc.target;
  }

  get isClosed(): boolean {
    return this.rpc.isClosed;
  }

  /** The daemon's libvirt version as major * 1,000,000 + minor * 1,000 + micro (9000000 for 9.0.0). */
  get libVersion(): number {
    return Number(this.libvirtLibVersion);
  }

  getLibVersion(): Promise<number> {
    return this.rpc.call(Procedure.CONNECT_GET_LIB_VERSION, Buffer.alloc(0), read.libVersion).then(Number);
  }

  /** Every domain, or those matching virConnectListAllDomainsFlags. */
  listAllDomains(flags = 0): Promise<DomainRef[]> {
    return this.rpc.call(Procedure.CONNECT_LIST_ALL_DOMAINS, encode.listAllDomains(flags), read.listAllDomains);
  }

  async getState(domain: DomainRef): Promise<DomainState> {
    const { state, reason } = await this.rpc.call(Procedure.DOMAIN_GET_STATE, encode.domainWithFlags(domain, 0), read.domainState);
    return { state, reason, stateName: domainStateName(state), reasonName: stateReasonName(state, reason) };
  }

  /** The domain's XML; flags are virDomainXMLFlags (0: the live definition). */
  getXmlDesc(domain: DomainRef, flags = 0): Promise<string> {
    return this.rpc.call(Procedure.DOMAIN_GET_XML_DESC, encode.domainWithFlags(domain, flags), read.string);
  }

  lookupByUuid(uuid: string): Promise<DomainRef> {
    return this.rpc.call(Procedure.DOMAIN_LOOKUP_BY_UUID, encode.lookupByUuid(uuid), read.domain);
  }

  lookupByName(name: string): Promise<DomainRef> {
    return this.rpc.call(Procedure.DOMAIN_LOOKUP_BY_NAME, encode.lookupByName(name), read.domain);
  }

  /**
   * The domain's job statistics. `current` (the default) asks QEMU about the running job;
   * `completed` reads the cached figures of the last finished job, which libvirt then forgets
   * unless `keep` is set.
   */
  async getJobStats(domain: DomainRef, which: { completed?: boolean; keep?: boolean } = {}): Promise<JobStats> {
    let flags = 0;
    if (which.completed) flags |= JobStatsFlags.COMPLETED;
    if (which.keep) flags |= JobStatsFlags.KEEP_COMPLETED;
    const { type, params } = await this.rpc.call(Procedure.DOMAIN_GET_JOB_STATS, encode.domainWithFlags(domain, flags), read.jobStats);
    return { type, typeName: jobTypeName(type), stats: typedParamsObject(params), params };
  }

  /** Registers for one event kind, for one domain or (null) all domains present and future; returns its callback id. */
  registerDomainEvent(event: DomainEventName, domain: DomainRef | null = null): Promise<number> {
    return this.rpc.call(
      Procedure.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
      encode.registerEvent(DomainEventId[event], domain),
      read.int,
    );
  }

  deregisterDomainEvent(callbackId: number): Promise<void> {
    return this.rpc.call(Procedure.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, encode.callbackId(callbackId), read.nothing);
  }

  /** Any other procedure, with its XDR arguments and a reader for its reply. */
  call<T>(procedure: number, args: Buffer, decode: (input: XdrIn) => T, timeoutMs?: number): Promise<T> {
    return this.rpc.call(procedure, args, decode, timeoutMs);
  }

  /** CONNECT_CLOSE, then the stream is closed; 'close' follows. Safe to call more than once. */
  async close(timeoutMs = 2_000): Promise<void> {
    if (!this.rpc.isClosed) {
      await this.rpc.call(Procedure.CONNECT_CLOSE, Buffer.alloc(0), read.nothing, timeoutMs).catch(() => undefined);
    }
    await this.rpc.close();
  }

  private async authenticate(): Promise<void> {
    const offered = await this.rpc.call(Procedure.AUTH_LIST, Buffer.alloc(0), read.authList);
    if (offered.includes(AuthType.none)) return;
    if (offered.includes(AuthType.polkit)) {
      const complete = await this.rpc.call(Procedure.AUTH_POLKIT, Buffer.alloc(0), read.authPolkit).catch((err: unknown) => {
        throw new LivemigError('LME_LIBVIRT_AUTH', [this.target, `polkit refused: ${errorMessage(err)}`], { cause: err });
      });
      if (complete) return;
      throw new LivemigError('LME_LIBVIRT_AUTH', [this.target, 'polkit did not complete']);
    }
    const names = offered.map((type) => Object.entries(AuthType).find(([, value]) => value === type)?.[0] ?? `type ${type}`);
    throw new LivemigError('LME_LIBVIRT_AUTH', [this.target, `the daemon offers ${names.join(', ') || 'nothing'}; this client speaks none and polkit`]);
  }

  private handleMessage(procedure: number, body: Buffer): void {
    let event: DomainEvent | null;
    try {
      event = decodeDomainEvent(procedure, body);
    } catch (err) {
      if (!(err instanceof XdrDecodeError)) throw err;
      this.rpc.fail('truncated or malformed event', `${procedureName(procedure)}: ${err.message}`, err);
      return;
    }
    if (event) this.emit('event', event);
  }
}
