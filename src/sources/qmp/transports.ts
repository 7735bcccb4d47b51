import type { Duplex } from 'node:stream';
import { LivemigError, errorMessage } from '../../errors.js';
import type { Host } from '../../hosts/host.js';
import { OPEN_CONNECT_FAILED, channelOpenReason } from '../../hosts/channel-open.js';
import { thisMachine } from '../../hosts/local.js';
import { QmpStreamClient, type QmpSession, type QmpStreamOptions } from './client.js';
import { describeQmpEndpoint, type QmpEndpoint } from '../../qemu/types.js';

export { describeQmpEndpoint };
import { VirshError, VirshQmpSession } from './virsh.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

export interface OpenQmpSessionOptions extends Omit<QmpStreamOptions, 'handshakeTimeoutMs'> {
  /** Covers everything up to a ready session: socket connect, greeting and capabilities (or virsh's first command). */
  connectTimeoutMs?: number;
  /**
   * The host the monitor lives on: its unix socket or TCP address is opened through it (over SSH:
   * a forwarded stream-local or direct-tcpip channel, so `tcp:127.0.0.1:PORT` is the remote
   * machine's loopback; in a network namespace, that namespace's) and virsh runs there.
   * Default: this machine.
   */
  host?: Host;
}

/**
 * Opens a ready QMP session to one monitor.
 * @throws LivemigError LME_QMP_CONNECT whose `cause` is the underlying error.
 */
export async function openQmpSession(endpoint: QmpEndpoint, options: OpenQmpSessionOptions = {}): Promise<QmpSession> {
  const target = describeQmpEndpoint(endpoint);
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const deadline = Date.now() + connectTimeoutMs;
  const host = options.host ?? thisMachine();
  try {
    if (endpoint.kind === 'virsh') {
      const { commandTimeoutMs, logger } = options;
      return await VirshQmpSession.open(endpoint, { commandTimeoutMs, logger, probeTimeoutMs: connectTimeoutMs, host });
    }
    const opening = endpoint.kind === 'unix' ? host.connectUnix(endpoint.path) : host.connectTcp(endpoint.host, endpoint.port);
    const socket = await connectThroughHost(opening, target, connectTimeoutMs);
    const handshakeTimeoutMs = Math.max(1, deadline - Date.now());
    return await QmpStreamClient.open(socket, target, { ...options, handshakeTimeoutMs });
  } catch (err) {
    throw new LivemigError('LME_QMP_CONNECT', [target, errorMessage(err)], { cause: err });
  }
}

async function connectThroughHost(opening: Promise<Duplex>, target: string, timeoutMs: number): Promise<Duplex> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // A stream that opens after the deadline is closed, not leaked.
      void opening.then((stream) => stream.destroy(), () => undefined);
      reject(new LivemigError('LME_QMP_TIMEOUT', ['(connect)', target, timeoutMs]));
    }, timeoutMs);
  });
  try {
    return await Promise.race([opening, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const GONE_ERRNOS = new Set(['ENOENT', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE']);

/**
 * True when an error only says the QEMU is not there (exited, migrated away, not started yet):
 * its socket is missing or refuses (here or, over SSH, at the remote end), the connection ended,
 * or libvirt no longer knows the domain.
 * Walks the `cause` chain.
 */
export function isQemuGone(err: unknown): boolean {
  for (let current: unknown = err, depth = 0; current instanceof Error && depth < 8; current = current.cause, depth++) {
    const errno = (current as NodeJS.ErrnoException).code;
    if (typeof errno === 'string' && GONE_ERRNOS.has(errno)) return true;
    if (current instanceof LivemigError && current.code === 'LME_QMP_CLOSED') return true;
    if (current instanceof VirshError && current.domainGone) return true;
    // Over SSH: sshd could not connect to the forwarded port (nothing listens there).
    if (channelOpenReason(current) === OPEN_CONNECT_FAILED && /refused/i.test(current.message)) return true;
  }
  return false;
}
