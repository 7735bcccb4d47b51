/**
 * Keeps the state file in step with the tracker and the store: a change schedules one write
 * after `debounceMs` (changes in between ride along), flush() writes now (on shutdown).
 * Writes never overlap; a failed write is retried at the next interval.
 */
import type { Clock } from '../clock.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { STATE_FILE_VERSION, writeStateFile, type StateFileContent } from './state-file.js';
import type { MigrationStore } from './store.js';
import type { TrackerSnapshot } from './tracker-snapshot.js';

/** What the state file needs of the tracker (the tracker itself sits a floor up). */
export interface SnapshotSource {
  snapshot(): TrackerSnapshot;
  on(event: 'changed', listener: (urgent: boolean) => void): unknown;
}

/** Sections that other rooms keep in the state file: the logs' positions, nova's migrations under way. */
export type StateSections = Pick<StateFileContent, 'logs' | 'nova'>;

/** setTimeout/clearTimeout, injectable so tests step time instead of waiting. */
export interface Scheduler {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const timerScheduler: Scheduler = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface StatePersistenceOptions {
  path: string;
  debounceMs: number;
  snapshot: () => StateFileContent;
  logger: Logger;
  scheduler?: Scheduler;
  write?: (path: string, content: StateFileContent) => Promise<void>;
  /** Told the outcome of every write (for a writes counter). */
  onWrite?: (ok: boolean) => void;
}

export class StatePersistence {
  private timer: unknown = null;
  private dirty = false;
  private failing = false;
  private queue: Promise<Error | null> = Promise.resolve(null);
  private readonly scheduler: Scheduler;
  private readonly write: (path: string, content: StateFileContent) => Promise<void>;

  constructor(private readonly options: StatePersistenceOptions) {
    this.scheduler = options.scheduler ?? timerScheduler;
    this.write = options.write ?? ((path, content) => writeStateFile(path, content));
  }

  /** Something changed: write within debounceMs. */
  schedule(): void {
    this.dirty = true;
    if (this.timer !== null) return;
    this.timer = this.scheduler.setTimeout(() => {
      this.timer = null;
      void this.writeQueued();
    }, this.options.debounceMs);
  }

  /** Something changed that must reach the disk without the debounce's delay. */
  scheduleNow(): void {
    this.dirty = true;
    if (this.timer !== null) this.scheduler.clearTimeout(this.timer);
    this.timer = null;
    void this.writeQueued();
  }

  /** Writes pending changes now and waits for it. @throws LivemigError LME_STATE_FILE when the write fails. */
  async flush(): Promise<void> {
    if (this.timer !== null) this.scheduler.clearTimeout(this.timer);
    this.timer = null;
    const error = await this.writeQueued();
    if (error) throw error;
  }

  /** Stops the pending timer without writing. */
  cancel(): void {
    if (this.timer !== null) this.scheduler.clearTimeout(this.timer);
    this.timer = null;
  }

  private writeQueued(): Promise<Error | null> {
    this.queue = this.queue.then(() => this.writeIfDirty());
    return this.queue;
  }

  private async writeIfDirty(): Promise<Error | null> {
    if (!this.dirty) return null;
    this.dirty = false;
    try {
      await this.write(this.options.path, this.options.snapshot());
    } catch (err) {
      this.options.onWrite?.(false);
      // Log the first failure of a run loudly, not every retry.
      if (!this.failing) this.options.logger.error({ path: this.options.path, err: errorMessage(err) }, 'state file not written; will retry');
      this.failing = true;
      this.schedule();
      return err instanceof Error ? err : new Error(String(err));
    }
    this.options.onWrite?.(true);
    if (this.failing) this.options.logger.info({ path: this.options.path }, 'state file written again');
    this.failing = false;
    return null;
  }
}

/** Wires a StatePersistence to the tracker's and the store's changes. */
export function persistState(options: {
  path: string;
  debounceMs: number;
  tracker: SnapshotSource;
  store: MigrationStore;
  clock: Clock;
  logger: Logger;
  scheduler?: Scheduler;
  onWrite?: (ok: boolean) => void;
  /** Saved beside the records and the tracker's state. */
  sections?: () => StateSections;
}): StatePersistence {
  const { tracker, store, clock } = options;
  const persistence = new StatePersistence({
    path: options.path,
    debounceMs: options.debounceMs,
    logger: options.logger,
    ...(options.scheduler ? { scheduler: options.scheduler } : {}),
    ...(options.onWrite ? { onWrite: options.onWrite } : {}),
    snapshot: () => ({
      version: STATE_FILE_VERSION,
      savedAtMs: clock.wallMs(),
      records: store.all(),
      tracker: tracker.snapshot(),
      ...options.sections?.(),
    }),
  });
  tracker.on('changed', (urgent) => (urgent ? persistence.scheduleNow() : persistence.schedule()));
  store.onChange(() => persistence.schedule());
  return persistence;
}
