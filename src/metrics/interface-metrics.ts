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
  const counter = (def: { name: string; help: string; labels: readonly string[] }, bytes: (t: InterfaceTotalsView) => bigint) =>
    new Counter({
      name: def.name,
      help: def.help,
      labelNames: [...def.labels],
      registers: [registry],
      collect() {
        this.reset();
        for (const t of totals()) this.inc({ host: t.host, interface: t.interface }, Number(bytes(t)));
      },
    });
  counter(METRICS.interfaceReceiveBytes, (t) => t.receiveBytes);
  counter(METRICS.interfaceTransmitBytes, (t) => t.transmitBytes);
}
