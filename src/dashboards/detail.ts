/**
 * Migration detail for one VM: its phases over time (and as annotations on every graph), ping
 * RTT, loss and outages, the interface throughput of its hosts in both directions (post-copy's
 * page requests show as destination-to-source traffic), and QEMU's transferred, remaining,
 * dirty rate and throughput.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as tablePanel from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { dashboardLinks, DATASOURCE, datasourceVariable, finish, labelVariable, legend, series, table, TAGS, tableLegend, tooltip } from './common.js';
import { RECORDING_RULES_FILE } from './rules.js';
import { MIGRATION_PHASES } from '../qemu/status.js';

export const DETAIL_UID = 'livemig-detail';

/**
 * The VM's phase as one number per instant (1 = setup, 2 = precopy, ...), so the state timeline
 * shows one row with the phase names; nothing while the VM does not migrate.
 */
export function phaseCodeExpr(): string {
  return MIGRATION_PHASES.map((phase, i) => `max(livemig_migration_phase{vm="$vm",phase="${phase}"} == 1) * ${i + 1}`).join(' or ');
}

const PHASE_COLORS: Record<string, string> = {
  setup: 'blue',
  precopy: 'green',
  switchover: 'yellow',
  postcopy: 'orange',
  'postcopy-paused': 'red',
  'postcopy-recover': 'purple',
  cancelling: 'text',
  colo: 'text',
};

function phaseMappings(): dashboard.ValueMapping[] {
  const options: Record<string, dashboard.ValueMappingResult> = {};
  MIGRATION_PHASES.forEach((phase, i) => {
    options[String(i + 1)] = { text: phase, color: PHASE_COLORS[phase] ?? 'text', index: i };
  });
  return [{ type: dashboard.MappingType.ValueToText, options }];
}

export function detailDashboard(): dashboard.Dashboard {
  const builder = new dashboard.DashboardBuilder('Live migration: detail per VM')
    .uid(DETAIL_UID)
    .description(
      `One VM's migrations: phases, ping RTT and loss, interface throughput both ways, QEMU's progress. Queries the exporter's own series: this one needs no recording rules (the fleet and study dashboards, which link here, need Prometheus to load ${RECORDING_RULES_FILE}).`,
    )
    .tags(TAGS)
    .editable()
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .time({ from: 'now-30m', to: 'now' })
    .refresh('10s')
    .link(dashboardLinks())
    .withVariable(datasourceVariable())
    .withVariable(labelVariable('vm', 'VM', 'label_values(livemig_vm_info, vm)'))
    .withVariable(labelVariable('host', 'Hosts', 'label_values(livemig_qmp_monitor_up{vm="$vm"}, host)', { multi: true, all: true }))
    .annotation(
      new dashboard.AnnotationQueryBuilder()
        .name('Migration phases')
        .datasource(DATASOURCE)
        .enable(true)
        .iconColor('orange')
        .expr('max by (phase) (livemig_migration_phase{vm="$vm"} == 1)')
        .titleFormat('{{phase}}')
        .tagKeys('phase')
        .step('1s'),
    )
    .annotation(
      // Each outage of the last migration at its start, named by its cause (the series' value is the start time).
      new dashboard.AnnotationQueryBuilder()
        .name('Outage causes')
        .datasource(DATASOURCE)
        .enable(true)
        .iconColor('red')
        .expr('max by (outage, cause) (livemig_last_migration_outage_start_timestamp_seconds{vm="$vm"}) * 1000')
        .useValueForTime(true)
        .titleFormat('{{outage}}: {{cause}}')
        .tagKeys('outage,cause')
        .step('10s'),
    )

    .withRow(new dashboard.RowBuilder('Migration'))
    .withPanel(
      new statetimeline.PanelBuilder()
        .title('Phase')
        .description('The phase of the migration running now: setup, precopy, switchover, postcopy, postcopy-paused, ... Empty while the VM does not migrate.')
        .withTarget(series('A', phaseCodeExpr(), 'phase'))
        .mappings(phaseMappings())
        .legend(legend().showLegend(false))
        .mergeValues(true)
        .height(4)
        .span(24),
    )
    .withPanel(
      new tablePanel.PanelBuilder()
        .title('Last migration')
        .withTarget(table('A', 'max by (result, mode, source_host, destination_host) (livemig_last_migration_info{vm="$vm"})'))
        .withTarget(table('B', 'max(livemig_last_migration_duration_seconds{vm="$vm"})'))
        .withTarget(table('C', 'max(livemig_last_migration_transferred_bytes{vm="$vm",phase="total"})'))
        .withTarget(table('D', 'max(livemig_last_migration_qemu_downtime_seconds{vm="$vm"})'))
        .withTransformation({ id: 'merge', options: {} })
        .withTransformation({
          id: 'organize',
          options: { excludeByName: { Time: true, 'Value #A': true }, renameByName: { 'Value #B': 'duration', 'Value #C': 'transferred', 'Value #D': 'downtime (QEMU)' }, indexByName: {} },
        })
        .overrideByName('duration', [{ id: 'unit', value: 's' }])
        .overrideByName('transferred', [{ id: 'unit', value: 'decbytes' }])
        .overrideByName('downtime (QEMU)', [{ id: 'unit', value: 's' }])
        .height(4)
        .span(24),
    )

    .withRow(new dashboard.RowBuilder('Guest reachability (ping)'))
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Ping RTT')
        .withTarget(series('A', 'histogram_quantile(0.5, sum by (le) (rate(livemig_ping_rtt_seconds_bucket{vm="$vm"}[$__rate_interval])))', 'p50'))
        .withTarget(series('B', 'histogram_quantile(0.99, sum by (le) (rate(livemig_ping_rtt_seconds_bucket{vm="$vm"}[$__rate_interval])))', 'p99'))
        .unit('s')
        .legend(legend())
        .tooltip(tooltip())
        .span(8),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Ping loss')
        .withTarget(
          series(
            'A',
            '1 - sum(rate(livemig_ping_replies_received_total{vm="$vm"}[$__rate_interval])) / sum(rate(livemig_ping_probes_sent_total{vm="$vm"}[$__rate_interval]))',
            'lost',
          ),
        )
        .unit('percentunit')
        .min(0)
        .max(1)
        .legend(legend())
        .tooltip(tooltip())
        .span(8),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Outage now')
        .description('The current run of lost probes, and the same while the VM is in post-copy (what the post-copy outage alert watches).')
        .withTarget(series('A', 'max(livemig_ping_outage_seconds{vm="$vm"})', 'ping outage'))
        .withTarget(series('B', 'max(livemig_migration_current_postcopy_outage_seconds{vm="$vm"})', 'post-copy outage'))
        .unit('s')
        .legend(legend())
        .tooltip(tooltip())
        .span(8),
    )

    .withRow(new dashboard.RowBuilder('Network'))
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Interface throughput (transmit up, receive down)')
        .description("The migration interfaces of the VM's hosts. In post-copy the destination's page requests raise destination-to-source traffic.")
        .withTarget(series('A', 'sum by (host, interface) (rate(livemig_interface_transmit_bytes_total{host=~"$host"}[$__rate_interval]))', '{{host}} {{interface}} transmit'))
        .withTarget(series('B', 'sum by (host, interface) (rate(livemig_interface_receive_bytes_total{host=~"$host"}[$__rate_interval]))', '{{host}} {{interface}} receive'))
        .overrideByQuery('B', [{ id: 'custom.transform', value: common.GraphTransform.NegativeY }])
        .unit('Bps')
        .legend(tableLegend())
        .tooltip(tooltip())
        .span(24),
    )

    .withRow(new dashboard.RowBuilder('QEMU'))
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Transferred and remaining')
        .withTarget(series('A', 'max by (host) (livemig_qemu_migration_ram_transferred_bytes{vm="$vm",host=~"$host"})', '{{host}} transferred'))
        .withTarget(series('B', 'max by (host) (livemig_qemu_migration_ram_remaining_bytes{vm="$vm",host=~"$host"})', '{{host}} remaining'))
        .unit('bytes')
        .legend(legend())
        .tooltip(tooltip())
        .span(12),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Dirty rate and throughput')
        .description("Bytes the guest dirties per second (QEMU's dirty-pages-rate times page size) against the migration's throughput: pre-copy converges only while throughput is higher.")
        .withTarget(
          series(
            'A',
            'max by (host) (livemig_qemu_migration_ram_dirty_pages_per_second{vm="$vm",host=~"$host"} * livemig_qemu_migration_ram_page_size_bytes{vm="$vm",host=~"$host"})',
            '{{host}} dirty rate',
          ),
        )
        .withTarget(series('B', 'max by (host) (livemig_qemu_migration_ram_throughput_bytes_per_second{vm="$vm",host=~"$host"})', '{{host}} throughput'))
        .unit('Bps')
        .legend(legend())
        .tooltip(tooltip())
        .span(12),
    );
  return finish(builder);
}
