import type { Duplex } from 'node:stream';
import { LivemigError, errorMessage } from '../../errors.js';
import type { Host } from '../../hosts/host.js';
import { LibvirtClient, type LibvirtClientOptions } from './client.js';

/** Monolithic libvirtd first, then the modular virtqemud (libvirt's daemon split, 5.6 on). */
export const READ_ONLY_SOCKETS = ['/run/libvirt/libvirt-sock-ro', '/run/libvirt/virtqemud-sock-ro'] as const;
export const READ_WRITE_SOCKETS = ['/run/libvirt/libvirt-sock', '/run/libvirt/virtqemud-sock'] as const;

export interface LibvirtSocketOptions extends LibvirtClientOptions {
  /** A socket path; unset: the first of the candidates that accepts a connection. */
  socketPath?: string;
}

/** Which socket paths to try, in order, for these options. */
export function socketCandidates(options: { socketPath?: string; readOnly?: boolean }): readonly string[] {
  if (options.socketPath) return [options.socketPath];
  return (options.readOnly ?? true) ? READ_ONLY_SOCKETS : READ_WRITE_SOCKETS;
}

/** The first candidate the host lets us connect to, with the stream; the error names every failure. */
export async function connectFirst(host: Host, candidates: readonly string[]): Promise<{ path: string; stream: Duplex }> {
  const failures: string[] = [];
  for (const path of candidates) {
    try {
      return { path, stream: await host.connectUnix(path) };
    } catch (err) {
      failures.push(`${path}: ${errorMessage(err)}`);
    }
  }
  throw new LivemigError('LME_LIBVIRT_CONNECT', [`on host ${host.name}`, failures.join('; ')]);
}

/** Opens a libvirt client on a host's socket: read-only unless `readOnly: false`. */
export async function openLibvirt(host: Host, options: LibvirtSocketOptions = {}): Promise<LibvirtClient> {
  const { path, stream } = await connectFirst(host, socketCandidates(options));
  return LibvirtClient.open(stream, `${host.name}:unix:${path}`, options);
}
