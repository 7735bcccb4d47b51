import { livemigError } from '../errors.js';

export interface ListenAddress {
  /** undefined: every interface. */
  host: string | undefined;
  port: number;
}

/** Parses `--web.listen-address` as Prometheus exporters do: ":10027", "127.0.0.1:10027", "[::1]:10027". */
export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw livemigError('LME_FLAG_INVALID', '--web.listen-address', `"${text}" is not [host]:port (e.g. :10027 or 127.0.0.1:10027)`);
  }
  const host = match[1] ?? match[2];
  return { host: host ? host : undefined, port };
}
