/**
 * Every PromQL query a generated dashboard runs (panel targets, query variables, annotations),
 * and Grafana's variable substitution, so tests can run them against a real Prometheus. Pure.
 */
export interface DashboardQuery {
  /** Where it is: `panel "Title" A`, `variable vm`, `annotation "Migration phases"`. */
  where: string;
  expr: string;
  /** Instant query in the dashboard (a table, a stat); otherwise a range query. */
  instant: boolean;
  kind: 'panel' | 'variable' | 'annotation';
}

interface Target {
  expr?: string;
  refId?: string;
  instant?: boolean;
  range?: boolean;
  hide?: boolean;
}
interface PanelJson {
  title?: string;
  targets?: Target[];
  panels?: PanelJson[];
}
interface DashboardJson {
  panels?: PanelJson[];
  templating?: { list?: { type?: string; name?: string; query?: unknown; definition?: string }[] };
  annotations?: { list?: { name?: string; expr?: string; builtIn?: number }[] };
}

export function dashboardQueries(source: object): DashboardQuery[] {
  const dash = source as DashboardJson;
  const out: DashboardQuery[] = [];
  const visit = (panel: PanelJson) => {
    for (const t of panel.targets ?? []) {
      if (t.hide || !t.expr) continue;
      out.push({ where: `panel "${panel.title ?? ''}" ${t.refId ?? ''}`.trim(), expr: t.expr, instant: t.instant === true && t.range !== true, kind: 'panel' });
    }
    for (const inner of panel.panels ?? []) visit(inner);
  };
  for (const panel of dash.panels ?? []) visit(panel);
  for (const variable of dash.templating?.list ?? []) {
    if (variable.type !== 'query') continue;
    const query = typeof variable.query === 'string' ? variable.query : (variable.query as { query?: string } | undefined)?.query;
    if (query) out.push({ where: `variable ${variable.name ?? ''}`, expr: query, instant: false, kind: 'variable' });
  }
  for (const annotation of dash.annotations?.list ?? []) {
    if (annotation.expr) out.push({ where: `annotation "${annotation.name ?? ''}"`, expr: annotation.expr, instant: false, kind: 'annotation' });
  }
  return out;
}

/**
 * Replaces `$name`, `${name}` and `[[name]]` as Grafana does for Prometheus: a multi-value or
 * "All" value becomes a regex alternation. Built-ins ($__range, $__rate_interval, ...) come in
 * `values` like any other variable. Longer names first, so `$hosts` is not read as `$host`+`s`.
 */
export function substitute(expr: string, values: Record<string, string | readonly string[]>): string {
  const names = Object.keys(values).sort((a, b) => b.length - a.length);
  let result = expr;
  for (const name of names) {
    const raw = values[name] as string | readonly string[];
    const value = typeof raw === 'string' ? raw : raw.length === 1 ? (raw[0] as string) : `(${raw.map(escapeRegex).join('|')})`;
    const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    result = result.replace(new RegExp(`\\$\\{${escaped}\\}|\\[\\[${escaped}\\]\\]|\\$${escaped}(?![A-Za-z0-9_])`, 'g'), () => value);
  }
  return result;
}

/** `label_values(metric, label)` variable queries: Grafana runs them as a series lookup. */
export function parseLabelValues(query: string): { match: string; label: string } | null {
  const m = /^label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$/.exec(query.trim());
  return m ? { match: (m[1] as string).trim(), label: m[2] as string } : null;
}

function escapeRegex(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
