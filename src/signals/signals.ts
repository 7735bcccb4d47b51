import type { SourceHealth } from '../metrics/exporter-metrics.js';
import type { StateSections } from '../records/persistence.js';
import type { MonitorState } from '../sources/qmp/source.js';
import type { ScrapeViews, Signal, SignalContext, SignalFactory } from './signal.js';

/** The signals the config enables, built from their factories and handled alike. */
export class Signals {
  private readonly list: Signal[] = [];
  private readonly stopping = new Set<string>();

  /** Read across every signal; a signal's own views stay its own business. */
  readonly views: ScrapeViews = {
    monitors: () => onePerQemu(this.list.flatMap((s) => [...(s.views?.monitors?.() ?? [])])),
    pingTargets: () => this.list.flatMap((s) => [...(s.views?.pingTargets?.() ?? [])]),
    currentOutages: () => new Map(this.list.flatMap((s) => [...(s.views?.currentOutages?.() ?? [])])),
    outageCauses: (outages) => new Map(this.list.flatMap((s) => [...(s.views?.outageCauses?.(outages) ?? [])])),
  };

  /** Builds every signal before any starts, so that no signal's first read finds another half made. */
  build(factories: readonly SignalFactory[], context: SignalContext): void {
    for (const factory of factories) {
      const signal = factory(context);
      if (signal) this.list.push(signal);
    }
  }

  /** One after the other, in the order of the factories. */
  async start(): Promise<void> {
    for (const signal of this.list) await signal.start();
  }

  async reload(): Promise<void> {
    for (const signal of this.list) await signal.reload();
  }

  /** Stops them all at once. */
  async stop(): Promise<void> {
    await Promise.all(
      this.list.map(async (signal) => {
        this.stopping.add(signal.name);
        await signal.stop();
        this.stopping.delete(signal.name);
      }),
    );
  }

  /** Names of the signals whose stop() has not finished. */
  stillStopping(): string[] {
    return [...this.stopping];
  }

  health(): SourceHealth[] {
    return this.list.flatMap((s) => s.health());
  }

  describe(): string[] {
    return this.list.flatMap((s) => (s.describe ? [s.describe()] : []));
  }

  saved(): StateSections {
    return Object.assign({}, ...this.list.map((s) => s.saved?.() ?? {})) as StateSections;
  }
}

/**
 * One monitor state per VM and host: a QEMU watched both through its QMP monitor and through
 * libvirt is one set of series (the first signal's view that reports wins: QMP's, which has the run state, before libvirt's).
 */
function onePerQemu(states: MonitorState[]): MonitorState[] {
  const chosen = new Map<string, MonitorState>();
  for (const s of states) {
    const key = `${s.ref.vm}\u0000${s.ref.host}`;
    const held = chosen.get(key);
    // A monitor that is down or has not answered yet gives way to one that reports.
    if (!held || (!(held.up && held.info) && s.up && s.info)) chosen.set(key, s);
  }
  return [...chosen.values()];
}
