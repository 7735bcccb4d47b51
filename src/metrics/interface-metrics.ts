import { Counter, type Registry } from 'prom-client';
import { METRICS } from './catalogue.js';

export interface InterfaceTotalsView {
  host: string;
  interface: string;
  receiveBytes: bigint;
  transmitBytes: bigint;
}

/**
 * livemig_interface_{receive,transmit}_bytes_total, set at scrape time from the netdev source's
 * totals (which already carry on across resets and wraps).
 */
export function registerInterfaceMetrics(registry: Registry, totals: () => Iterable<InterfaceTotalsView>): void {
  const spec = (d: { name: string; help: string; labels: readonly string[] }) => ({ name: d.name, help: d.help, labelNames: [...d.labels] });
  let snapshot: InterfaceTotalsView[] = [];
  const rx = new Counter({
    ...spec(METRICS.interfaceReceiveBytes),
    registers: [registry],
    collect() {
      snapshot = [...totals()];
      this.reset();
      for (const t of snapshot) this.inc({ host: t.host, interface: t.interface }, Number(t.receiveBytes));
    },
  });
  new Counter({
    ...spec(METRICS.interfaceTransmitBytes),
    registers: [registry],
    collect() {
      this.reset();
      for (const t of snapshot) this.inc({ host: t.host, interface: t.interface }, Number(t.transmitBytes));
    },
  });
  void rx;
}
