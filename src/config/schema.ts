import { isIP } from 'node:net';
import { z } from 'zod';
import { formatDurationMs, parseDurationMs } from './duration.js';
import { describeQmpEndpoint, type QmpEndpoint } from '../qemu/types.js';
import { parseTimeZone } from './timezone.js';
import { LOG_KINDS, type LogFileConfig } from './log-files.js';

/** A duration as Prometheus writes it ("100ms", "10s", "30d"), in milliseconds once parsed. */
const duration = (min: string, max: string) =>
  z.string({ error: (issue) => notADuration(issue.input, min, max) }).transform((text, ctx) => {
    const ms = parseDurationMs(text);
    const lo = parseDurationMs(min) as number;
    const hi = parseDurationMs(max) as number;
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration (write e.g. 100ms, 10s, 5m, 30d)` });
      return z.NEVER;
    }
    if (ms < lo || ms > hi) {
      ctx.addIssue({ code: 'custom', message: `${text} is out of range: must be between ${min} and ${max}` });
      return z.NEVER;
    }
    return ms;
  });

const DURATION_EXAMPLES = 'write e.g. 100ms, 10s, 5m, 30d';
const HINT_UNITS = ['s', 'ms', 'm', 'h', 'd'] as const;

/**
 * What to write instead of a value that is not a string: a bare number gets its unit (`5` in a
 * 100ms..10m key: "write 5s"; `100` in a 10ms..10s key: "write 100ms").
 */
export function notADuration(input: unknown, min: string, max: string): string {
  if (input === null || input === undefined) return `is empty: ${DURATION_EXAMPLES}`;
  if (typeof input !== 'number') return `${JSON.stringify(input)} is not a duration (${DURATION_EXAMPLES})`;
  const lo = parseDurationMs(min) as number;
  const hi = parseDurationMs(max) as number;
  const fits = HINT_UNITS.map((unit) => `${input}${unit}`).filter((text) => {
    const ms = parseDurationMs(text);
    return ms !== null && ms >= lo && ms <= hi;
  });
  const prefix = `${input} is a number without a unit`;
  if (fits[0] === `${input}s`) return `${prefix}: write ${fits[0]}`;
  if (fits.length === 0) return `${prefix}: write a duration between ${min} and ${max}`;
  const listed = fits.length === 1 ? fits[0] : `${fits.slice(0, -1).join(', ')} or ${fits.at(-1)}`;
  return `${prefix}: write ${listed} (between ${min} and ${max})`;
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** Labels the exporter sets itself; a VM's free labels may not shadow them. */
const RESERVED_LABELS = new Set(['vm', 'host', 'monitor', 'source', 'status', 'phase', 'result', 'mode', 'reason', 'instance', 'job', 'le']);
/** Free labels appear only on livemig_vm_info, but still: a fleet runs this for months. */
export const MAX_FREE_LABELS = 8;

const labels = z
  .record(z.string(), z.string().max(128, 'label values are limited to 128 characters'))
  .superRefine((value, ctx) => {
    const names = Object.keys(value);
    if (names.length > MAX_FREE_LABELS) {
      ctx.addIssue({ code: 'custom', message: `at most ${MAX_FREE_LABELS} labels per VM (got ${names.length})` });
    }
    for (const name of names) {
      if (!LABEL_NAME.test(name) || name.startsWith('__')) {
        ctx.addIssue({ code: 'custom', path: [name], message: `"${name}" is not a valid Prometheus label name` });
      } else if (RESERVED_LABELS.has(name)) {
        ctx.addIssue({ code: 'custom', path: [name], message: `"${name}" is set by the exporter and cannot be a VM label` });
      }
    }
  });

const hostPort = z.string().transform((text, ctx) => {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port < 1 || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not host:port` });
    return z.NEVER;
  }
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port };
});

const qmpEndpoint = z
  .union([
    z.strictObject({ unix: z.string().startsWith('/', 'an absolute socket path (the exporter does not run from a fixed directory)') }),
    z.strictObject({ tcp: hostPort }),
    z.strictObject({
      virsh: z.strictObject({ domain: z.string().min(1), uri: z.string().min(1).optional() }),
    }),
  ])
  .describe('one of {unix: PATH}, {tcp: HOST:PORT}, {virsh: {domain, uri}}');

const monitor = z.strictObject({
  host: z.string().min(1).regex(/^[A-Za-z0-9._-]+$/, 'host names may use letters, digits, ".", "_" and "-"'),
  qmp: qmpEndpoint,
});

const ipAddress = z.string().refine((text) => isIP(text) !== 0, { message: 'must be an IPv4 or IPv6 address' });

const HOST_NAME = /^[A-Za-z0-9._-]+$/;

/** A remote host reached over SSH (one connection per host); its host key must be in known_hosts. */
const sshHost = z.strictObject({
  address: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(22),
  user: z.string().min(1).regex(/^[A-Za-z0-9._-]+$/, 'a user name'),
  identity_file: z.string().startsWith('/', 'an absolute path to the private key (the exporter does not run from a fixed directory)').optional(),
  known_hosts: z.string().min(1).default('/etc/livemig-exporter/known_hosts'),
  agent: z.boolean().default(false),
  keepalive_interval: duration('0s', '10m').prefault('15s'),
  connect_timeout: duration('100ms', '5m').prefault('10s'),
});

const socketPath = z.string().startsWith('/', 'an absolute socket path');

const hostEntry = z
  .strictObject({
    name: z.string().min(1).regex(HOST_NAME, 'host names may use letters, digits, ".", "_" and "-"'),
    netns: z.string().regex(/^[A-Za-z0-9._-]+$/, 'a network namespace name').nullish(),
    ssh: sshHost.optional(),
    /** Interfaces (names or globs) whose byte counters are read; empty: none. */
    interfaces: z.array(z.string().min(1).max(64)).max(64).default([]),
    netdev_path: z.string().min(1).default('/proc/net/dev'),
  })
  .refine((h) => !(h.netns && h.ssh), { message: 'a host is either a network namespace (netns) or remote (ssh), not both' });

const WRITE_MONITORS = 'write "monitors:" in the VM with one entry per host it runs on, e.g. "monitors: [{host: hv1, qmp: {unix: /run/qemu/NAME.qmp}}]" (qmp may also be {tcp: HOST:PORT} or {virsh: {domain: NAME}})';

const vm = z.strictObject({
  name: z.string().min(1).max(128),
  flavor: z.string().min(1).max(64).optional(),
  labels: labels.default({}),
  /** The address the VM answers ping on: ties its probes to its migrations. */
  ping_address: ipAddress.optional(),
  monitors: z
    .array(monitor, { error: (issue) => (issue.input === undefined || issue.input === null ? `${issue.input === null ? 'is empty' : 'missing'}: ${WRITE_MONITORS}` : undefined) })
    .min(1, 'a VM needs at least one monitor (one per host it runs on)'),
  /** The VM's NIC as its hosts see it: the host-side device (a tap, the same name on every host, as nova's) and the guest's MAC. The frame watcher captures there on the destination. */
  nic: z
    .strictObject({
      device: z.string().regex(/^[A-Za-z0-9_.:][A-Za-z0-9_.:-]{0,14}$/, 'a network device name (1-15 letters, digits, "_", ".", ":" or "-")'),
      mac: z
        .string()
        .regex(/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/, 'a MAC address, e.g. 52:54:00:12:34:56')
        .transform((m) => m.toLowerCase().replaceAll('-', ':')),
    })
    .optional(),
  /** The nova instance UUID: ties nova-compute log lines (`[instance: UUID]`) to this VM. */
  instance_uuid: z
    .string()
    .regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, 'an instance UUID (8-4-4-4-12 hex digits)')
    .transform((u) => u.toLowerCase())
    .optional(),
});

/** A byte size: a number of bytes, or e.g. "64KiB", "1MiB". */
const byteSize = (min: number, max: number) =>
  z.union([z.number(), z.string()], { error: 'a size: a whole number of bytes, or e.g. "64KiB", "1MiB"' }).transform((value, ctx) => {
    const m = typeof value === 'number' ? null : /^(\d+)\s*(B|KiB|MiB|kB|KB|MB)?$/.exec(value.trim());
    const unit = m?.[2] ?? 'B';
    const scale = unit === 'KiB' ? 1024 : unit === 'MiB' ? 1024 * 1024 : unit === 'kB' || unit === 'KB' ? 1000 : unit === 'MB' ? 1_000_000 : 1;
    const bytes = typeof value === 'number' ? value : m ? Number(m[1]) * scale : NaN;
    if (!Number.isSafeInteger(bytes)) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a size (write e.g. 65536, 64KiB, 1MiB)` });
      return z.NEVER;
    }
    if (bytes < min || bytes > max) {
      ctx.addIssue({ code: 'custom', message: `${value} is out of range: must be between ${min} and ${max} bytes` });
      return z.NEVER;
    }
    return bytes;
  });

const logFile = z.strictObject({
  /** A host name from `hosts`; absent (or undeclared) is this machine. */
  host: z.string().min(1).regex(HOST_NAME, 'host names may use letters, digits, ".", "_" and "-"').optional(),
  path: z.string().min(1).startsWith('/', 'an absolute path'),
  kind: z.enum(LOG_KINDS).default('nova-compute'),
  timezone: z
    .string()
    .default('UTC')
    .superRefine((value, ctx) => {
      try {
        parseTimeZone(value);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
      }
    }),
});

export const configSchema = z
  .strictObject({
    polling: z
      .strictObject({
        idle_interval: duration('100ms', '10m').prefault('5s'),
        migrating_interval: duration('10ms', '10s').prefault('100ms'),
        command_timeout: duration('10ms', '1m').prefault('2s'),
        reconnect_max_backoff: duration('100ms', '10m').prefault('30s'),
      })
      .prefault({}),
    records: z
      .strictObject({
        max_count: z.number().int().min(1).max(1_000_000).default(1000),
        max_age: duration('1m', '3650d').prefault('30d'),
        last_migration_ttl: duration('1m', '3650d').prefault('1h'),
        stale_migration_timeout: duration('10s', '7d').prefault('1h'),
        postcopy_paused_timeout: duration('1s', '30d').prefault('1h'),
      })
      .prefault({}),
    state_file: z.string().min(1).nullable().default('/var/lib/livemig-exporter/state.json'),
    ping: z
      .strictObject({
        period: duration('10ms', '10s').prefault('100ms'),
        timeout: duration('10ms', '10s').prefault('1s'),
        source_address: ipAddress.nullish(),
        fping_path: z.string().min(1).default('fping'),
        targets_per_process: z.number().int().min(1).max(10_000).default(500),
        /** Run fping inside this network namespace (the lab's lan, a prober's management netns). */
        netns: z.string().regex(/^[A-Za-z0-9._-]+$/, 'a network namespace name').nullish(),
        before: duration('0s', '10m').prefault('10s'),
        after: duration('0s', '10m').prefault('10s'),
        blackout_grace: duration('0s', '1m').prefault('1s'),
      })
      .prefault({}),
    frames: z
      .strictObject({
        /** Capture the VM's frames on the destination while it migrates (tcpdump, needs CAP_NET_RAW there), for the outages' causes. */
        enabled: z.boolean().default(true),
        tcpdump_path: z.string().min(1).default('tcpdump'),
        /** Frames per migration, after which the capture stops (tcpdump -c). */
        max_frames: z.number().int().min(1).max(1_000_000).default(2000),
      })
      .prefault({}),
    libvirt: z
      .strictObject({
        discover: z.enum(['auto', 'on', 'off']).default('auto'),
        /** rpc: libvirt's own protocol on its read-only socket, events and job statistics; virsh: QMP through `virsh qemu-monitor-command` per domain (taints it). */
        transport: z.enum(['rpc', 'virsh']).default('rpc'),
        uri: z.string().min(1).default('qemu:///system'),
        /** rpc: the socket on each host; unset: libvirtd's or virtqemud's read-only socket, whichever is there. */
        socket: socketPath.nullish(),
        /** rpc: `hosts` entries whose libvirt is watched too, through their SSH connection (a name, or a name and that host's socket). */
        hosts: z
          .array(z.union([z.string().min(1), z.strictObject({ host: z.string().min(1), socket: socketPath })]))
          .max(10_000)
          .default([]),
        virsh_path: z.string().min(1).default('virsh'),
        host: z.string().min(1).nullish(),
        /** virsh: how often the domains are listed. */
        discover_interval: duration('1s', '1h').prefault('5s'),
        /** rpc: how often the domains are listed besides the events (at start and after a reconnect too). */
        list_interval: duration('10s', '1h').prefault('5m'),
        /** rpc: job statistics of a migrating domain, polled on its source (nova polls at 2 Hz). */
        job_poll_interval: duration('100ms', '1m').prefault('500ms'),
      })
      .prefault({}),
    vms: z.array(vm).default([]),
    hosts: z.array(hostEntry).max(10_000).default([]),
    netdev: z
      .strictObject({
        period: duration('100ms', '10m').prefault('1s'),
        migrating_period: duration('10ms', '10m').prefault('100ms'),
      })
      .prefault({}),
    /** Log files followed for nova-compute and libvirt lines. */
    logs: z.array(logFile).max(10_000).default([]),
    logs_options: z
      .strictObject({
        max_line_length: byteSize(1024, 16 * 1024 * 1024).default(65536),
        poll_interval: duration('10ms', '1m').prefault('500ms'),
        start_at: z.enum(['end', 'start']).default('end'),
        save_interval: duration('1s', '1h').prefault('10s'),
      })
      .prefault({}),
  })
  .superRefine((config, ctx) => {
    const seen = new Map<string, number>();
    const addresses = new Map<string, number>();
    config.vms.forEach((entry, index) => {
      if (entry.ping_address !== undefined) {
        const owner = addresses.get(entry.ping_address);
        if (owner !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['vms', index, 'ping_address'], message: `${entry.ping_address} is already the ping address of vms[${owner}]` });
        }
        addresses.set(entry.ping_address, index);
      }
      const first = seen.get(entry.name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['vms', index, 'name'], message: `duplicate VM name "${entry.name}" (first at vms.${first})` });
      }
      seen.set(entry.name, index);
    });
    const hostNames = new Map<string, number>();
    config.hosts.forEach((entry, index) => {
      const first = hostNames.get(entry.name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['hosts', index, 'name'], message: `duplicate host name "${entry.name}" (first at hosts.${first})` });
      }
      hostNames.set(entry.name, index);
    });
    const logFiles = new Map<string, number>();
    config.logs.forEach((entry, index) => {
      const key = `${entry.host ?? ''}\u0000${entry.path}`;
      const first = logFiles.get(key);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['logs', index, 'path'], message: `${entry.path} is already followed on that host (logs.${first})` });
      logFiles.set(key, index);
    });
    config.libvirt.hosts.forEach((entry, index) => {
      const name = typeof entry === 'string' ? entry : entry.host;
      if (!hostNames.has(name)) ctx.addIssue({ code: 'custom', path: ['libvirt', 'hosts', index], message: `"${name}" is not a host declared in hosts` });
    });
    const uuids = new Map<string, number>();
    config.vms.forEach((entry, index) => {
      if (entry.instance_uuid === undefined) return;
      const first = uuids.get(entry.instance_uuid);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['vms', index, 'instance_uuid'], message: `${entry.instance_uuid} is already the instance of vms[${first}]` });
      uuids.set(entry.instance_uuid, index);
    });
  });

export type RawConfig = z.input<typeof configSchema>;
type ParsedConfig = z.output<typeof configSchema>;

export interface MonitorConfig {
  /** Stable id within the VM: `${host}/${kind}:${target}`. */
  id: string;
  host: string;
  endpoint: QmpEndpoint;
}

export interface VmConfig {
  name: string;
  flavor: string;
  labels: Record<string, string>;
  pingAddress: string | null;
  monitors: MonitorConfig[];
  /** nova instance UUID (lower case), or null. */
  instanceUuid?: string | null;
  /** The VM's NICs: the host-side device of each (`nic` in the config, or a discovered domain XML's target) and the guest's MAC. */
  interfaces?: { device: string; mac: string | null }[];
}

export interface Config {
  polling: { idleIntervalMs: number; migratingIntervalMs: number; commandTimeoutMs: number; reconnectMaxBackoffMs: number };
  records: { maxCount: number; maxAgeMs: number; lastMigrationTtlMs: number; staleMigrationTimeoutMs: number; postcopyPausedTimeoutMs: number };
  stateFile: string | null;
  ping: {
    periodMs: number;
    timeoutMs: number;
    sourceAddress: string | null;
    fpingPath: string;
    targetsPerProcess: number;
    netns: string | null;
    beforeMs: number;
    afterMs: number;
    blackoutGraceMs: number;
  };
  frames: { enabled: boolean; tcpdumpPath: string; maxFrames: number };
  libvirt: {
    discover: 'auto' | 'on' | 'off';
    transport: 'rpc' | 'virsh';
    uri: string;
    socket: string | null;
    /** Declared hosts whose libvirt is watched over SSH (rpc); socket null: the one of `socket`, else the read-only defaults. */
    hosts: { host: string; socket: string | null }[];
    virshPath: string;
    host: string | null;
    discoverIntervalMs: number;
    listIntervalMs: number;
    jobPollIntervalMs: number;
  };
  vms: VmConfig[];
  hosts: HostConfig[];
  netdev: { periodMs: number; migratingPeriodMs: number };
  logs: LogFileConfig[];
  logsOptions: { maxLineLength: number; pollIntervalMs: number; startAt: 'end' | 'start'; saveIntervalMs: number };
}

export interface SshHostConfig {
  address: string;
  port: number;
  user: string;
  identityFile: string | null;
  knownHosts: string;
  agent: boolean;
  keepaliveIntervalMs: number;
  connectTimeoutMs: number;
}

export interface HostConfig {
  name: string;
  netns: string | null;
  ssh: SshHostConfig | null;
  interfaces: string[];
  netdevPath: string;
}

export function toConfig(parsed: ParsedConfig): Config {
  const virshPath = parsed.libvirt.virsh_path;
  return {
    polling: {
      idleIntervalMs: parsed.polling.idle_interval,
      migratingIntervalMs: parsed.polling.migrating_interval,
      commandTimeoutMs: parsed.polling.command_timeout,
      reconnectMaxBackoffMs: parsed.polling.reconnect_max_backoff,
    },
    records: {
      maxCount: parsed.records.max_count,
      maxAgeMs: parsed.records.max_age,
      lastMigrationTtlMs: parsed.records.last_migration_ttl,
      staleMigrationTimeoutMs: parsed.records.stale_migration_timeout,
      postcopyPausedTimeoutMs: parsed.records.postcopy_paused_timeout,
    },
    stateFile: parsed.state_file,
    ping: {
      periodMs: parsed.ping.period,
      timeoutMs: parsed.ping.timeout,
      sourceAddress: parsed.ping.source_address ?? null,
      fpingPath: parsed.ping.fping_path,
      targetsPerProcess: parsed.ping.targets_per_process,
      netns: parsed.ping.netns ?? null,
      beforeMs: parsed.ping.before,
      afterMs: parsed.ping.after,
      blackoutGraceMs: parsed.ping.blackout_grace,
    },
    frames: { enabled: parsed.frames.enabled, tcpdumpPath: parsed.frames.tcpdump_path, maxFrames: parsed.frames.max_frames },
    libvirt: {
      discover: parsed.libvirt.discover,
      transport: parsed.libvirt.transport,
      uri: parsed.libvirt.uri,
      socket: parsed.libvirt.socket ?? null,
      hosts: parsed.libvirt.hosts.map((h) => (typeof h === 'string' ? { host: h, socket: null } : h)),
      virshPath,
      host: parsed.libvirt.host ?? null,
      discoverIntervalMs: parsed.libvirt.discover_interval,
      listIntervalMs: parsed.libvirt.list_interval,
      jobPollIntervalMs: parsed.libvirt.job_poll_interval,
    },
    hosts: parsed.hosts.map((h) => ({
      name: h.name,
      netns: h.netns ?? null,
      ssh: h.ssh
        ? {
            address: h.ssh.address,
            port: h.ssh.port,
            user: h.ssh.user,
            identityFile: h.ssh.identity_file ?? null,
            knownHosts: h.ssh.known_hosts,
            agent: h.ssh.agent,
            keepaliveIntervalMs: h.ssh.keepalive_interval,
            connectTimeoutMs: h.ssh.connect_timeout,
          }
        : null,
      interfaces: h.interfaces,
      netdevPath: h.netdev_path,
    })),
    netdev: { periodMs: parsed.netdev.period, migratingPeriodMs: parsed.netdev.migrating_period },
    logs: parsed.logs.map((l) => ({ host: l.host ?? 'local', path: l.path, kind: l.kind, timezone: l.timezone })),
    logsOptions: {
      maxLineLength: parsed.logs_options.max_line_length,
      pollIntervalMs: parsed.logs_options.poll_interval,
      startAt: parsed.logs_options.start_at,
      saveIntervalMs: parsed.logs_options.save_interval,
    },
    vms: parsed.vms.map((entry) => ({
      name: entry.name,
      flavor: entry.flavor ?? '',
      labels: entry.labels,
      pingAddress: entry.ping_address ?? null,
      instanceUuid: entry.instance_uuid ?? null,
      ...(entry.nic ? { interfaces: [{ device: entry.nic.device, mac: entry.nic.mac }] } : {}),
      monitors: entry.monitors.map((m) => {
        const endpoint = toEndpoint(m.qmp, virshPath);
        return { id: `${m.host}/${describeQmpEndpoint(endpoint)}`, host: m.host, endpoint };
      }),
    })),
  };
}

function toEndpoint(qmp: ParsedConfig['vms'][number]['monitors'][number]['qmp'], virshPath: string): QmpEndpoint {
  if ('unix' in qmp) return { kind: 'unix', path: qmp.unix };
  if ('tcp' in qmp) return { kind: 'tcp', host: qmp.tcp.host, port: qmp.tcp.port };
  return { kind: 'virsh', domain: qmp.virsh.domain, virshPath, ...(qmp.virsh.uri ? { uri: qmp.virsh.uri } : {}) };
}


export { formatDurationMs };
