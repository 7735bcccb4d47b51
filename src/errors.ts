/**
 * Every error the exporter raises on purpose, in one catalogue (fastify's lib/errors.js habit).
 * Each `%s` slot is filled with the offending input, so a message always names what was wrong.
 * docs/errors.md documents each code; test/unit/errors.test.ts keeps the two in step.
 */
export const ERRORS = {
  LME_CONFIG_READ: 'cannot read config file %s: %s',
  LME_CONFIG_YAML: 'config file %s is not valid YAML: %s',
  LME_CONFIG_INVALID: 'config file %s: %s: %s',
  LME_CONFIG_HOST_UNDECLARED: 'config file %s: %s: host "%s" is not declared in hosts, so it is this machine%s',
  LME_FLAG_INVALID: 'flag %s: %s',
  LME_QMP_CONNECT: 'cannot connect to QMP monitor %s: %s',
  LME_QMP_CLOSED: 'QMP monitor %s closed the connection: %s',
  LME_QMP_TIMEOUT: 'QMP command %s on %s got no reply within %s ms',
  LME_QMP_COMMAND: 'QMP command %s on %s failed: %s',
  LME_QMP_PROTOCOL: 'QMP monitor %s sent a message that is not QMP: %s',
  LME_QMP_REPLY: 'query-migrate reply from %s is not usable: %s',
  LME_VIRSH_FAILED: 'virsh %s failed: %s',
  LME_STATE_FILE: 'state file %s cannot be used: %s',
  LME_LISTEN: 'cannot listen on %s: %s',
  LME_WEB_CONFIG_READ: 'cannot read web config file %s: %s',
  LME_WEB_CONFIG: 'web config file %s: %s: %s',
  LME_LAB_TOOL_MISSING: 'lab tool %s is not installed: %s',
  LME_LAB_GUEST_BUILD: 'cannot build the lab guest from %s: %s',
  LME_LAB_QEMU: 'lab VM %s: %s',
  LME_LAB_MIGRATION: 'lab migration %s: %s',
  LME_PING_OPTION: 'ping option %s: %s',
  LME_PING_TARGET: 'ping target %s: %s',
  LME_PING_LINE: 'fping printed a line that is not understood: %s',
  LME_PING_SPAWN: 'cannot start fping %s: %s',
  LME_PING_PERMISSION: 'fping %s cannot open an ICMP socket (%s): grant it CAP_NET_RAW with `setcap cap_net_raw+ep %s`, or run the exporter as root',
  LME_PING_EXITED: 'fping %s exited (%s): %s',
  LME_LAB_NEEDS_ROOT: 'the lab needs root to %s: %s',
  LME_LAB_NETWORK: 'lab network %s: %s',
  LME_LAB_LIBVIRTD: 'lab libvirtd %s: %s',
  LME_LAB_PROBE: 'lab probe %s: %s',
  LME_HOST_EXEC: 'host %s: command %s failed: %s',
  LME_HOST_CONFIG: 'host %s: %s',
  LME_SSH_CONNECT: 'SSH host %s (%s): cannot connect: %s',
  LME_SSH_CLOSED: 'SSH host %s: connection lost: %s',
  LME_SSH_DOWN: 'SSH host %s is down (reconnecting with backoff): %s',
  LME_SSH_CHANNEL: 'SSH host %s: cannot open a channel for %s: %s',
  LME_SSH_FORWARD_REFUSED: 'SSH host %s refused to forward %s: %s; its sshd_config must allow it (%s)',
  LME_SSH_KNOWN_HOSTS: 'known_hosts file %s cannot be read: %s',
  LME_SSH_HOST_KEY_UNKNOWN: 'SSH host %s (%s) presented a %s host key that is not in %s: connection refused',
  LME_SSH_HOST_KEY_CHANGED: 'SSH host %s (%s) presented a %s host key that differs from the one in %s (line %s): connection refused',
  LME_NETDEV_PARSE: 'interface counters from %s on host %s: %s',
  LME_LOG_TIMEZONE: 'log time zone %s: %s',
  LME_LOG_READ: 'cannot read log %s on host %s: %s',
  LME_LOG_LINE: 'log %s on host %s: line not understood (%s): %s',
  LME_LIBVIRT_CONNECT: 'cannot connect to libvirt %s: %s',
  LME_LIBVIRT_AUTH: 'libvirt %s: cannot authenticate: %s',
  LME_LIBVIRT_CALL: '%s on libvirt %s failed: libvirt error (code %s, domain %s): %s',
  LME_LIBVIRT_TIMEOUT: 'libvirt call %s on %s got no reply within %s ms',
  LME_LIBVIRT_CLOSED: 'libvirt connection %s closed: %s',
  LME_LIBVIRT_PROTOCOL: 'libvirt %s sent a packet that cannot be parsed (%s), connection closed: %s',
  LME_LIBVIRT_XML: 'libvirt domain XML of %s cannot be used: %s',
  LME_LIBVIRT_KEEPALIVE: 'libvirt %s sent nothing for %s ms (%s keepalive pings unanswered), connection closed',
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class LivemigError extends Error {
  readonly code: ErrorCode;
  /** Every problem of the input, this one first (a config file's errors are all listed); one a line in `message`. */
  readonly problems: readonly LivemigError[];
  constructor(code: ErrorCode, args: readonly unknown[], options?: { cause?: unknown; problems?: readonly LivemigError[] }) {
    const many = options?.problems && options.problems.length > 1 ? options.problems : null;
    super(many ? many.map((p) => p.message).join('\n') : format(ERRORS[code], args), options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LivemigError';
    this.code = code;
    this.problems = many ?? [this];
  }

  /** One error for several problems of one input: the first one's code, every message a line. */
  static all(problems: readonly LivemigError[]): LivemigError {
    const [first] = problems;
    if (!first) throw new RangeError('LivemigError.all needs at least one problem');
    return problems.length === 1 ? first : new LivemigError(first.code, [], { problems });
  }
}

export function livemigError(code: ErrorCode, ...args: unknown[]): LivemigError {
  return new LivemigError(code, args);
}

function format(template: string, args: readonly unknown[]): string {
  let i = 0;
  return template.replace(/%s/g, () => {
    const value = args[i++];
    return value instanceof Error ? value.message : String(value);
  });
}

/** A message from anything thrown, for logs and health reasons. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Why a source failed on a host: a closed set, so `livemig_source_errors_total{reason}` stays bounded. */
export type SourceErrorReason = 'connect' | 'timeout' | 'protocol' | 'command' | 'reply' | 'virsh' | 'discover' | 'fping';
