import { Limits } from './protocol.js';
import { decodeTypedParam, encodeTypedParam, type TypedParam } from './typed-params.js';
import { XdrOut, type XdrIn } from './xdr.js';

/**
 * The libvirt structs this client sends and receives, field by field in the order of libvirt
 * 9.0's src/remote/remote_protocol.x and src/rpc/virnetprotocol.x. Pure.
 */

/** remote_nonnull_domain: what every domain call names and every event carries. */
export interface DomainRef {
  name: string;
  /** Lower-case 8-4-4-4-12 text; on the wire 16 bytes. */
  uuid: string;
  /** The running domain's id, -1 when it is not running. */
  id: number;
}

export function readDomain(input: XdrIn): DomainRef {
  const name = input.string(Limits.REMOTE_STRING_MAX);
  const uuid = formatUuid(input.opaque(Limits.UUID_BYTES));
  return { name, uuid, id: input.int() };
}

export function writeDomain(output: XdrOut, domain: DomainRef): void {
  output.string(domain.name, Limits.REMOTE_STRING_MAX).opaque(parseUuid(domain.uuid), Limits.UUID_BYTES).int(domain.id);
}

export function formatUuid(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const UUID_TEXT = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

export function parseUuid(text: string): Buffer {
  if (!UUID_TEXT.test(text)) throw new TypeError(`not a UUID: ${JSON.stringify(text)}`);
  return Buffer.from(text.replace(/-/g, ''), 'hex');
}

/** virNetMessageError (remote_error): why a call failed. */
export interface RemoteError {
  code: number;
  domain: number;
  message: string | null;
  level: number;
  str1: string | null;
  str2: string | null;
  str3: string | null;
  int1: number;
  int2: number;
}

export function readRemoteError(input: XdrIn): RemoteError {
  const string = (): string | null => input.optional((i) => i.string(Limits.VIR_NET_MESSAGE_STRING_MAX));
  const code = input.int();
  const domain = input.int();
  const message = string();
  const level = input.int();
  input.optional(readDomain); // dom: unused by libvirt
  const str1 = string();
  const str2 = string();
  const str3 = string();
  const int1 = input.int();
  const int2 = input.int();
  input.optional((i) => ({ name: i.string(Limits.VIR_NET_MESSAGE_STRING_MAX), uuid: i.opaque(Limits.UUID_BYTES) })); // net: unused
  return { code, domain, message, level, str1, str2, str3, int1, int2 };
}

export function writeRemoteError(output: XdrOut, error: RemoteError): void {
  const string = (value: string | null): void => {
    output.optional(value, (o, v) => o.string(v, Limits.VIR_NET_MESSAGE_STRING_MAX));
  };
  output.int(error.code).int(error.domain);
  string(error.message);
  output.int(error.level).bool(false);
  string(error.str1);
  string(error.str2);
  string(error.str3);
  output.int(error.int1).int(error.int2).bool(false);
}

// ---- call arguments (remote_*_args) ----

export const encode = {
  connectOpen: (uri: string | null, flags: number): Buffer =>
    new XdrOut().optional(uri, (o, v) => o.string(v, Limits.REMOTE_STRING_MAX)).uint(flags).bytes(),
  supportsFeature: (feature: number): Buffer => new XdrOut().int(feature).bytes(),
  listAllDomains: (flags: number): Buffer => new XdrOut().int(1).uint(flags).bytes(),
  domainWithFlags: (domain: DomainRef, flags: number): Buffer => {
    const output = new XdrOut();
    writeDomain(output, domain);
    return output.uint(flags).bytes();
  },
  domain: (domain: DomainRef): Buffer => {
    const output = new XdrOut();
    writeDomain(output, domain);
    return output.bytes();
  },
  lookupByUuid: (uuid: string): Buffer => new XdrOut().opaque(parseUuid(uuid), Limits.UUID_BYTES).bytes(),
  lookupByName: (name: string): Buffer => new XdrOut().string(name, Limits.REMOTE_STRING_MAX).bytes(),
  registerEvent: (eventId: number, domain: DomainRef | null): Buffer =>
    new XdrOut().int(eventId).optional(domain, writeDomain).bytes(),
  callbackId: (callbackId: number): Buffer => new XdrOut().int(callbackId).bytes(),
};

// ---- replies (remote_*_ret) ----

export const read = {
  authList: (input: XdrIn): number[] => input.array(Limits.AUTH_TYPE_LIST_MAX, (i) => i.int()),
  /** remote_auth_polkit_ret: `complete`. */
  authPolkit: (input: XdrIn): boolean => input.bool(),
  int: (input: XdrIn): number => input.int(),
  libVersion: (input: XdrIn): bigint => input.uhyper(),
  /** remote_connect_list_all_domains_ret: the domains, then their count. */
  listAllDomains: (input: XdrIn): DomainRef[] => {
    const domains = input.array(Limits.DOMAIN_LIST_MAX, readDomain);
    input.uint();
    return domains;
  },
  domainState: (input: XdrIn): { state: number; reason: number } => ({ state: input.int(), reason: input.int() }),
  string: (input: XdrIn): string => input.string(Limits.REMOTE_STRING_MAX),
  domain: readDomain,
  jobStats: (input: XdrIn): { type: number; params: TypedParam[] } => ({
    type: input.int(),
    params: input.array(Limits.DOMAIN_JOB_STATS_MAX, decodeTypedParam),
  }),
  nothing: (): void => undefined,
};

/** Builds a job-stats reply body, for tests that need one of a given shape. */
export function encodeJobStats(type: number, params: readonly TypedParam[]): Buffer {
  return new XdrOut().int(type).array(params, encodeTypedParam).bytes();
}
