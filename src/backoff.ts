/**
 * Exponential backoff with full jitter: the n-th retry waits a uniformly random time in
 * [0, min(cap, base * 2^n)), so many clients that lost the same peer do not retry in step.
 */
export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  /** Uniform in [0, 1); injectable so tests are deterministic. */
  random?: () => number;
}

export function backoffCeilingMs(attempt: number, baseMs: number, capMs: number): number {
  // 2^attempt overflows to Infinity for large attempts; Math.min then yields the cap.
  return Math.min(capMs, baseMs * 2 ** Math.max(0, attempt));
}

export function fullJitterDelayMs(attempt: number, options: BackoffOptions): number {
  const random = options.random ?? Math.random;
  return Math.floor(random() * backoffCeilingMs(attempt, options.baseMs, options.capMs));
}

/** Counts attempts since the last success and hands out the next delay. */
export class Backoff {
  private attempt = 0;

  constructor(private readonly options: BackoffOptions) {
    if (!(options.baseMs > 0) || !(options.capMs >= options.baseMs)) {
      throw new RangeError(`backoff needs 0 < baseMs <= capMs, got baseMs=${options.baseMs} capMs=${options.capMs}`);
    }
  }

  /** Delay before the next attempt; each call counts one more failed attempt. */
  nextDelayMs(): number {
    return fullJitterDelayMs(this.attempt++, this.options);
  }

  /** Attempts since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  reset(): void {
    this.attempt = 0;
  }
}
