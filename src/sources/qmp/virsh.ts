import { EventEmitter } from 'node:events';
import { LivemigError } from '../../errors.js';
import type { Host, HostProcess } from '../../hosts/host.js';
import { thisMachine } from '../../hosts/local.js';
import type { Logger } from '../../log.js';
import {
  DEFAULT_COMMAND_TIMEOUT_MS,
  QmpCommandError,
  classifyQmpMessage,
  type QmpSession,
  type QmpSessionEvents,
} from './client.js';
import { LineSplitter, excerpt, isPlainObject } from './framing.js';
import { describeQmpEndpoint, type QmpEvent } from '../../qemu/types.js';

/**
 * QMP through libvirt, for domains whose monitor socket belongs to libvirtd. Each command is one
 * `virsh qemu-monitor-command` run; events come from one long-running `virsh qemu-monitor-event`.
 * virsh is always run with an argument array, never through a local shell (over SSH each argument
 * is quoted for the remote one): a domain name may hold spaces, quotes or a leading dash.
 */

export interface VirshTarget {
  domain: string;
  uri?: string;
  virshPath: string;
}

export interface VirshQmpOptions {
  commandTimeoutMs?: number;
  /** Time allowed for the first command, which proves the domain is there. */
  probeTimeoutMs?: number;
  logger?: Logger;
  /** Run virsh on this host; default: this machine. */
  host?: Host;
}

/** virsh's stderr when the domain has gone (migrated away, destroyed) or its QEMU stopped. */
const DOMAIN_GONE = /failed to get domain|domain not found|domain is not running/i;
const STDERR_KEEP_CHARS = 2000;

/** virsh failed (non-zero exit, or could not be run); carries what virsh said. */
export class VirshError extends LivemigError {
  constructor(
    readonly what: string,
    readonly stderr: string,
    readonly exitCode: number | string | null,
    options?: { cause?: unknown },
  ) {
    const said = stderr.trim() || (options?.cause instanceof Error ? options.cause.message : '(no stderr)');
    super('LME_VIRSH_FAILED', [what, `${describeExit(exitCode)}: ${excerpt(said, STDERR_KEEP_CHARS)}`], options);
  }

  /** True when virsh says the domain (or its QEMU) is not there: normal after a migration. */
  get domainGone(): boolean {
    return DOMAIN_GONE.test(this.stderr);
  }
}

export function virshTargetName(target: VirshTarget): string {
  return describeQmpEndpoint({ ...target, kind: 'virsh', virshPath: '' });
}

export function virshConnectArgs(uri: string | undefined): string[] {
  return uri ? ['-c', uri] : [];
}

export function monitorCommandArgs(target: VirshTarget, request: Record<string, unknown>): string[] {
  return [...virshConnectArgs(target.uri), 'qemu-monitor-command', '--domain', target.domain, '--cmd', JSON.stringify(request)];
}

/** Without --timestamp virsh prints QEMU's own event time (µs); with it, virsh's receipt time (ms). */
export function monitorEventArgs(target: VirshTarget): string[] {
  return [...virshConnectArgs(target.uri), 'qemu-monitor-event', '--domain', target.domain, '--loop'];
}

export class VirshQmpSession extends EventEmitter<QmpSessionEvents> implements QmpSession {
  readonly target: string;
  private readonly commandTimeoutMs: number;
  private readonly logger: Logger | undefined;
  private eventStream: HostProcess | undefined;
  private eventStreamExited: Promise<void> = Promise.resolve();
  private closeReason: Error | undefined;
  private readonly host: Host;

  /** Starts the event stream, then proves the domain answers (query-status) before resolving. */
  static async open(target: VirshTarget, options: VirshQmpOptions = {}): Promise<VirshQmpSession> {
    const session = new VirshQmpSession(target, options);
    session.startEventStream();
    try {
      await session.execute('query-status', undefined, options.probeTimeoutMs);
      return session;
    } catch (err) {
      await session.close();
      throw err;
    }
  }

  private constructor(
    private readonly virsh: VirshTarget,
    options: VirshQmpOptions,
  ) {
    super();
    this.target = virshTargetName(virsh);
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.logger = options.logger;
    this.host = options.host ?? thisMachine();
  }

  /** PID of the `virsh qemu-monitor-event` process while it runs (on this machine). */
  get eventStreamPid(): number | undefined {
    return this.eventStream?.pid;
  }

  async execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T> {
    if (this.closeReason) throw this.closeReason;
    const request: Record<string, unknown> = { execute: command };
    if (args !== undefined) request.arguments = args;
    const limit = timeoutMs ?? this.commandTimeoutMs;
    const stdout = await this.runMonitorCommand(this.host, command, request, limit);
    return this.replyValue(command, stdout) as T;
  }

  async close(): Promise<void> {
    this.shutDown(new LivemigError('LME_QMP_CLOSED', [this.target, 'closed by the exporter']));
    await this.eventStreamExited;
  }

  private async runMonitorCommand(host: Host, command: string, request: Record<string, unknown>, timeoutMs: number): Promise<string> {
    const timeout = timeoutMs > 0 && Number.isFinite(timeoutMs) ? timeoutMs : undefined;
    const what = `qemu-monitor-command ${command} on domain ${JSON.stringify(this.virsh.domain)}`;
    let result;
    try {
      result = await host.exec([this.virsh.virshPath, ...monitorCommandArgs(this.virsh, request)], timeout !== undefined ? { timeoutMs: timeout } : {});
    } catch (err) {
      if (this.closeReason) throw this.closeReason;
      if (err instanceof LivemigError && err.code === 'LME_HOST_EXEC' && /no exit within/.test(err.message)) {
        throw new LivemigError('LME_QMP_TIMEOUT', [command, this.target, timeout]);
      }
      throw new VirshError(`${what} on host ${host.name}`, '', null, { cause: err });
    }
    if (this.closeReason) throw this.closeReason;
    if (result.code === 0) return result.stdout.toString('utf8');
    const failure = new VirshError(what, result.stderr, result.code ?? result.signal);
    if (failure.domainGone) this.shutDown(failure);
    throw failure;
  }

  private replyValue(command: string, stdout: string): unknown {
    let reply: unknown;
    try {
      reply = JSON.parse(stdout);
    } catch {
      throw this.protocolError(`virsh printed a reply that is not JSON: ${JSON.stringify(excerpt(stdout.trim()))}`);
    }
    if (!isPlainObject(reply)) throw this.protocolError(`virsh printed a reply that is not an object: ${excerpt(stdout.trim())}`);
    const classified = classifyQmpMessage(reply);
    if (classified.kind === 'return') return classified.value;
    if (classified.kind === 'error') throw new QmpCommandError(command, this.target, classified.errorClass, classified.desc);
    throw this.protocolError(`reply is neither return nor error: ${excerpt(stdout.trim())}`);
  }

  private startEventStream(): void {
    const host = this.host;
    const proc = host.spawn([this.virsh.virshPath, ...monitorEventArgs(this.virsh)]);
    this.eventStream = proc;
    const lines = new LineSplitter();
    let stderr = '';
    proc.stdout.on('data', (chunk: Buffer) => {
      for (const frame of lines.push(chunk)) {
        if (frame.kind !== 'line' || frame.line.trim() === '') continue;
        const event = parseVirshEventLine(frame.line, this.virsh.domain);
        if (event) this.emit('event', event);
        else this.logger?.debug({ target: this.target, line: excerpt(frame.line) }, 'virsh qemu-monitor-event line not understood');
      }
    });
    proc.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < STDERR_KEEP_CHARS) stderr += chunk.toString('utf8');
    });
    this.eventStreamExited = proc.exited.then(({ code, signal, error }) => {
      this.eventStream = undefined;
      const what = `qemu-monitor-event on domain ${JSON.stringify(this.virsh.domain)} on host ${host.name}`;
      this.shutDown(new VirshError(what, stderr, error ?? code ?? signal));
    });
  }

  /** Ends the session once: stops the event stream, emits 'close' (a command in flight then rejects with the reason). */
  private shutDown(reason: Error): void {
    if (this.closeReason) return;
    this.closeReason = reason;
    this.eventStream?.kill();
    this.emit('close', reason);
  }

  private protocolError(detail: string): LivemigError {
    return new LivemigError('LME_QMP_PROTOCOL', [this.target, detail]);
  }
}

function describeExit(code: number | string | null): string {
  if (typeof code === 'number') return `exit status ${code}`;
  if (typeof code === 'string') return code;
  return 'no exit status';
}

const EVENT_WITH_QEMU_TIME = /^event (\S+) at (\d+)\.(\d+) for domain '/;
const EVENT_WITH_VIRSH_TIME = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d)(\d\d): event (\S+) for domain '/;
const NO_DETAILS = '<null>';

/**
 * Parses one line of `virsh qemu-monitor-event`:
 *   `event STOP at 1795641411.211999 for domain 'vm1': <null>`            (QEMU's time, µs)
 *   `2026-11-25 21:16:49.331+0000: event STOP for domain 'vm1': <null>`   (with --timestamp)
 * Details are `<null>` or the event's data as one-line JSON. `domain`, when known, is used to
 * find where the name ends, since a name may itself contain "': ". Returns null when the line
 * is not an event line.
 */
export function parseVirshEventLine(line: string, domain?: string): QmpEvent | null {
  let name: string;
  let timestamp: QmpEvent['timestamp'];
  let rest: string;
  const qemuTime = EVENT_WITH_QEMU_TIME.exec(line);
  const virshTime = qemuTime ? null : EVENT_WITH_VIRSH_TIME.exec(line);
  if (qemuTime) {
    name = qemuTime[1] as string;
    timestamp = { seconds: Number(qemuTime[2]), microseconds: Number(qemuTime[3]) };
    rest = line.slice(qemuTime[0].length);
  } else if (virshTime) {
    const [, date, time, tzHours, tzMinutes, eventName] = virshTime;
    const ms = Date.parse(`${date}T${time}${tzHours}:${tzMinutes}`);
    if (Number.isNaN(ms)) return null;
    name = eventName as string;
    timestamp = { seconds: Math.floor(ms / 1000), microseconds: (ms % 1000) * 1000 };
    rest = line.slice(virshTime[0].length);
  } else {
    return null;
  }
  const details = splitDomainAndDetails(rest, domain);
  if (details === null) return null;
  const event: QmpEvent = { event: name, timestamp };
  if (details === NO_DETAILS) return event;
  const data = parseJsonObject(details);
  if (!data) return null;
  event.data = data;
  return event;
}

/** `rest` is `NAME': DETAILS`; returns DETAILS. */
function splitDomainAndDetails(rest: string, domain: string | undefined): string | null {
  const separator = "': ";
  if (domain !== undefined && rest.startsWith(`${domain}${separator}`)) return rest.slice(domain.length + separator.length);
  // Unknown name (or virsh was given a UUID): the first split whose remainder is valid details.
  for (let at = rest.indexOf(separator); at !== -1; at = rest.indexOf(separator, at + 1)) {
    const details = rest.slice(at + separator.length);
    if (details === NO_DETAILS || parseJsonObject(details)) return details;
  }
  return null;
}

function parseJsonObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return isPlainObject(value) ? value : null;
  } catch {
    return null;
  }
}
