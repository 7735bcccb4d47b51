import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { METRICS, RAM_METRICS } from '../../src/metrics/catalogue.js';
import { configSchema } from '../../src/config/schema.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('README stays in step with the code', () => {
  it.each([...Object.values(METRICS).map((m) => m.name), ...RAM_METRICS.map((m) => m.name)])('documents metric %s', (name) => {
    expect(readme).toContain(`\`${name}\``);
  });

  it('documents every config key', () => {
    const keys: string[] = [];
    // Unwraps default/prefault/optional/nullable wrappers down to an object's shape, if any.
    const shapeOf = (schema: unknown): Record<string, unknown> | undefined => {
      let current = schema as { shape?: Record<string, unknown>; def?: { innerType?: unknown } } | undefined;
      for (let depth = 0; current && depth < 5; depth++) {
        if (current.shape) return current.shape;
        current = current.def?.innerType as typeof current;
      }
      return undefined;
    };
    const walk = (shape: Record<string, unknown>) => {
      for (const [key, value] of Object.entries(shape)) {
        keys.push(key);
        const nested = key === 'vms' ? undefined : shapeOf(value);
        if (nested) walk(nested);
      }
    };
    walk(configSchema.shape);
    expect(keys.length).toBeGreaterThan(15);
    for (const key of keys) expect(readme, key).toMatch(new RegExp(`\\b${key}:`));
  });

  it('gives the two quick-start command lines', () => {
    expect(readme).toContain('./scripts/setup && npm run lab');
    expect(readme).toContain('./scripts/setup && npm test');
  });
});
