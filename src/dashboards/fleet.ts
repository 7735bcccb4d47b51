/**
 * Fleet overview: how many migrations end and how, how long they take and how long guests are
 * down, how much they send, which VMs migrate now and in which phase, post-copy outages now,
 * and whether the exporters and their sources work.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as tablePanel from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { dashboardLinks, datasourceVariable, finish, instant, labelVariable, legend, needsRules, series, table, tableLegend, TAGS, tooltip, vmDetailLink } from './common.js';
import { DETAIL_UID } from './detail.js';
import { RECORDING_RULES_FILE, RULES } from './rules.js';

export const FLEET_UID = 'livemig-fleet';

const quantile = (q: number, rule: string, extra = '') =>
  `histogram_quantile(${q}, sum by (le) (${rule}{result="completed",job=~"$job"${extra}}))`;

export function fleetDashboard(): dashboard.Dashboard {
  const builder = new dashboard.DashboardBuilder('Live migration: fleet overview')
    .uid(FLEET_UID)
    .description(
      `Migrations by result, time and downtime percentiles, bytes sent, migrations running now, post-copy outages now (each VM links to its detail dashboard), and the health of the exporters and their sources. ${needsRules([RECORDING_RULES_FILE])}`,
    )
    .tags(TAGS)
    .editable()
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .time({ from: 'now-6h', to: 'now' })
    .refresh('30s')
    .link(dashboardLinks())
    .withVariable(datasourceVariable())
    .withVariable(labelVariable('job', 'Job', 'label_values(livemig_build_info, job)', { multi: true, all: true }))

    .withRow(new dashboard.RowBuilder('Migrations'))
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Migrations ended, by result')
        .description('Migrations that ended per interval, by result (completed, failed, cancelled, postcopy-paused) and mode.')
        .withTarget(series('A', 'sum by (result, mode) (increase(livemig_migrations_total{job=~"$job"}[$__rate_interval]))', '{{result}} {{mode}}'))
        .drawStyle(common.GraphDrawStyle.Bars)
        .fillOpacity(80)
        .stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal))
        .unit('short')
        .legend(legend())
        .tooltip(tooltip())
        .span(12),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Migration time, p50 and p95 (completed, 5m windows)')
        .description('From livemig_migration_duration_seconds, start to end of each migration.')
        .withTarget(series('A', quantile(0.5, RULES.durationRate), 'p50'))
        .withTarget(series('B', quantile(0.95, RULES.durationRate), 'p95'))
        .unit('s')
        .legend(legend())
        .tooltip(tooltip())
        .span(12),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Downtime, p95 (completed, 5m windows)')
        .description('QEMU switch-over downtime (guest stopped), and the guest-visible blackout and post-copy outage measured by ping.')
        .withTarget(series('A', quantile(0.95, RULES.qemuDowntimeRate), 'QEMU switch-over downtime'))
        .withTarget(series('B', quantile(0.95, RULES.blackoutRate), 'ping: switch-over blackout'))
        .withTarget(series('C', quantile(0.95, RULES.postcopyOutageRate), 'ping: post-copy outage'))
        .unit('s')
        .legend(legend())
        .tooltip(tooltip())
        .span(12),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Bytes sent by migrations')
        .description('Guest memory sent by the migrations that ended, per second, by flavor.')
        .withTarget(series('A', 'sum by (flavor) (rate(livemig_migration_transferred_bytes_sum{job=~"$job"}[$__rate_interval]))', '{{flavor}}'))
        .unit('Bps')
        .legend(legend())
        .tooltip(tooltip())
        .span(12),
    )

    .withRow(new dashboard.RowBuilder('Now'))
    .withPanel(
      new stat.PanelBuilder()
        .title('VMs migrating now')
        .withTarget(instant('A', 'count(max by (vm) (livemig_migration_phase{job=~"$job"} == 1)) or vector(0)'))
        .unit('short')
        .span(4),
    )
    .withPanel(
      new tablePanel.PanelBuilder()
        .title('Migrations running now')
        .description("Each migrating VM, its phase, and its source and destination hosts. Click a VM for its detail dashboard.")
        .withTarget(
          table(
            'A',
            'max by (vm, phase) (livemig_migration_phase{job=~"$job"} == 1) * on (vm) group_left (source_host, destination_host) max by (vm, source_host, destination_host) (livemig_migration_in_progress_info{job=~"$job"})',
          ),
        )
        .withTransformation({ id: 'organize', options: { excludeByName: { Time: true, Value: true } } })
        .overrideByName('vm', [vmDetailLink(DETAIL_UID)])
        .span(10),
    )
    .withPanel(
      new tablePanel.PanelBuilder()
        .title('Post-copy outages now')
        .description('VMs in post-copy and how long they have not answered ping (0 while they answer). The alert LivemigPostcopyOutage fires on this. Click a VM for its detail dashboard.')
        .withTarget(table('A', 'max by (vm) (livemig_migration_current_postcopy_outage_seconds{job=~"$job"})'))
        .withTransformation({ id: 'organize', options: { excludeByName: { Time: true }, renameByName: { Value: 'outage' } } })
        .overrideByName('vm', [vmDetailLink(DETAIL_UID)])
        .unit('s')
        .thresholds(
          new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps([
            { value: null, color: 'green' },
            { value: 1, color: 'orange' },
            { value: 10, color: 'red' },
          ]),
        )
        .span(10),
    )

    .withRow(new dashboard.RowBuilder('Health'))
    .withPanel(
      new statetimeline.PanelBuilder()
        .title('Sources')
        .description('livemig_source_up per source and host: whether each source (qmp, ping, host, netdev, logs) works.')
        .withTarget(series('A', 'min by (source, host) (livemig_source_up{job=~"$job"})', '{{source}} {{host}}'))
        .mappings([
          { type: dashboard.MappingType.ValueToText, options: { '0': { text: 'down', color: 'red', index: 0 }, '1': { text: 'up', color: 'green', index: 1 } } },
        ])
        .legend(legend().showLegend(false))
        .span(12),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Source errors')
        .description('Errors per interval by source and host (0 for sources without errors).')
        .withTarget(
          series(
            'A',
            'sum by (source, host) (increase(livemig_source_errors_total{job=~"$job"}[$__rate_interval])) or sum by (source, host) (livemig_source_up{job=~"$job"} * 0)',
            '{{source}} {{host}}',
          ),
        )
        .unit('short')
        .legend(tableLegend())
        .tooltip(tooltip())
        .span(12),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Log sources: lag and unparseable lines')
        .description('How far behind the nova-compute and libvirt logs each log source is, and lines it could not parse (a new log format after an upgrade shows here first).')
        .withTarget(series('A', 'max by (host, kind) (livemig_log_lag_seconds{job=~"$job"})', '{{host}} {{kind}} lag'))
        .withTarget(series('B', 'sum by (host, kind) (increase(livemig_log_lines_unparseable_total{job=~"$job"}[$__rate_interval]))', '{{host}} {{kind}} unparseable'))
        .overrideByQuery('B', [{ id: 'unit', value: 'short' }, { id: 'custom.axisPlacement', value: 'right' }])
        .unit('s')
        .legend(tableLegend())
        .tooltip(tooltip())
        .span(12),
    )
    .withPanel(
      new statetimeline.PanelBuilder()
        .title('Exporters up')
        .withTarget(series('A', 'up{job=~"$job"}', '{{instance}}'))
        .mappings([
          { type: dashboard.MappingType.ValueToText, options: { '0': { text: 'down', color: 'red', index: 0 }, '1': { text: 'up', color: 'green', index: 1 } } },
        ])
        .legend(legend().showLegend(false))
        .span(12),
    )
    .withPanel(
      new tablePanel.PanelBuilder()
        .title('Exporters')
        .withTarget(table('A', 'max by (instance, version, nodejs) (livemig_build_info{job=~"$job"}) * on (instance) group_left () max by (instance) (livemig_migration_records{job=~"$job"})'))
        .withTransformation({ id: 'organize', options: { excludeByName: { Time: true }, renameByName: { Value: 'records held' } } })
        .span(12),
    );
  return finish(builder);
}
