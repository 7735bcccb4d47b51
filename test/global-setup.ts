import { missingTools, needsRoot } from './helpers/env.js';
import { startLibvirtd, stopDaemons } from './helpers/libvirtd.js';

/** One libvirtd for the whole run, started only where the tests can use it (root, installed). */
export default async function setup(): Promise<() => Promise<void>> {
  if (missingTools('libvirtd', 'virtlogd', 'virsh') || needsRoot()) return async () => {};
  const started = await startLibvirtd();
  return async () => stopDaemons(started);
}
