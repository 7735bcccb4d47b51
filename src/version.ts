import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BUILD_REVISION } from './build-info.js';

/** package.json sits one level above both src/ (tsx) and dist/ (built). */
function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * $LIVEMIG_REVISION when set; else the revision baked in by `npm run build`; else, running from
 * the sources (tsx), the checkout's `git rev-parse --short HEAD`; else "unknown".
 */
function readRevision(): string {
  if (process.env.LIVEMIG_REVISION) return process.env.LIVEMIG_REVISION;
  if (BUILD_REVISION) return BUILD_REVISION;
  try {
    const cwd = fileURLToPath(new URL('.', import.meta.url));
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}

export const VERSION = readVersion();
export const REVISION = readRevision();

/** `--version`, as Prometheus exporters print it. */
export function versionText(): string {
  return `livemig-exporter, version ${VERSION} (revision: ${REVISION})\n  nodejs: ${process.version}`;
}
