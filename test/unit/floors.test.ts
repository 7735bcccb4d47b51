/**
 * No import runs up a floor (docs/architecture.md, "Floors"): each file of src/ imports only from
 * its own floor or those below.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Bottom to top, as docs/architecture.md draws them. */
const FLOORS: readonly [RegExp, string][] = [
  [/^(clock|log|errors|backoff|version|observations)\.ts$|^qemu\//, 'kernel'],
  [/^config\//, 'config'],
  [/^hosts\//, 'hosts'],
  [/^sources\//, 'sources'],
  [/^records\//, 'records'],
  [/^tracker\//, 'tracker'],
  [/^enrichers\//, 'enrichers'],
  [/^metrics\//, 'metrics'],
  [/^server\//, 'server'],
  [/^signals\//, 'signals'],
  [/^exporter\.ts$/, 'exporter'],
  [/^(lab|dashboards)\//, 'leaves'],
  [/^cli\.ts$/, 'cli'],
];

function floorOf(file: string): number {
  const floor = FLOORS.findIndex(([pattern]) => pattern.test(file));
  if (floor < 0) throw new Error(`${file} is on no floor: add its folder to FLOORS and to docs/architecture.md`);
  return floor;
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

describe('floors', () => {
  it('no import in src/ runs up a floor', () => {
    const upward: string[] = [];
    for (const path of sources(SRC)) {
      const file = relative(SRC, path);
      for (const [, spec] of readFileSync(path, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
        const target = relative(SRC, resolve(dirname(path), spec as string)).replace(/\.js$/, '.ts');
        if (floorOf(target) > floorOf(file)) upward.push(`${file} -> ${target}`);
      }
    }
    expect(upward).toEqual([]);
  });
});
