/**
 * Vega-Lite specs to SVG, without a browser: vega-lite compiles the spec to Vega, and vega's
 * headless View renders it (`renderer: 'none'`, then `toSVG()`; no canvas package is needed for
 * SVG). No I/O: the specs carry their data inline, and the loader refuses anything else.
 * vega is imported on first use, so an exporter that never draws a page never loads it.
 */
import type { TopLevelSpec } from 'vega-lite';

export type ChartSpec = TopLevelSpec;

/** Look shared by every figure: the page's font, no chart border, quiet grid lines. */
export const CHART_CONFIG = {
  font: 'sans-serif',
  background: 'white',
  view: { stroke: null },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 14, subtitleFontSize: 11, anchor: 'start' as const, subtitleColor: '#555' },
} as const;

type VegaModules = { vega: typeof import('vega'); vl: typeof import('vega-lite') };
let modules: Promise<VegaModules> | undefined;
const load = (): Promise<VegaModules> => (modules ??= Promise.all([import('vega'), import('vega-lite')]).then(([vega, vl]) => ({ vega, vl })));

export interface RenderOptions {
  /** vega-lite's and vega's warnings (a spec mistake, say); ignored unless given. */
  onWarning?: (message: string) => void;
}

/**
 * One spec as a standalone SVG element. Element ids (vega's clip paths) get `idPrefix`, so that
 * several charts inlined in one page never share an id. Rejects with vega's error when the
 * spec cannot be drawn (vega itself would only log it and draw an empty chart).
 */
export async function renderSvg(spec: ChartSpec, idPrefix: string, options: RenderOptions = {}): Promise<string> {
  const { vega, vl } = await load();
  const errors: string[] = [];
  const handler = (_method: string, level: string, input: readonly unknown[]): void => {
    const message = input.map((x) => (x instanceof Error ? x.message : String(x))).join(' ');
    // vega only warns when data cannot be loaded (and draws the chart without it).
    if (level === 'ERROR' || message.startsWith('Loading failed')) errors.push(message);
    else if (level === 'WARN') options.onWarning?.(message);
  };
  const logger = vega.logger(vega.Warn, undefined, handler);
  const compiled = vl.compile({ ...spec, config: { ...CHART_CONFIG, ...spec.config } } as TopLevelSpec, { logger }).spec;
  const loader = vega.loader();
  const refuse = (what: string) => async (): Promise<never> => {
    throw new Error(`charts load no ${what}: every spec carries its data inline`);
  };
  loader.load = refuse('data');
  loader.sanitize = refuse('URL');
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', loader, logger, logLevel: vega.Warn });
  try {
    const svg = await view.toSVG();
    if (errors.length > 0) throw new Error(`chart ${idPrefix}: ${errors.join('; ')}`);
    return prefixIds(svg, idPrefix);
  } finally {
    view.finalize();
  }
}

/** Prefixes every `id="…"` of an SVG and the `url(#…)` and `href="#…"` references to it. Pure. */
export function prefixIds(svg: string, prefix: string): string {
  const ids = new Set([...svg.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1] as string));
  if (ids.size === 0) return svg;
  const safe = prefix.replace(/[^A-Za-z0-9_-]/g, '_');
  return svg
    .replace(/(\sid=")([^"]+)"/g, (all, head: string, id: string) => (ids.has(id) ? `${head}${safe}-${id}"` : all))
    .replace(/url\(#([^)]+)\)/g, (all, id: string) => (ids.has(id) ? `url(#${safe}-${id})` : all))
    .replace(/(href=")#([^"]+)"/g, (all, head: string, id: string) => (ids.has(id) ? `${head}#${safe}-${id}"` : all));
}
