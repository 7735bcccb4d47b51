import { LivemigError } from '../../errors.js';
import type { RemoteError } from './wire.js';

/** libvirt answered a call with virNetMessageError: its code, domain and message, kept as they came. */
export class LibvirtCallError extends LivemigError {
  readonly libvirtCode: number;
  readonly libvirtDomain: number;
  readonly libvirtMessage: string;
  readonly level: number;

  constructor(
    readonly procedure: string,
    target: string,
    remote: RemoteError,
  ) {
    const message = remote.message ?? '(no message)';
    super('LME_LIBVIRT_CALL', [procedure, target, remote.code, remote.domain, message]);
    this.libvirtCode = remote.code;
    this.libvirtDomain = remote.domain;
    this.libvirtMessage = message;
    this.level = remote.level;
  }
}

/** virErrorNumber values a caller may want to tell apart (include/libvirt/virterror.h). */
export const LibvirtErrorCode = {
  OPERATION_DENIED: 29,
  NO_DOMAIN: 42,
  OPERATION_INVALID: 55,
  OPERATION_UNSUPPORTED: 84,
} as const;
