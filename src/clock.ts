import { performance } from 'node:perf_hooks';

/** Wall time stamps records; monotonic time measures durations (it never jumps with NTP). */
export interface Clock {
  wallMs(): number;
  monoMs(): number;
}

export const systemClock: Clock = {
  wallMs: () => Date.now(),
  monoMs: () => performance.now(),
};
