/** Checks of the ping source's settings and targets, before anything is started. */
import { isIP } from 'node:net';
import { LivemigError } from '../../errors.js';
import type { PingTarget } from './types.js';

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Every address an IP address or a host name (never an fping option), each listed once. */
export function validateTargets(targets: readonly PingTarget[]): void {
  const seen = new Set<string>();
  for (const { address } of targets) {
    if (isIP(address) === 0 && !HOST_NAME.test(address)) throw new LivemigError('LME_PING_TARGET', [JSON.stringify(address), 'not an IP address or host name']);
    if (seen.has(address)) throw new LivemigError('LME_PING_TARGET', [address, 'listed more than once']);
    seen.add(address);
  }
}

export function checkedMs(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 10 || value > 10_000) throw new LivemigError('LME_PING_OPTION', [name, `${value} is not a whole number of ms in 10..10000`]);
  return value;
}

export function checkedCount(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new LivemigError('LME_PING_OPTION', [name, `${value} is not a positive whole number`]);
  return value;
}
