/**
 * Numbers of libvirt's RPC protocol, checked against libvirt 9.0.0's src/rpc/virnetprotocol.x,
 * src/rpc/virkeepaliveprotocol.x, src/remote/remote_protocol.x and include/libvirt/*.h.
 * libvirt only ever adds procedure numbers, so these hold for every later release too.
 */

export const REMOTE_PROGRAM = 0x20008086;
export const REMOTE_PROTOCOL_VERSION = 1;
export const KEEPALIVE_PROGRAM = 0x6b656570;
export const KEEPALIVE_PROTOCOL_VERSION = 1;

export const MessageType = { call: 0, reply: 1, message: 2, stream: 3, callWithFds: 4, replyWithFds: 5 } as const;
export const MessageStatus = { ok: 0, error: 1, continue: 2 } as const;

/** The length word plus six header words. */
export const PACKET_HEADER_BYTES = 28;
/** VIR_NET_MESSAGE_MAX (32 MiB in libvirt 9.0) counts the header but not the 4-byte length word. */
export const PACKET_MAX_BYTES = 33_554_432 + 4;

export const Procedure = {
  CONNECT_OPEN: 1,
  CONNECT_CLOSE: 2,
  DOMAIN_GET_XML_DESC: 14,
  DOMAIN_LOOKUP_BY_NAME: 23,
  DOMAIN_LOOKUP_BY_UUID: 24,
  DOMAIN_SUSPEND: 34,
  CONNECT_SUPPORTS_FEATURE: 60,
  AUTH_LIST: 66,
  AUTH_POLKIT: 70,
  CONNECT_GET_LIB_VERSION: 157,
  DOMAIN_GET_STATE: 212,
  CONNECT_LIST_ALL_DOMAINS: 273,
  DOMAIN_GET_JOB_STATS: 298,
  CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY: 316,
  CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY: 317,
  DOMAIN_EVENT_CALLBACK_LIFECYCLE: 318,
  DOMAIN_EVENT_CALLBACK_MIGRATION_ITERATION: 359,
  DOMAIN_EVENT_CALLBACK_JOB_COMPLETED: 363,
} as const;
export type ProcedureName = keyof typeof Procedure;

const PROCEDURE_NAMES = new Map<number, ProcedureName>(
  Object.entries(Procedure).map(([name, number]) => [number, name as ProcedureName]),
);

/** "DOMAIN_GET_STATE", or "procedure 999" for one this client does not know. */
export function procedureName(procedure: number): string {
  return PROCEDURE_NAMES.get(procedure) ?? `procedure ${procedure}`;
}

export const KeepaliveProcedure = { PING: 1, PONG: 2 } as const;

export const AuthType = { none: 0, sasl: 1, polkit: 2 } as const;

/** virDrvFeature (src/libvirt_internal.h): asking about PROGRAM_KEEPALIVE makes the daemon ping us. */
export const DriverFeature = { PROGRAM_KEEPALIVE: 10 } as const;

/** virConnectFlags: VIR_CONNECT_RO. */
export const CONNECT_READ_ONLY = 1;

/** virDomainGetJobStatsFlags. */
export const JobStatsFlags = { COMPLETED: 1, KEEP_COMPLETED: 2 } as const;

/** virDomainEventID: the three this exporter watches. */
export const DomainEventId = { LIFECYCLE: 0, MIGRATION_ITERATION: 20, JOB_COMPLETED: 21 } as const;

/** Limits from remote_protocol.x and virnetprotocol.x, enforced while decoding. */
export const Limits = {
  REMOTE_STRING_MAX: 4_194_304,
  VIR_NET_MESSAGE_STRING_MAX: 4_194_304,
  UUID_BYTES: 16,
  DOMAIN_LIST_MAX: 16_384,
  DOMAIN_JOB_STATS_MAX: 64,
  AUTH_TYPE_LIST_MAX: 20,
} as const;
