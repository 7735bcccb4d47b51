/** Reason codes of a refused SSH channel open (RFC 4254 section 5.1), as ssh2 reports them. */

/** sshd's answer when its config forbids the channel (AllowTcpForwarding no, PermitOpen, ...). */
export const OPEN_ADMINISTRATIVELY_PROHIBITED = 1;
/** sshd could not connect to the forwarded target (for TCP: nothing listens there, or no route). */
export const OPEN_CONNECT_FAILED = 2;

/** The reason code of a failed channel open (ssh2 puts it on the error as `reason`), if any. */
export function channelOpenReason(err: unknown): number | undefined {
  const reason = (err as { reason?: unknown } | null)?.reason;
  return typeof reason === 'number' ? reason : undefined;
}
