/**
 * The grafana.com import variant of a dashboard: the same dashboard with `__inputs` (Grafana asks
 * for a Prometheus datasource on import and puts it where `${DS_PROMETHEUS}` stands) and
 * `__requires` (the plugins it needs). Pure: JSON in, JSON out.
 */
export const DS_INPUT = 'DS_PROMETHEUS';

interface DashboardJson {
  panels?: { type?: string; panels?: { type?: string }[] }[];
  templating?: { list?: { type?: string; name?: string; current?: unknown }[] };
  [key: string]: unknown;
}

export function gnetcomVariant(source: object, grafanaVersion = '12.0.0'): Record<string, unknown> {
  const copy = structuredClone(source) as DashboardJson;
  for (const variable of copy.templating?.list ?? []) {
    if (variable.type === 'datasource') variable.current = { selected: false, text: `\${${DS_INPUT}}`, value: `\${${DS_INPUT}}` };
  }
  const panelTypes = new Set<string>();
  for (const panel of copy.panels ?? []) {
    if (panel.type && panel.type !== 'row') panelTypes.add(panel.type);
    for (const inner of panel.panels ?? []) if (inner.type) panelTypes.add(inner.type);
  }
  const requires = [
    { type: 'grafana', id: 'grafana', name: 'Grafana', version: grafanaVersion },
    { type: 'datasource', id: 'prometheus', name: 'Prometheus', version: '1.0.0' },
    ...[...panelTypes].sort().map((id) => ({ type: 'panel', id, name: id, version: '' })),
  ];
  return {
    __inputs: [{ name: DS_INPUT, label: 'Prometheus', description: 'The Prometheus that scrapes livemig-exporter', type: 'datasource', pluginId: 'prometheus', pluginName: 'Prometheus' }],
    __requires: requires,
    ...copy,
    id: null,
  };
}
