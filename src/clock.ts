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

/** Calls `fn` every `ms` until the returned function is called; the timer does not keep the process alive. */
export function every(ms: number, fn: () => void): () => void {
  const timer = setInterval(fn, ms);
  timer.unref();
  return () => clearInterval(timer);
}
