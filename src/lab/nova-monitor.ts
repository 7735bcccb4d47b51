import type { LabVmSpec } from './engine.js';
import { novaMessages, type NovaMessage } from './nova-log-writer.js';

/**
 * nova's _live_migration_monitor as both orchestrators play it: the job polled now and every
 * 0.5 s; at its first poll of a running job the first downtime step (and its line); a progress
 * line at INFO at the first poll and every 60th (30 s); the progress bar's fraction.
 */

const MONITOR_POLL_MS = 500;
const INFO_EVERY_POLLS = 60;
/** live_migration_downtime 500 ms over live_migration_downtime_steps 10: the first step. */
export const FIRST_DOWNTIME_STEP_MS = 50;

/** Memory bytes of a running migration job, as nova reads them. */
export interface JobProgress {
  processed: number;
  remaining: number;
  total: number;
}

export interface NovaMonitorOptions {
  spec: LabVmSpec;
  /** The job's figures, or null when no migration job runs (yet, or any more); may throw when the source is gone. */
  read(): Promise<JobProgress | null>;
  log(message: NovaMessage): void;
  /** At the first poll of a running job: apply the first downtime step (libvirt's engine does). */
  onFirstPoll?(): Promise<void>;
  onProgress?(vm: string, fraction: number): void;
}

export function novaMonitor(options: NovaMonitorOptions): { stop(): void } {
  const { spec } = options;
  let polls = 0;
  let stopped = false;
  const started = Date.now();
  // What a loaded guest sends at most: its filled memory once, the stressed memory twice (hybrid).
  const expected = Math.max(1, 2 * spec.stressedMiB + spec.fillMiB) * 1024 * 1024;
  const poll = async (): Promise<void> => {
    if (stopped) return;
    try {
      const job = await options.read();
      if (!job || stopped) return;
      const poll = polls++;
      if (poll === 0) {
        options.log(novaMessages.increasingDowntime(FIRST_DOWNTIME_STEP_MS, 0));
        await options.onFirstPoll?.();
      }
      if (poll % INFO_EVERY_POLLS === 0) options.log(novaMessages.migrationRunning((Date.now() - started) / 1000, job));
      options.onProgress?.(spec.name, Math.min(0.99, job.processed / expected));
    } catch {
      // The source is gone at the end: nova's monitor sees the job end.
    }
  };
  void poll();
  const timer = setInterval(() => void poll(), MONITOR_POLL_MS);
  return {
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
