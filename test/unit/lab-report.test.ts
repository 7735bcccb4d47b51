import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { csvField, reportCsv, reportJson, CSV_COLUMNS } from '../../src/lab/report/csv.js';
import { linearFit } from '../../src/lab/report/linear-fit.js';
import { MiB, stressFits, type LabMeasurement, type ScenarioReport } from '../../src/lab/report/results.js';
import { formatReport, grid, SIMULATED_BANNER } from '../../src/lab/report/table.js';
import { parseRate } from '../../src/lab/rate.js';
import { LivemigError } from '../../src/errors.js';

describe('linearFit', () => {
  it('finds slope, intercept and R² of points on a line', () => {
    const fit = linearFit([[1, 5], [2, 7], [3, 9], [4, 11]]);
    expect(fit.slope).toBeCloseTo(2, 12);
    expect(fit.intercept).toBeCloseTo(3, 12);
    expect(fit.rSquared).toBeCloseTo(1, 12);
    expect(fit.n).toBe(4);
  });

  it('matches a hand-computed fit of scattered points', () => {
    // x 0..3, y 1, 3, 2, 5: mean x 1.5, mean y 2.75, Sxy 5.5, Sxx 5, Syy 8.75; residuals -0.1, 0.8, -1.3, 0.6: SSres 2.7
    const fit = linearFit([[0, 1], [1, 3], [2, 2], [3, 5]]);
    expect(fit.slope).toBeCloseTo(1.1, 12);
    expect(fit.intercept).toBeCloseTo(1.1, 12);
    expect(fit.rSquared).toBeCloseTo(1 - 2.7 / 8.75, 12);
  });

  it("gives the study's Table 3 a slope near 2 (its law: transferred = base + 2 x stressed)", () => {
    const fit = linearFit([[256, 1202], [512, 1722], [768, 2202], [1024, 2649], [1280, 3108], [1536, 3696], [1792, 4208], [2048, 4713]]);
    expect(fit.slope).toBeGreaterThan(1.9);
    expect(fit.slope).toBeLessThan(2.0);
    expect(fit.rSquared).toBeGreaterThan(0.99);
  });

  it('recovers any line exactly, and R² stays within [0, 1] on any data', () => {
    fc.assert(
      fc.property(fc.double({ min: -1e3, max: 1e3, noNaN: true }), fc.double({ min: -1e6, max: 1e6, noNaN: true }), (slope, intercept) => {
        const fit = linearFit([0, 1, 5, 9].map((x) => [x, slope * x + intercept] as const));
        expect(fit.slope).toBeCloseTo(slope, 6);
        expect(fit.intercept).toBeCloseTo(intercept, 3);
      }),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 100 }), fc.integer({ min: -1000, max: 1000 })), { minLength: 3 }), (points) => {
        fc.pre(new Set(points.map(([x]) => x)).size > 1);
        const { rSquared } = linearFit(points);
        expect(rSquared).toBeGreaterThanOrEqual(-1e-9);
        expect(rSquared).toBeLessThanOrEqual(1 + 1e-9);
      }),
    );
  });

  it('refuses fewer than two points, equal x values and non-finite numbers, saying why', () => {
    expect(() => linearFit([[1, 1]])).toThrow(/at least 2 points/);
    expect(() => linearFit([[1, 1], [1, 2]])).toThrow(/two different x/);
    expect(() => linearFit([[1, Number.NaN], [2, 2]])).toThrow(/not finite/);
  });
});

function measurement(stressedMiB: number, transferredBytes: number | null, durationSeconds: number | null, over: Partial<LabMeasurement> = {}): LabMeasurement {
  return {
    step: String(stressedMiB), vm: `sweep-${stressedMiB}`, flavor: 'xl', memoryMiB: 512, allocatedMiB: 32 + stressedMiB, stressedMiB,
    recordId: `sweep-${stressedMiB}@1`, result: 'completed', mode: 'hybrid', durationSeconds, transferredBytes,
    precopyBytes: null, postcopyBytes: null, qemuDowntimeMs: 2, blackoutSeconds: null, postcopyOutageSeconds: null, livePostcopyOutageMaxSeconds: null,
    interfaceBytes: null, novaSeconds: null, novaResult: null, durationEvidence: null, transferredEvidence: null, ...over,
  };
}

function report(over: Partial<ScenarioReport> = {}): ScenarioReport {
  const measurements = [measurement(64, 169e6, 1.43), measurement(128, 308e6, 2.59, { vm: 'odd,"name"' })];
  return {
    scenario: 'stress-sweep', engine: 'qemu', simulated: false, bandwidth: '1gbit', bandwidthBytesPerSecond: 125e6, accel: 'kvm',
    startedAt: '2026-11-26T00:00:00.000Z', measurements, fits: stressFits(measurements), notes: ['a note'], ...over,
  };
}

describe('stressFits', () => {
  it('fits bytes and seconds against stressed bytes, over completed migrations only', () => {
    const fits = stressFits([
      measurement(64, 64 * 2 * MiB + 10e6, 1),
      measurement(128, 128 * 2 * MiB + 10e6, 2),
      measurement(192, 1, 100, { result: 'failed' }),
    ]);
    expect(fits?.transferred.slope).toBeCloseTo(2, 9);
    expect(fits?.transferred.n).toBe(2);
    expect(fits?.time.slope).toBeCloseTo(1 / (64 * MiB), 15);
    // Time against bytes: 1 s per 128 MiB, the rate the migrations ran at.
    expect(1 / (fits?.timeVsBytes.slope ?? Number.NaN)).toBeCloseTo(128 * MiB, 0);
  });

  it('gives no fit without two different stressed sizes', () => {
    expect(stressFits([measurement(64, 1, 1), measurement(64, 2, 2)])).toBeNull();
    expect(stressFits([measurement(64, null, 1), measurement(128, 2, 2)])).toBeNull();
  });
});

describe('report table, CSV and JSON', () => {
  it("prints the lab's figures in the study's layout with the study's tables and both fits", () => {
    const text = formatReport(report());
    expect(text).toContain('| stressed memory (MiB) |');
    expect(text).toMatch(/\| data transferred \(MB\)\s+\|\s+169\.0 \|\s+308\.0 \|/);
    expect(text).toContain('Table 3: x-large VM');
    expect(text).toMatch(/\| data transferred \(MB\)\s+\| 1202 \| 1722 \|/);
    expect(text).toMatch(/Lab fit against stressed memory \(n=2\):\n {2}transferred = 2\.07\d x stressed/);
    expect(text).not.toContain('SIMULATED');
  });

  it('prints the flavor table for flavors', () => {
    const m = [measurement(0, 52e6, 0.5, { flavor: 's', step: 's' }), measurement(0, 58e6, 0.6, { flavor: 'm', step: 'm' })];
    const text = formatReport(report({ scenario: 'flavors', measurements: m, fits: null }));
    expect(text).toMatch(/\| flavor\s+\|\s+s \|\s+m \|/);
    expect(text).toMatch(/\| data transferred \(MB\)\s+\|\s+385 \|\s+435 \|\s+530 \|\s+681 \|/);
    expect(text).toMatch(/\| downtime \(s, QEMU\)\s+\|\s+0\.002 \|/);
  });

  it('says SIMULATED in every output of the sim engine', () => {
    const sim = report({ engine: 'sim', simulated: true, accel: 'SIMULATED' });
    const text = formatReport(sim);
    expect(text.startsWith(SIMULATED_BANNER)).toBe(true);
    expect(text.trimEnd().endsWith(SIMULATED_BANNER)).toBe(true);
    expect(reportCsv(sim).split('\n').slice(1, -1).every((line) => line.startsWith('stress-sweep (SIMULATED),sim,'))).toBe(true);
    expect(JSON.parse(reportJson(sim))).toMatchObject({ SIMULATED: true, simulated: true });
    expect(JSON.parse(reportJson(report()))).not.toHaveProperty('SIMULATED');
  });

  it('writes one CSV row per migration with quoting and empty cells for absent figures', () => {
    const lines = reportCsv(report()).trimEnd().split('\n');
    expect(lines[0]).toBe(CSV_COLUMNS.join(','));
    expect(lines).toHaveLength(3);
    expect(lines[2]).toContain(',"odd,""name""",');
    expect(lines[1]?.split(',')).toHaveLength(CSV_COLUMNS.length);
    expect(csvField(null)).toBe('');
    expect(csvField('a\nb')).toBe('"a\nb"');
  });

  it('aligns grid columns', () => {
    expect(grid([['a', 1, null], ['long', 100, 2]])).toBe('| a    |   1 | - |\n| long | 100 | 2 |');
  });
});

describe('parseRate', () => {
  it("reads tc's rates as bytes per second", () => {
    expect(parseRate('1gbit')).toBe(125_000_000);
    expect(parseRate('100mbit')).toBe(12_500_000);
    expect(parseRate('12mbps')).toBe(12_000_000);
    expect(parseRate('2.5Gbit')).toBe(312_500_000);
  });

  it('names the flag and the bad value', () => {
    for (const bad of ['fast', '1gb', '10kbit', '', '1e3mbit']) {
      expect(() => parseRate(bad)).toThrow(LivemigError);
      expect(() => parseRate(bad)).toThrow(/--bandwidth/);
    }
  });
});
