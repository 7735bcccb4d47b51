/**
 * Building blocks shared by the dashboards: the datasource variable every panel and variable
 * queries through, Prometheus queries with a refId, and the layout defaults.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';

/** Every query goes through the `datasource` variable, so one import serves any Prometheus. */
export const DATASOURCE: common.DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

export const TAGS = ['livemig', 'live-migration'];

export function datasourceVariable(): dashboard.DatasourceVariableBuilder {
  return new dashboard.DatasourceVariableBuilder('datasource').label('Prometheus').type('prometheus').regex('');
}

/** A query variable over label values, refreshed when the time range changes. */
export function labelVariable(name: string, label: string, query: string, options: { multi?: boolean; all?: boolean } = {}): dashboard.QueryVariableBuilder {
  const builder = new dashboard.QueryVariableBuilder(name)
    .label(label)
    .datasource(DATASOURCE)
    .query({ query, refId: `${name}-variable`, qryType: 1 })
    .definition(query)
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(dashboard.VariableSort.AlphabeticalAsc)
    .multi(options.multi ?? false)
    .includeAll(options.all ?? false);
  if (options.all) builder.allValue('.*');
  return builder;
}

/** A range query (a time series). */
export function series(refId: string, expr: string, legend = ''): prometheus.DataqueryBuilder {
  return new prometheus.DataqueryBuilder().refId(refId).datasource(DATASOURCE).expr(expr).legendFormat(legend).range();
}

/** An instant query in table format (one row per series, labels as columns). */
export function table(refId: string, expr: string): prometheus.DataqueryBuilder {
  return new prometheus.DataqueryBuilder().refId(refId).datasource(DATASOURCE).expr(expr).instant().format(prometheus.PromQueryFormat.Table);
}

/** An instant query (one value per series: stats, bar charts). */
export function instant(refId: string, expr: string, legend = ''): prometheus.DataqueryBuilder {
  return new prometheus.DataqueryBuilder().refId(refId).datasource(DATASOURCE).expr(expr).legendFormat(legend).instant();
}

export function legend(): common.VizLegendOptionsBuilder {
  return new common.VizLegendOptionsBuilder().showLegend(true).displayMode(common.LegendDisplayMode.List).placement(common.LegendPlacement.Bottom);
}

export function tableLegend(): common.VizLegendOptionsBuilder {
  return new common.VizLegendOptionsBuilder()
    .showLegend(true)
    .displayMode(common.LegendDisplayMode.Table)
    .placement(common.LegendPlacement.Bottom)
    .calcs(['lastNotNull', 'max']);
}

export function tooltip(): common.VizTooltipOptionsBuilder {
  return new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending);
}

/**
 * Builds the dashboard and numbers its panels 1..n in layout order (the SDK leaves ids unset),
 * so the JSON is stable from one generation to the next.
 */
export function finish(builder: dashboard.DashboardBuilder): dashboard.Dashboard {
  const built = builder.build();
  let id = 0;
  for (const panel of built.panels ?? []) {
    (panel as { id?: number }).id = ++id;
    for (const inner of (panel as { panels?: { id?: number }[] }).panels ?? []) inner.id = ++id;
  }
  return built;
}
