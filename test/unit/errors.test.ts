import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, livemigError } from '../../src/errors.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

describe('error catalogue', () => {
  it.each(Object.keys(ERRORS))('%s is documented in docs/errors.md', (code) => {
    expect(doc).toContain(`## ${code}`);
  });

  it('documents no code that does not exist', () => {
    const documented = [...doc.matchAll(/^## (LME_[A-Z_]+)/gm)].map((m) => m[1]);
    expect(documented.filter((code) => !(code && code in ERRORS))).toEqual([]);
  });

  it('fills every slot with the offending input', () => {
    const err = livemigError('LME_CONFIG_INVALID', 'a.yml', 'vms[0].name', 'too long');
    expect(err.message).toBe('config file a.yml: vms[0].name: too long');
    expect(err.code).toBe('LME_CONFIG_INVALID');
    for (const [code, template] of Object.entries(ERRORS)) {
      const slots = template.split('%s').length - 1;
      expect(slots, code).toBeGreaterThan(0);
    }
  });
});
