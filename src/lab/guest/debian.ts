import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { livemigError } from '../../errors.js';
import { runTool } from '../exec.js';

/**
 * Debian packages as build inputs: which version apt would take, fetched with `apt-get download`
 * and unpacked with `dpkg-deb -x` into a directory of ours. Nothing is installed on the host.
 */

export interface DebianPackage {
  name: string;
  version: string;
  /** The `Depends:` field as apt shows it, '' when none. */
  depends: string;
}

const DOWNLOAD_TIMEOUT_MS = 300_000;

/** The candidate version of a package (`apt-cache show --no-all-versions`): local, no download. */
export async function candidatePackage(name: string): Promise<DebianPackage> {
  const { stdout } = await runTool({
    tool: 'apt-cache',
    args: ['show', '--no-all-versions', name],
    packageName: 'apt',
    failure: { code: 'LME_LAB_GUEST_BUILD', subject: `Debian package ${name} (no apt lists? run apt-get update)` },
  });
  const fields = parseControl(stdout);
  const version = fields.get('Version');
  if (!version) throw livemigError('LME_LAB_GUEST_BUILD', `Debian package ${name}`, `apt-cache shows no version (is it in the apt lists? run apt-get update)`);
  return { name, version, depends: fields.get('Depends') ?? '' };
}

/**
 * The first package a metapackage depends on whose name matches `pattern`:
 * linux-image-cloud-amd64 -> linux-image-6.1.0-56-cloud-amd64.
 */
export function dependencyMatching(pkg: DebianPackage, pattern: RegExp): string {
  const names = pkg.depends.split(',').map((alternatives) => alternatives.trim().split(/[\s|(]/)[0] ?? '');
  const found = names.find((name) => pattern.test(name));
  if (!found) throw livemigError('LME_LAB_GUEST_BUILD', `Debian package ${pkg.name} ${pkg.version}`, `no dependency matches ${pattern} in "${pkg.depends}"`);
  return found;
}

/** Fetches `name=version` into dir (apt's cache and lists are left alone); returns the .deb's path. */
export async function downloadPackage(pkg: DebianPackage, dir: string): Promise<string> {
  const before = new Set(await readdir(dir));
  await runTool({
    tool: 'apt-get',
    args: ['download', '-q', `${pkg.name}=${pkg.version}`],
    cwd: dir,
    packageName: 'apt',
    timeoutMs: DOWNLOAD_TIMEOUT_MS,
    failure: { code: 'LME_LAB_GUEST_BUILD', subject: `Debian package ${pkg.name} ${pkg.version}` },
  });
  const deb = (await readdir(dir)).find((file) => !before.has(file) && file.endsWith('.deb'));
  if (!deb) throw livemigError('LME_LAB_GUEST_BUILD', `Debian package ${pkg.name} ${pkg.version}`, `apt-get download left no .deb in ${dir}`);
  return join(dir, deb);
}

/** Unpacks a .deb's files (not its scripts) under dir. */
export async function extractPackage(deb: string, dir: string): Promise<void> {
  await runTool({
    tool: 'dpkg-deb',
    args: ['-x', deb, dir],
    packageName: 'dpkg',
    failure: { code: 'LME_LAB_GUEST_BUILD', subject: deb },
  });
}

/** Fields of the first stanza of a Debian control text (continuation lines joined). */
export function parseControl(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (fields.size > 0) break;
      continue;
    }
    if (/^\s/.test(line) && last) {
      fields.set(last, `${fields.get(last) ?? ''}\n${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon);
    fields.set(last, line.slice(colon + 1).trim());
  }
  return fields;
}
