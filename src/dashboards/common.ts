/**
 * Building blocks shared by the dashboards: the datasource variable every panel and variable
 * queries through, Prometheus queries with a refId, and the layout defaults.
 */
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';

/** Every query goes through the `datasource` variable, so one import serves any Prometheus. */
export const DATASOURCE: common.DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

export const TAGS = ['livemig', 'live-migration'];

export function datasourceVariable(): dashboard.DatasourceVariableBuilder {
  return new dashboard.DatasourceVariableBuilder('datasource').label('Prometheus').type('prometheus').regex('');
}

/**
 * A query variable over label values, refreshed when the time range changes. Without a saved
 * value Grafana selects the first value in `sort` order (so NumericalDesc selects the largest).
 */
export function labelVariable(
  name: string,
  label: string,
  query: string,
  options: { multi?: boolean; all?: boolean; sort?: dashboard.VariableSort; description?: string } = {},
): dashboard.QueryVariableBuilder {
  const builder = new dashboard.QueryVariableBuilder(name)
    .label(label)
    .datasource(DATASOURCE)
    .query({ query, refId: `${name}-variable`, qryType: 1 })
    .definition(query)
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(options.sort ?? dashboard.VariableSort.AlphabeticalAsc)
    .multi(options.multi ?? false)
    .includeAll(options.all ?? false);
  if (options.all) builder.allValue('.*');
  if (options.description) builder.description(options.description);
  return builder;
}

/**
 * What a dashboard's description says about the recording rules it queries: the files, and that
 * Prometheus must load them (a unit test checks that each names the files its queries need).
 */
export function needsRules(files: readonly string[]): string {
  return `Needs the recording rules: Prometheus must load ${files.join(' and ')} (rule_files in prometheus.yml; the docker-compose stack loads prometheus/rules/*.yml), or these panels stay empty.`;
}

/**
 * Links at the top of every livemig dashboard to the others (by tag), keeping the time range;
 * without the SDK's default `placement` (Grafana 12.0 shows links in the controls menu only from later versions).
 */
export function dashboardLinks(): cog.Builder<dashboard.DashboardLink> {
  const builder = new dashboard.DashboardLinkBuilder('Live migration dashboards')
    .type(dashboard.DashboardLinkType.Dashboards)
    .tags(['livemig'])
    .asDropdown(false)
    .keepTime(true)
    .includeVars(false)
    .targetBlank(false);
  return {
    build: () => {
      const link = builder.build();
      delete link.placement;
      return link;
    },
  };
}

/**
 * A data link (field override `links`) from a table or bar chart row to the detail dashboard of
 * its VM: the row's `vm` field, the same time range and Prometheus.
 */
export function vmDetailLink(detailUid: string): dashboard.DynamicConfigValue {
  return {
    id: 'links',
    value: [{ title: 'Detail of ${__data.fields.vm}', url: `/d/${detailUid}?var-vm=\${__data.fields.vm}&var-datasource=\${datasource}&\${__url_time_range}`, targetBlank: false }],
  };
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
