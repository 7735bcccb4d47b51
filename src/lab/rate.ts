import { livemigError } from '../errors.js';

/** tc's rate syntax (`1gbit`, `100mbit`, `12mbps`): bits with decimal prefixes, or bytes (`bps`). Pure. */
const UNITS: Record<string, number> = {
  bit: 1 / 8, kbit: 1e3 / 8, mbit: 1e6 / 8, gbit: 1e9 / 8, tbit: 1e12 / 8,
  bps: 1, kbps: 1e3, mbps: 1e6, gbps: 1e9, tbps: 1e12,
};

export function parseRate(text: string, flag = '--bandwidth'): number {
  const match = /^(\d+(?:\.\d+)?)([a-z]+)$/i.exec(text.trim());
  const factor = match ? UNITS[(match[2] as string).toLowerCase()] : undefined;
  const bytes = match && factor ? Number(match[1]) * factor : NaN;
  if (!Number.isFinite(bytes) || bytes < 1e5 || bytes > 1.25e10) {
    throw livemigError('LME_FLAG_INVALID', flag, `"${text}" is not a rate between 800kbit and 100gbit in tc's syntax (e.g. 1gbit, 100mbit, 12mbps)`);
  }
  return Math.round(bytes);
}
