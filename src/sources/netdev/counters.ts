/**
 * Pure accounting of interface byte counters between two reads: a counter that goes down is
 * either a wrap (32-bit counters of old drivers, 64-bit in theory) or a reset (the device was
 * deleted and re-created, its counters start again at 0). A wrap is taken only when the
 * previous value was close enough to the 32-bit limit that the jump is plausible; otherwise
 * the new value is what crossed since the reset.
 */

const WRAP_32 = 2n ** 32n;
const WRAP_64 = 2n ** 64n;

export type DeltaKind = 'normal' | 'wrap32' | 'wrap64' | 'reset';

export interface CounterDelta {
  delta: bigint;
  kind: DeltaKind;
}

/**
 * `maxPlausible`: the most bytes that could have crossed since the previous read (link rate x
 * time, with margin). A decrease explained by a wrap within it is a wrap; else a reset.
 * `packetsWentBack`: whether the interface's packet counter in the same direction went back too
 * (true: a reset, whatever the bytes say); unknown when undefined.
 */
export function counterDelta(previous: bigint, current: bigint, maxPlausible: bigint, packetsWentBack?: boolean): CounterDelta {
  if (current >= previous) return { delta: current - previous, kind: 'normal' };
  // Bytes and packets both going back is a new device: a byte counter wraps about a thousand
  // times as often as its packet counter, so a wrap of both at once is all but impossible.
  if (packetsWentBack === true) return { delta: current, kind: 'reset' };
  if (previous < WRAP_32 && current < WRAP_32) {
    const wrapped = WRAP_32 - previous + current;
    if (wrapped <= maxPlausible) return { delta: wrapped, kind: 'wrap32' };
  }
  const wrapped64 = WRAP_64 - previous + current;
  if (previous >= WRAP_64 - maxPlausible && wrapped64 <= maxPlausible) return { delta: wrapped64, kind: 'wrap64' };
  return { delta: current, kind: 'reset' };
}

/** Running totals per interface and direction: monotonic across resets and wraps. */
export class CounterTotals {
  private readonly last = new Map<string, bigint>();
  private readonly totals = new Map<string, bigint>();

  /**
   * Feeds one read; returns the delta. The first read of a key only sets the baseline (the
   * counter's history before the exporter started is not this exporter's to report, but the
   * total starts at the kernel's value so the series matches the interface).
   */
  update(key: string, value: bigint, maxPlausible: bigint, packetsWentBack?: boolean): CounterDelta | null {
    const previous = this.last.get(key);
    this.last.set(key, value);
    if (previous === undefined) {
      this.totals.set(key, value);
      return null;
    }
    const change = counterDelta(previous, value, maxPlausible, packetsWentBack);
    this.totals.set(key, (this.totals.get(key) ?? 0n) + change.delta);
    return change;
  }

  total(key: string): bigint | undefined {
    return this.totals.get(key);
  }

  forget(key: string): void {
    this.last.delete(key);
    this.totals.delete(key);
  }

  keys(): IterableIterator<string> {
    return this.totals.keys();
  }
}

/** Bytes that can cross in `ms` at `bitsPerSecond`, doubled for margin, at least 1 MiB. */
export function plausibleBytes(ms: number, bitsPerSecond: number): bigint {
  const bytes = Math.ceil(((bitsPerSecond / 8) * Math.max(ms, 1)) / 1000) * 2;
  return BigInt(Math.max(bytes, 1 << 20));
}
