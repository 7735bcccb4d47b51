/**
 * The migration study: the published study's Table 2 and Figures 1-2 (migration time, downtime
 * and data transferred by flavor, unloaded VMs) and Tables 3-4 with their figures (time and data
 * against the guest's stressed memory), computed from the exporter's metrics.
 *
 * Each migration counts through its VM's last-migration gauges (one migration per VM and run, as
 * the lab names one VM per configuration), joined with the VM's flavor and its `stressed_mib`
 * and `stress_step_mib` free labels by the recording rules; a VM migrated several times in the
 * range counts with its last migration. The fleet dashboard has the histograms over every migration.
 *
 * Tables 3 and 4 apart: the study's tables share 1024 and 2048 MB and differ in their step, so
 * each shows the measured sweep whose `stress_step_mib` its variable picks (default: the smallest
 * step for Table 3, the largest for Table 4), beside the study's published points
 * (livemig-study-reference.yml, origin="study"). The lines are least-squares fits the recording
 * rules compute from sums over the points (Prometheus has no regression function); the same rules
 * fit the study's points. Then the fits side by side, and the post-copy outage per VM.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as barchart from '@grafana/grafana-foundation-sdk/barchart';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as tablePanel from '@grafana/grafana-foundation-sdk/table';
import * as text from '@grafana/grafana-foundation-sdk/text';
import * as xychart from '@grafana/grafana-foundation-sdk/xychart';
import { dashboardLinks, datasourceVariable, finish, labelVariable, legend, needsRules, table, TAGS, tooltip, vmDetailLink } from './common.js';
import { DETAIL_UID } from './detail.js';
import { RECORDING_RULES_FILE, RULES, STEP_LABEL, STRESSED_LABEL } from './rules.js';
import { STUDY_REFERENCE_FILE } from './study-reference.js';

export const STUDY_UID = 'livemig-study';

/** The completed migrations' figure, averaged over the VMs of each group, over the dashboard's range. */
export function studyAverage(rule: string, by: string, filter = ''): string {
  return `avg by (${by}) (last_over_time(${rule}{result="completed"${filter}}[$__range]))`;
}

export function studyCount(by: string, filter = ''): string {
  return `count by (${by}) (last_over_time(${RULES.lastDuration}{result="completed"${filter}}[$__range]))`;
}

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

/** The filter of one table's sweep: the chosen flavors and the step in the table's variable. */
export function sweepFilter(variable: string): string {
  return `,flavor=~"$flavor",${STEP_LABEL}="$${variable}"`;
}

/**
 * A point family of one table's measured sweep, last value in the range: one per VM (`max`
 * merely picks the VM's one series), or averaged per stressed step as the table's rows are.
 */
export function measuredPoints(rule: string, variable: string, perStep = false): string {
  const agg = perStep ? `avg by (${STRESSED_LABEL})` : `max by (vm, ${STRESSED_LABEL})`;
  return `${agg} (last_over_time(${rule}{origin="measured"${sweepFilter(variable)}}[$__range]))`;
}

export function studyPoints(rule: string, table: string): string {
  return `max by (${STRESSED_LABEL}) (${rule}{origin="study",study_table="${table}"})`;
}

/** A sweep's fit figure: the measured sweeps of the chosen flavors (last value in the range) and the study's tables. */
export function fitFigure(rule: string, scale = ''): string {
  return `last_over_time(${rule}{origin="measured",flavor=~"$flavor"}[$__range])${scale} or ${rule}{origin="study"}${scale}`;
}

interface TableSpec {
  /** The study's table: "3" or "4". */
  table: string;
  /** Its step in the study, MB. */
  stepMB: number;
  /** The dashboard variable that picks the measured sweep's step. */
  variable: string;
}

const TABLE_SPECS: readonly TableSpec[] = [
  { table: '3', stepMB: 256, variable: 'table3' },
  { table: '4', stepMB: 1024, variable: 'table4' },
];

function sweepTable(t: TableSpec): tablePanel.PanelBuilder {
  const filter = sweepFilter(t.variable);
  return new tablePanel.PanelBuilder()
    .title(`Table ${t.table} (the study: ${t.stepMB} MB steps): the sweep in \${${t.variable}} MiB steps`)
    .description(
      `Completed migrations of the VMs of the chosen flavors labelled \`${STEP_LABEL}\` = $${t.variable} (the variable "Table ${t.table}"), averaged per \`${STRESSED_LABEL}\` step, with the sweep's least-squares line at each step (recording rules point:...:fitted). The study: transferred = base + 2 x stressed (each dirtied page goes once in pre-copy, once in post-copy); time = transferred / throughput.`,
    )
    .withTarget(table('A', studyCount(STRESSED_LABEL, filter)))
    .withTarget(table('B', studyAverage(RULES.lastDuration, STRESSED_LABEL, filter)))
    .withTarget(table('C', measuredPoints(RULES.durationFitted, t.variable, true)))
    .withTarget(table('D', studyAverage(RULES.lastTransferred, STRESSED_LABEL, filter)))
    .withTarget(table('E', measuredPoints(RULES.transferredFitted, t.variable, true)))
    .withTransformation(merge)
    .withTransformation(numericStressed)
    .withTransformation(sortByStressed)
    .withTransformation(
      organize({ [STRESSED_LABEL]: 'stressed memory', 'Value #A': 'migrations', 'Value #B': 'migration time', 'Value #C': 'migration time (fit)', 'Value #D': 'data transferred', 'Value #E': 'data transferred (fit)' }),
    )
    .overrideByName('stressed memory', [{ id: 'unit', value: 'mbytes' }])
    .overrideByName('migration time', [{ id: 'unit', value: 's' }])
    .overrideByName('migration time (fit)', [{ id: 'unit', value: 's' }])
    .overrideByName('data transferred', [{ id: 'unit', value: 'bytes' }])
    .overrideByName('data transferred (fit)', [{ id: 'unit', value: 'bytes' }])
    .span(24);
}

/**
 * One figure of a table: the measured sweep's points and line, and the study's published points
 * and line, against stressed memory (MiB, from the `stressed_mib` label), joined on it.
 */
function sweepFigure(t: TableSpec, what: 'time' | 'data'): xychart.PanelBuilder {
  const [point, fitted, unit, quantity] =
    what === 'time' ? [RULES.durationPoint, RULES.durationFitted, 's', 'migration time'] : [RULES.transferredPoint, RULES.transferredFitted, 'bytes', 'data transferred'];
  const names = { 'Value #A': 'measured', 'Value #B': 'measured (fit)', 'Value #C': `study Table ${t.table}`, 'Value #D': `study Table ${t.table} (fit)` };
  return new xychart.PanelBuilder()
    .title(`Table ${t.table}: ${quantity} against stressed memory, the sweep in \${${t.variable}} MiB steps and the study's`)
    .description(
      `Points: each VM's last completed migration in the sweep (\`${STEP_LABEL}\` = $${t.variable}), and the study's published Table ${t.table} (x-large VM, ${t.stepMB} MB steps; recorded by livemig-study-reference.yml). Lines: each one's least-squares fit, computed by the recording rules from sums over the points.`,
    )
    .withTarget(table('A', measuredPoints(point, t.variable)))
    .withTarget(table('B', measuredPoints(fitted, t.variable)))
    .withTarget(table('C', studyPoints(point, t.table)))
    .withTarget(table('D', studyPoints(fitted, t.table)))
    .withTransformation(numericStressed)
    .withTransformation({ id: 'organize', options: { excludeByName: { Time: true, vm: true }, renameByName: names, indexByName: {} } })
    .withTransformation({ id: 'joinByField', options: { byField: STRESSED_LABEL, mode: 'outer' } })
    .mapping(xychart.SeriesMapping.Auto)
    .show(xychart.XYShowMode.Points)
    .pointSize({ fixed: 6 })
    .unit(unit)
    .overrideByName(STRESSED_LABEL, [{ id: 'unit', value: 'mbytes' }, { id: 'custom.axisLabel', value: 'stressed memory' }])
    .overrideByName(names['Value #B'], [{ id: 'custom.show', value: xychart.XYShowMode.Lines }])
    .overrideByName(names['Value #D'], [{ id: 'custom.show', value: xychart.XYShowMode.Lines }, { id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }])
    .legend(legend())
    .tooltip(tooltip())
    .span(12);
}

function fitsTable(): tablePanel.PanelBuilder {
  return new tablePanel.PanelBuilder()
    .title('Linear fits: data transferred and migration time against stressed memory, per sweep and for the study')
    .description(
      `Least squares per sweep (origin, flavor, ${STEP_LABEL}; the study's by table), from the recording rules' sums: slope = (n Sxy - Sx Sy) / (n Sxx - Sx^2), intercept = (Sy - slope Sx) / n. Data: bytes sent per stressed byte (the study's law: about 2) and the base. Time: seconds per stressed MiB and the base. A measured sweep's figures are the last in the range (the fit over its VMs while their exporters reported them).`,
    )
    .withTarget(table('A', fitFigure(RULES.sweepPoints)))
    .withTarget(table('B', fitFigure(RULES.transferredSlope)))
    .withTarget(table('C', fitFigure(RULES.transferredIntercept)))
    .withTarget(table('D', fitFigure(RULES.transferredRSquared)))
    .withTarget(table('E', fitFigure(RULES.durationSlope, ' * 1048576')))
    .withTarget(table('F', fitFigure(RULES.durationIntercept)))
    .withTarget(table('G', fitFigure(RULES.durationRSquared)))
    .withTransformation(merge)
    .withTransformation(
      organize({
        'Value #A': 'points',
        'Value #B': 'data: bytes per stressed byte',
        'Value #C': 'data: base',
        'Value #D': 'data: R²',
        'Value #E': 'time per stressed MiB',
        'Value #F': 'time: base',
        'Value #G': 'time: R²',
      }),
    )
    .overrideByName('data: bytes per stressed byte', [{ id: 'decimals', value: 3 }])
    .overrideByName('data: base', [{ id: 'unit', value: 'bytes' }])
    .overrideByName('data: R²', [{ id: 'decimals', value: 4 }])
    .overrideByName('time per stressed MiB', [{ id: 'unit', value: 's' }])
    .overrideByName('time: base', [{ id: 'unit', value: 's' }])
    .overrideByName('time: R²', [{ id: 'decimals', value: 4 }])
    .span(24);
}

/** Post-copy's unpredictable outage beside the short switch-over blackout, per VM, from ping. */
export function postcopyOutage(rule: string): string {
  return `max by (vm) (last_over_time(${rule}{mode=~"hybrid|postcopy"}[$__range]))`;
}

function postcopyPanel(): barchart.PanelBuilder {
  return bars(
    'Post-copy outage: guest-visible outage in post-copy and at the switch-over, per VM (ping)',
    "Each pinged VM's last hybrid or post-copy migration: the switch-over blackout (the study: under 0.3 s) and the total outage during post-copy (the study: unpredictable, from none to tens of seconds; suspected stale ARP/forwarding tables). The alert LivemigPostcopyOutage watches the live outage. Click a bar for the VM's detail dashboard.",
    'vm',
    's',
  )
    .withTarget(table('A', postcopyOutage(RULES.lastBlackout)))
    .withTarget(table('B', postcopyOutage(RULES.lastPostcopyOutage)))
    .withTransformation(merge)
    .withTransformation(organize({ 'Value #A': 'switch-over blackout', 'Value #B': 'post-copy outage' }))
    .overrideByName('vm', [vmDetailLink(DETAIL_UID)])
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

/** The steps of the measured sweeps of the chosen flavors: Table 3's variable selects the smallest, Table 4's the largest. */
function stepVariable(t: TableSpec, sort: dashboard.VariableSort): dashboard.QueryVariableBuilder {
  return labelVariable(t.variable, `Table ${t.table}: sweep step (MiB)`, `label_values(${RULES.stressedPoint}{origin="measured",flavor=~"$flavor"}, ${STEP_LABEL})`, {
    sort,
    description: `The \`${STEP_LABEL}\` of the measured sweep shown beside the study's Table ${t.table} (${t.stepMB} MB steps); by default the ${sort === dashboard.VariableSort.NumericalAsc ? 'smallest' : 'largest'} step there is.`,
  });
}

export function studyDashboard(): dashboard.Dashboard {
  const [t3, t4] = TABLE_SPECS as [TableSpec, TableSpec];
  const builder = new dashboard.DashboardBuilder('Live migration: study (time, downtime, data by flavor and stressed memory)')
    .uid(STUDY_UID)
    .description(
      `The hybrid migration study's tables and figures, from the exporter's metrics, beside the study's published points and with the linear fits. ${needsRules([RECORDING_RULES_FILE, STUDY_REFERENCE_FILE])}`,
    )
    .tags(TAGS)
    .editable()
    .time({ from: 'now-24h', to: 'now' })
    .link(dashboardLinks())
    .withVariable(datasourceVariable())
    .withVariable(labelVariable('flavor', 'Flavor (Tables 3-4)', `label_values(${RULES.vmInfo}{${STRESSED_LABEL}!=""}, flavor)`, { multi: true, all: true }))
    .withVariable(stepVariable(t3, dashboard.VariableSort.NumericalAsc))
    .withVariable(stepVariable(t4, dashboard.VariableSort.NumericalDesc))
    .withPanel(
      new text.PanelBuilder()
        .title('How to read this dashboard')
        .content(
          [
            `Set the time range to cover a series of runs. Table 2 groups completed migrations by the VM's \`flavor\`. Tables 3 and 4 group the VMs of a stress sweep by their free labels \`${STRESSED_LABEL}\` (the MiB the guest dirties) and \`${STEP_LABEL}\` (the sweep's step: the study's Table 3 went in 256 MB steps, Table 4 in 1024 MB); set them in the exporter config (\`vms[].labels\`) or let \`livemig-exporter lab --scenario stress-sweep\` set them. The variables "Table 3" and "Table 4" pick which measured sweep stands beside each of the study's tables (by default the smallest and the largest step).`,
            `Each VM counts with its last migration in the range. The fits and the study's points are recording rules: Prometheus must load \`${RECORDING_RULES_FILE}\` and \`${STUDY_REFERENCE_FILE}\`.`,
          ].join('\n\n'),
        )
        .mode(text.TextMode.Markdown)
        .height(5)
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
    );
  for (const t of TABLE_SPECS) {
    builder
      .withRow(new dashboard.RowBuilder(`Table ${t.table}: stressed memory in ${t.stepMB} MB steps (the sweep in \${${t.variable}} MiB steps)`))
      .withPanel(sweepTable(t).height(8))
      .withPanel(sweepFigure(t, 'time').height(9))
      .withPanel(sweepFigure(t, 'data').height(9));
  }
  builder
    .withRow(new dashboard.RowBuilder('Linear fits'))
    .withPanel(fitsTable().height(7))
    .withRow(new dashboard.RowBuilder('Downtime: switch-over and post-copy'))
    .withPanel(postcopyPanel().height(8));
  return finish(builder);
}
