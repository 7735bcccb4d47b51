/**
 * Per-VM ping series: the RTT histogram (kept here, fed by the ping source's RTT callback) and
 * the counters and current outage read from the source at scrape time. Targets that are gone
 * lose their series and their histogram at the next scrape.
 */
import type { PingTargetState } from '../sources/ping/types.js';
import { METRICS } from './catalogue.js';
import { formatValue, seriesPrefix, type TextWriter } from './exposition.js';

export interface PingTargetView {
  vm: string;
  sent: number;
  received: number;
  duplicates: number;
  currentOutageSeconds: number;
}

/** What the metrics read of one target of the ping source; a target without a VM is named by its address. */
export function pingTargetView(t: PingTargetState): PingTargetView {
  return {
    vm: t.target.vm ?? t.target.address,
    sent: t.counters.sent,
    received: t.counters.received,
    duplicates: t.counters.duplicates,
    currentOutageSeconds: t.currentOutageSeconds,
  };
}

interface Buckets {
  counts: Float64Array;
  sum: number;
  count: number;
}

export class PingMetrics {
  private readonly bounds = METRICS.pingRtt.buckets;
  private histograms = new Map<string, Buckets>();

  observeRtt(vm: string, seconds: number): void {
    let h = this.histograms.get(vm);
    if (!h) this.histograms.set(vm, (h = { counts: new Float64Array(this.bounds.length), sum: 0, count: 0 }));
    // Cumulative buckets are formed at render time; here each sample lands in its first bucket.
    const i = this.bounds.findIndex((le) => seconds <= le);
    if (i >= 0) h.counts[i] = (h.counts[i] as number) + 1;
    h.sum += seconds;
    h.count += 1;
  }

  /** Render steps for the ping families; forgets histograms of targets no longer probed. */
  steps(w: TextWriter, targets: readonly PingTargetView[]): (() => void)[] {
    const live = new Set(targets.map((t) => t.vm));
    this.histograms = new Map([...this.histograms].filter(([vm]) => live.has(vm)));
    const m = METRICS;
    const perTarget = (def: { name: string; help: string; type: 'counter' | 'gauge' }, read: (t: PingTargetView) => number) => () => {
      w.family(def);
      for (const t of targets) w.sample(seriesPrefix(def.name, [['vm', t.vm]]), read(t));
    };
    return [
      () => this.renderHistograms(w, targets),
      perTarget(m.pingSent, (t) => t.sent),
      perTarget(m.pingReceived, (t) => t.received),
      perTarget(m.pingDuplicates, (t) => t.duplicates),
      perTarget(m.pingOutage, (t) => t.currentOutageSeconds),
    ];
  }

  private renderHistograms(w: TextWriter, targets: readonly PingTargetView[]): void {
    const def = METRICS.pingRtt;
    w.family(def);
    for (const { vm } of targets) {
      const h = this.histograms.get(vm) ?? { counts: new Float64Array(this.bounds.length), sum: 0, count: 0 };
      const bucket = seriesPrefix(`${def.name}_bucket`, [['vm', vm]]);
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += h.counts[i] as number;
        w.sampleWith(bucket, 'le', formatValue(le), cumulative);
      });
      w.sampleWith(bucket, 'le', '+Inf', h.count);
      w.sample(seriesPrefix(`${def.name}_sum`, [['vm', vm]]), h.sum);
      w.sample(seriesPrefix(`${def.name}_count`, [['vm', vm]]), h.count);
    }
  }
}
