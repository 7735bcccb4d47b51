/**
 * The migration study: the published study's Table 2 and Figures 1-2 (migration time, downtime
 * and data transferred by flavor, unloaded VMs) and Tables 3-4 with their figures (time and data
 * against the guest's stressed memory), computed from the exporter's metrics.
 *
 * Each migration counts through its VM's last-migration gauges (one migration per VM and run, as
 * the lab names one VM per configuration), joined with the VM's flavor and its `stressed_mib`
 * free label by the recording rules; a VM migrated several times in the range counts with its
 * last migration. The fleet dashboard has the histograms over every migration.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as barchart from '@grafana/grafana-foundation-sdk/barchart';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as tablePanel from '@grafana/grafana-foundation-sdk/table';
import * as text from '@grafana/grafana-foundation-sdk/text';
import { datasourceVariable, finish, labelVariable, legend, table, TAGS, tooltip } from './common.js';
import { RULES, STRESSED_LABEL } from './rules.js';

export const STUDY_UID = 'livemig-study';

/** The completed migrations' figure, averaged over the VMs of each group, over the dashboard's range. */
export function studyAverage(rule: string, by: string, filter = ''): string {
  return `avg by (${by}) (last_over_time(${rule}{result="completed"${filter}}[$__range]))`;
}

export function studyCount(by: string, filter = ''): string {
  return `count by (${by}) (last_over_time(${RULES.lastDuration}{result="completed"${filter}}[$__range]))`;
}

const STRESSED_FILTER = `,flavor=~"$flavor",${STRESSED_LABEL}!=""`;

const merge = { id: 'merge', options: {} };
const numericStressed = {
  id: 'convertFieldType',
  options: { conversions: [{ targetField: STRESSED_LABEL, destinationType: 'number' }], fields: {} },
};
const sortByStressed = { id: 'sortBy', options: { sort: [{ field: STRESSED_LABEL }] } };
const organize = (rename: Record<string, string>) => ({ id: 'organize', options: { excludeByName: { Time: true }, renameByName: rename, indexByName: {} } });

function flavorTable(): tablePanel.PanelBuilder {
  return new tablePanel.PanelBuilder()
    .title('Table 2: migration time, downtime and data transferred by flavor')
    .description('Completed migrations whose VM has a flavor, averaged per flavor: time from start to end, QEMU switch-over downtime, guest-visible switch-over blackout from ping, bytes of guest memory sent.')
    .withTarget(table('A', studyCount('flavor')))
    .withTarget(table('B', studyAverage(RULES.lastDuration, 'flavor')))
    .withTarget(table('C', studyAverage(RULES.lastQemuDowntime, 'flavor')))
    .withTarget(table('D', studyAverage(RULES.lastBlackout, 'flavor')))
    .withTarget(table('E', studyAverage(RULES.lastTransferred, 'flavor')))
    .withTransformation(merge)
    .withTransformation(
      organize({ 'Value #A': 'migrations', 'Value #B': 'migration time', 'Value #C': 'downtime (QEMU)', 'Value #D': 'blackout (ping)', 'Value #E': 'data transferred' }),
    )
    .overrideByName('migration time', [{ id: 'unit', value: 's' }])
    .overrideByName('downtime (QEMU)', [{ id: 'unit', value: 's' }])
    .overrideByName('blackout (ping)', [{ id: 'unit', value: 's' }])
    .overrideByName('data transferred', [{ id: 'unit', value: 'decbytes' }])
    .span(24);
}

function stressedTable(): tablePanel.PanelBuilder {
  return new tablePanel.PanelBuilder()
    .title('Tables 3-4: migration time and data transferred against stressed memory')
    .description(`Completed migrations of VMs of the chosen flavor with a \`${STRESSED_LABEL}\` label (MiB the guest dirties while it migrates), averaged per step. The study: transferred = base + 2 x stressed (each dirtied page goes once in pre-copy, once in post-copy); time = transferred / throughput.`)
    .withTarget(table('A', studyCount(STRESSED_LABEL, STRESSED_FILTER)))
    .withTarget(table('B', studyAverage(RULES.lastDuration, STRESSED_LABEL, STRESSED_FILTER)))
    .withTarget(table('C', studyAverage(RULES.lastTransferred, STRESSED_LABEL, STRESSED_FILTER)))
    .withTransformation(merge)
    .withTransformation(numericStressed)
    .withTransformation(sortByStressed)
    .withTransformation(organize({ 'Value #A': 'migrations', 'Value #B': 'migration time', 'Value #C': 'data transferred' }))
    .overrideByName('migration time', [{ id: 'unit', value: 's' }])
    .overrideByName('data transferred', [{ id: 'unit', value: 'decbytes' }])
    .span(24);
}

function bars(title: string, description: string, xField: string, unit: string): barchart.PanelBuilder {
  return new barchart.PanelBuilder()
    .title(title)
    .description(description)
    .xField(xField)
    .unit(unit)
    .showValue(common.VisibilityMode.Always)
    .legend(legend())
    .tooltip(tooltip())
    .span(12);
}

export function studyDashboard(): dashboard.Dashboard {
  const builder = new dashboard.DashboardBuilder('Live migration: study (time, downtime, data by flavor and stressed memory)')
    .uid(STUDY_UID)
    .description("The hybrid migration study's tables and figures, from the exporter's metrics.")
    .tags(TAGS)
    .editable()
    .time({ from: 'now-24h', to: 'now' })
    .withVariable(datasourceVariable())
    .withVariable(labelVariable('flavor', 'Flavor (Tables 3-4)', `label_values(${RULES.vmInfo}{${STRESSED_LABEL}!=""}, flavor)`, { multi: true, all: true }))
    .withPanel(
      new text.PanelBuilder()
        .title('How to read this dashboard')
        .content(
          `Set the time range to cover a series of runs. Table 2 groups completed migrations by the VM's \`flavor\`; Tables 3-4 by the VM's free label \`${STRESSED_LABEL}\` (set it in the exporter config, \`vms[].labels\`, or let \`livemig-exporter lab\` set it). Each VM counts with its last migration in the range.`,
        )
        .mode(text.TextMode.Markdown)
        .height(3)
        .span(24),
    )
    .withRow(new dashboard.RowBuilder('By flavor (Table 2, Figures 1-2)'))
    .withPanel(flavorTable().height(7))
    .withPanel(
      bars('Figure 1: migration time and downtime by flavor', 'Average migration time, QEMU downtime and ping blackout of completed migrations per flavor.', 'flavor', 's')
        .withTarget(table('A', studyAverage(RULES.lastDuration, 'flavor')))
        .withTarget(table('B', studyAverage(RULES.lastQemuDowntime, 'flavor')))
        .withTarget(table('C', studyAverage(RULES.lastBlackout, 'flavor')))
        .withTransformation(merge)
        .withTransformation(organize({ 'Value #A': 'migration time', 'Value #B': 'downtime (QEMU)', 'Value #C': 'blackout (ping)' })),
    )
    .withPanel(
      bars('Figure 2: data transferred by flavor', 'Average bytes of guest memory sent by completed migrations per flavor.', 'flavor', 'decbytes')
        .withTarget(table('A', studyAverage(RULES.lastTransferred, 'flavor')))
        .withTransformation(organize({ Value: 'data transferred' })),
    )
    .withRow(new dashboard.RowBuilder('Against stressed memory (Tables 3-4 and their figures)'))
    .withPanel(stressedTable().height(8))
    .withPanel(
      bars('Migration time against stressed memory', 'Average migration time per stressed-memory step (MiB).', STRESSED_LABEL, 's')
        .withTarget(table('A', studyAverage(RULES.lastDuration, STRESSED_LABEL, STRESSED_FILTER)))
        .withTransformation(numericStressed)
        .withTransformation(sortByStressed)
        .withTransformation(organize({ Value: 'migration time' })),
    )
    .withPanel(
      bars('Data transferred against stressed memory', 'Average bytes sent per stressed-memory step (MiB).', STRESSED_LABEL, 'decbytes')
        .withTarget(table('A', studyAverage(RULES.lastTransferred, STRESSED_LABEL, STRESSED_FILTER)))
        .withTransformation(numericStressed)
        .withTransformation(sortByStressed)
        .withTransformation(organize({ Value: 'data transferred' })),
    );
  return finish(builder);
}
