import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { escapeLabelValue, formatValue, seriesPrefix, TextWriter } from '../../src/metrics/exposition.js';

describe('text exposition', () => {
  it('escapes backslash, quote and newline in label values', () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    expect(escapeLabelValue('plain')).toBe('plain');
  });

  it('formats special values as Prometheus expects', () => {
    expect(formatValue(NaN)).toBe('NaN');
    expect(formatValue(Infinity)).toBe('+Inf');
    expect(formatValue(-Infinity)).toBe('-Inf');
    expect(formatValue(1.5e-7)).toBe('1.5e-7');
    expect(formatValue(42)).toBe('42');
  });

  it('writes families and samples', () => {
    const w = new TextWriter();
    w.family({ name: 'x_bytes', help: 'Help with \\ and\nnewline.', type: 'gauge' });
    const p = seriesPrefix('x_bytes', [['vm', 'a"b'], ['host', 'h']]);
    w.sample(p, 3);
    w.sampleWith(p, 'phase', 'post', 4);
    expect(w.toString()).toBe(
      '# HELP x_bytes Help with \\\\ and\\nnewline.\n# TYPE x_bytes gauge\nx_bytes{vm="a\\"b",host="h"} 3\nx_bytes{vm="a\\"b",host="h",phase="post"} 4\n',
    );
  });

  it('round-trips any label value through escaping', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (value) => {
        const escaped = escapeLabelValue(value);
        expect(escaped).not.toMatch(/(^|[^\\])(\\\\)*"/);
        expect(escaped).not.toContain('\n');
        const back = escaped.replace(/\\(\\|"|n)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
        expect(back).toBe(value);
      }),
    );
  });
});
