/**
 * No import runs up a floor (docs/architecture.md, "Floors"): each file of src/ imports only from
 * its own floor or those below. And no signal's wiring imports another signal's.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Bottom to top, as docs/architecture.md draws them. */
const FLOORS: readonly [RegExp, string][] = [
  [/^(clock|log|logfmt|errors|backoff|version|build-info|observations)\.ts$|^qemu\//, 'kernel'],
  [/^config\//, 'config'],
  [/^hosts\//, 'hosts'],
  [/^sources\//, 'sources'],
  [/^records\//, 'records'],
  [/^tracker\//, 'tracker'],
  [/^enrichers\//, 'enrichers'],
  // lab/report/ draws records (tables, charts, pages): the server serves its pages too.
  [/^(metrics|lab\/report)\//, 'metrics'],
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

/** The relative imports of a file of src/, as paths relative to src/ (.ts). */
function importsOf(path: string): string[] {
  return [...readFileSync(path, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map(([, spec]) =>
    relative(SRC, resolve(dirname(path), spec as string)).replace(/\.js$/, '.ts'),
  );
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
      for (const target of importsOf(path)) if (floorOf(target) > floorOf(file)) upward.push(`${file} -> ${target}`);
    }
    expect(upward).toEqual([]);
  });

  it("no signal imports another signal's wiring (only the registry names them all)", () => {
    const registry = join(SRC, 'signals/registry.ts');
    const signalFiles = importsOf(registry).filter((f) => f !== 'signals/signal.ts');
    expect(signalFiles.length).toBeGreaterThanOrEqual(5);
    const crossings = signalFiles.flatMap((file) => importsOf(join(SRC, file)).filter((target) => signalFiles.includes(target)).map((target) => `${file} -> ${target}`));
    expect(crossings).toEqual([]);
  });
});
