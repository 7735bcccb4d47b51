import { readFileSync } from 'node:fs';

/** package.json sits one level above both src/ (tsx) and dist/ (built). */
function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export const VERSION = readVersion();
/** Set by the build (Dockerfile, CI) to the commit; 'unknown' in a plain checkout. */
export const REVISION = process.env.LIVEMIG_REVISION ?? 'unknown';
