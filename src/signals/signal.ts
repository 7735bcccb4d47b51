/**
 * The one shape of a signal (QMP, ping, interface counters, logs, libvirt discovery): a factory
 * builds it from the config, or returns null when the config does not ask for it; startup then
 * starts, reloads and stops every signal alike. A signal's metrics are families of the catalogue,
 * registered on the context's registry or read through its scrape views.
 */
import type { Clock } from '../clock.js';
import type { Config } from '../config/schema.js';
import type { Enrichment } from '../enrichers/enrichment.js';
import type { HostRegistry } from '../hosts/registry.js';
import type { Logger } from '../log.js';
import type { ExporterMetrics, SourceHealth } from '../metrics/exporter-metrics.js';
import type { PingTargetView } from '../metrics/ping-metrics.js';
import type { StateSections } from '../records/persistence.js';
import type { OutageCause } from '../records/record.js';
import type { MigrationStore } from '../records/store.js';
import type { MonitorState } from '../sources/qmp/source.js';
import type { MigrationTracker } from '../tracker/tracker.js';
import type { WatchedVms } from './watched-vms.js';

export interface Signal {
  /** The signal's name in logs, e.g. when it does not stop in time (its health entries carry their own `source` label). */
  readonly name: string;
  /** Starts reading; resolves once the first read is done or under way. */
  start(): Promise<void>;
  /** The watched VMs changed (a config reload, libvirt's domains): apply what follows from them. */
  reload(): Promise<void>;
  /** Stops reading and lets go of every process and connection. */
  stop(): Promise<void>;
  /** livemig_source_up entries, one per host read. */
  health(): SourceHealth[];
  /** What the signal adds to the scrape-time series. */
  readonly views?: Partial<ScrapeViews>;
  /** A line for the landing page. */
  describe?(): string;
  /** Sections the signal keeps in the state file. */
  saved?(): StateSections;
}

/** What signals show at scrape time, besides the families they register. */
export interface ScrapeViews {
  monitors(): Iterable<MonitorState>;
  pingTargets(): Iterable<PingTargetView>;
  /** Current ping outage in seconds per pinged VM. */
  currentOutages(): Map<string, number>;
  /** Provisional cause of the post-copy outage under way, per VM (the frame watcher), given the current outages (currentOutages). */
  outageCauses(outages: ReadonlyMap<string, number>): Map<string, OutageCause>;
}

export interface SignalContext {
  /** The config at start; reloads change the watched VMs (`vms`) only. */
  config: Config;
  clock: Clock;
  logger: Logger;
  /** One host per name, so one SSH connection carries every signal's channels. */
  hosts: HostRegistry;
  vms: WatchedVms;
  tracker: MigrationTracker;
  store: MigrationStore;
  enrichment: Enrichment;
  metrics: ExporterMetrics;
  /** Read across all signals (one signal never names another). */
  views: ScrapeViews;
  /** What the state file held at start. */
  saved: StateSections;
  /** Something a signal keeps in the state file changed: write it (debounced). */
  persist(): void;
  /** The watched VMs changed (libvirt discovery): every signal reloads. */
  vmsChanged(): Promise<void>;
}

/** Builds a signal from the config, or null when the config does not enable it. */
export type SignalFactory = (context: SignalContext) => Signal | null;
