import { hostname } from 'node:os';
import type { Config } from '../config/schema.js';

/** This machine's name in health and errors of the signals read here (ping, libvirt discovery). */
export function localHostName(config: Config): string {
  return config.libvirt.host ?? hostname();
}
