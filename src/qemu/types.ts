/** QMP wire messages (docs/interop/qmp-spec.rst) and the typed view of `query-migrate`. */

export interface QmpTimestamp {
  seconds: number;
  microseconds: number;
}

export interface QmpGreeting {
  QMP: { version: { qemu: { major: number; minor: number; micro: number }; package: string }; capabilities: string[] };
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp: QmpTimestamp;
}

export interface QmpReturn {
  return: unknown;
  id?: unknown;
}

export interface QmpErrorReply {
  error: { class: string; desc: string };
  id?: unknown;
}

export type QmpMessage = QmpGreeting | QmpEvent | QmpReturn | QmpErrorReply;

/** `ram` of query-migrate, keyed by QEMU's own field names; only numeric fields are kept. */
export const RAM_FIELDS = [
  'transferred',
  'remaining',
  'total',
  'duplicate',
  'normal',
  'normal-bytes',
  'dirty-pages-rate',
  'mbps',
  'dirty-sync-count',
  'postcopy-requests',
  'page-size',
  'multifd-bytes',
  'pages-per-second',
  'precopy-bytes',
  'downtime-bytes',
  'postcopy-bytes',
  'dirty-sync-missed-zero-copy',
  'skipped',
] as const;
export type RamField = (typeof RAM_FIELDS)[number];
export type RamStats = Partial<Record<RamField, number>>;

/** The typed view of one `query-migrate` reply. Times are QEMU's, in milliseconds. */
export interface MigrationInfo {
  /** QEMU's status; 'none' when the reply has no status. Unknown statuses are kept verbatim. */
  status: string;
  totalTimeMs?: number;
  expectedDowntimeMs?: number;
  downtimeMs?: number;
  setupTimeMs?: number;
  errorDesc?: string;
  postcopyBlocktimeMs?: number;
  ram?: RamStats;
  /** True when the reply carries `socket-address`: this QEMU is the incoming (destination) side. */
  incoming: boolean;
  /** 'libvirt': the figures are libvirt's job statistics about this QEMU, named as libvirt names them (see LIBVIRT_FIELDS). */
  origin?: 'libvirt';
  /** Block migration's figures (libvirt's disk_*), bytes and bytes/s; QMP reports none. */
  disk?: DiskStats;
}

export interface DiskStats {
  total?: number;
  processed?: number;
  remaining?: number;
  bps?: number;
}

/** How to reach one QEMU monitor (config `vms[].monitors[].qmp`). */
export type QmpEndpoint =
  | { kind: 'unix'; path: string }
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'virsh'; domain: string; uri?: string; virshPath: string };

/** The one text form of an endpoint, in logs, errors and monitor ids: `unix:PATH`, `tcp:HOST:PORT`, `virsh:URI/DOMAIN`. */
export function describeQmpEndpoint(endpoint: QmpEndpoint): string {
  switch (endpoint.kind) {
    case 'unix':
      return `unix:${endpoint.path}`;
    case 'tcp':
      return `tcp:${endpoint.host}:${endpoint.port}`;
    case 'virsh':
      return `virsh:${endpoint.uri ?? 'default'}/${endpoint.domain}`;
  }
}
