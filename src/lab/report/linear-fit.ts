/** Ordinary least squares of y against x: the study's "transferred = base + 2 x stressed" law. Pure. */

export interface LinearFit {
  slope: number;
  intercept: number;
  /** Coefficient of determination; 1 when every point is on the line (also when y is constant). */
  rSquared: number;
  n: number;
}

export function linearFit(points: readonly (readonly [number, number])[]): LinearFit {
  const n = points.length;
  if (n < 2) throw new RangeError(`a linear fit needs at least 2 points (got ${n})`);
  for (const [x, y] of points) {
    if (!Number.isFinite(x) || !Number.isFinite(y)) throw new RangeError(`point (${x}, ${y}) is not finite`);
  }
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / n;
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (const [x, y] of points) {
    sxx += (x - meanX) ** 2;
    sxy += (x - meanX) * (y - meanY);
    syy += (y - meanY) ** 2;
  }
  if (sxx === 0) throw new RangeError('a linear fit needs at least two different x values');
  const slope = sxy / sxx;
  const intercept = meanY - slope * meanX;
  let ssRes = 0;
  for (const [x, y] of points) ssRes += (y - (intercept + slope * x)) ** 2;
  const rSquared = syy === 0 ? 1 : 1 - ssRes / syy;
  return { slope, intercept, rSquared, n };
}
