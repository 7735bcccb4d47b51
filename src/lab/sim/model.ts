/**
 * A model of one hybrid migration (SIMULATED): what the lab's --engine sim reports instead of
 * QEMU. Allocated memory crosses once in the first pre-copy pass; the stressed (dirtied) memory
 * is dirty again by then and crosses again in post-copy; zero pages are not sent; time is bytes
 * over the link's TCP payload rate. Pure: time is passed in (ms since `migrate`).
 */

export const PAGE_SIZE = 4096;
/** TCP payload per Ethernet frame at MTU 1500 (1448 of 1514 bytes): what a 1 Gbit/s tbf carries as data. */
export const PAYLOAD_RATIO = 1448 / 1514;
export const SETUP_MS = 5;
/** Device state sent while the guest is stopped, and the fixed part of the switch-over. */
export const DEVICE_STATE_BYTES = 300 * 1024;
export const SWITCHOVER_FIXED_MS = 3;
/** QEMU's default downtime-limit: pre-copy finishes when what is dirty fits in it. */
export const DEFAULT_DOWNTIME_LIMIT_MS = 300;

export interface SimGuest {
  ramBytes: number;
  /** Non-zero memory (touched once, plus the stressed range): the first pass sends this. */
  allocatedBytes: number;
  /** Memory the guest writes again and again. */
  stressedBytes: number;
}

export interface SimSnapshot {
  status: 'setup' | 'active' | 'postcopy-active' | 'completed';
  /** The guest runs on: 'source' until the switch-over, 'none' during it, 'destination' after. */
  runningOn: 'source' | 'none' | 'destination';
  totalTimeMs: number;
  setupTimeMs: number;
  downtimeMs: number | null;
  ram: {
    total: number;
    transferred: number;
    remaining: number;
    'precopy-bytes': number;
    'downtime-bytes': number;
    'postcopy-bytes': number;
    'dirty-sync-count': number;
    'postcopy-requests': number;
    duplicate: number;
    normal: number;
    'normal-bytes': number;
    'page-size': number;
    mbps: number;
    'dirty-pages-rate': number;
  };
}

export type SimEventName = 'MIGRATION' | 'MIGRATION_PASS' | 'STOP' | 'RESUME';
export interface SimEvent {
  atMs: number;
  side: 'source' | 'destination';
  event: SimEventName;
  data?: Record<string, unknown>;
}

/**
 * The migration as a function of time, with one input while it runs: migrate-start-postcopy.
 * Call advance(t) with non-decreasing t; it returns the events that happened up to t.
 */
export class SimMigration {
  private readonly rate: number;
  private readonly postcopyRate: number;
  private readonly precopyConvergeBytes: number;
  private pass = 0;
  private passStartMs = SETUP_MS;
  private precopySent = 0;
  private postcopyRequestedAt: number | null = null;
  private switchAt: number | null = null;
  private resumeAt: number | null = null;
  private completedAt: number | null = null;
  private convergedPrecopy = false;
  private nowMs = 0;
  private readonly pending: SimEvent[] = [];

  constructor(
    readonly guest: SimGuest,
    /** Link rate in bytes per second (the tbf's rate); QEMU's max-bandwidth caps it when lower. */
    linkBytesPerSecond: number,
    maxBandwidth: number = Number.POSITIVE_INFINITY,
    downtimeLimitMs: number = DEFAULT_DOWNTIME_LIMIT_MS,
    /** QEMU's max-postcopy-bandwidth; default: as pre-copy. */
    maxPostcopyBandwidth: number = maxBandwidth,
  ) {
    checkGuest(guest);
    if (!(linkBytesPerSecond > 0)) throw new RangeError(`link rate ${linkBytesPerSecond} B/s is not positive`);
    this.rate = Math.min(linkBytesPerSecond * PAYLOAD_RATIO, maxBandwidth);
    this.postcopyRate = Math.min(linkBytesPerSecond * PAYLOAD_RATIO, maxPostcopyBandwidth);
    this.precopyConvergeBytes = (this.rate * downtimeLimitMs) / 1000;
    this.pending.push({ atMs: 0, side: 'source', event: 'MIGRATION', data: { status: 'setup' } });
  }

  get mode(): 'precopy' | 'hybrid' {
    return this.convergedPrecopy ? 'precopy' : 'hybrid';
  }

  /** migrate-start-postcopy at t: takes effect at once in pre-copy; ignored after it. */
  startPostcopy(atMs: number): void {
    this.advanceTo(atMs);
    if (this.postcopyRequestedAt !== null || this.switchAt !== null || this.completedAt !== null) return;
    this.postcopyRequestedAt = atMs;
    // Requested during the first pass: takes effect when it ends (transition()).
    if (this.pass >= 2) this.switchOver(atMs);
  }

  advance(atMs: number): SimEvent[] {
    this.advanceTo(atMs);
    return this.pending.splice(0);
  }

  snapshot(atMs: number): SimSnapshot {
    this.advanceTo(atMs);
    const t = this.nowMs;
    const { ramBytes, allocatedBytes, stressedBytes } = this.guest;
    const precopy = this.precopyBytesAt(t);
    const downtimeBytes = this.switchAt !== null && t >= this.switchAt ? DEVICE_STATE_BYTES : 0;
    const postcopy = this.resumeAt !== null && t > this.resumeAt ? Math.min(stressedBytes, ((t - this.resumeAt) / 1000) * this.postcopyRate) : 0;
    const done = this.completedAt !== null && t >= this.completedAt;
    const transferred = precopy + downtimeBytes + postcopy;
    const firstPassDone = Math.min(precopy, allocatedBytes);
    const remaining = done ? 0 : this.pass <= 1 ? Math.max(0, allocatedBytes - precopy) : Math.max(0, stressedBytes - postcopy);
    const zeroPages = Math.floor(((ramBytes - allocatedBytes) * (firstPassDone / allocatedBytes || 0)) / PAGE_SIZE);
    const normalBytes = Math.floor((transferred - downtimeBytes) / PAGE_SIZE) * PAGE_SIZE;
    const status: SimSnapshot['status'] = done ? 'completed' : this.switchAt !== null && t >= this.switchAt ? 'postcopy-active' : t >= SETUP_MS ? 'active' : 'setup';
    return {
      status,
      runningOn: this.resumeAt !== null && t >= this.resumeAt ? 'destination' : this.switchAt !== null && t >= this.switchAt ? 'none' : 'source',
      totalTimeMs: Math.round(done ? (this.completedAt as number) : t),
      setupTimeMs: SETUP_MS,
      downtimeMs: done ? this.downtimeMs() : null,
      ram: {
        total: ramBytes,
        transferred: Math.round(transferred),
        remaining: Math.round(remaining),
        'precopy-bytes': Math.round(precopy),
        'downtime-bytes': downtimeBytes,
        'postcopy-bytes': Math.round(postcopy),
        'dirty-sync-count': this.pass,
        'postcopy-requests': Math.round(postcopy / PAGE_SIZE / 64),
        duplicate: zeroPages,
        normal: normalBytes / PAGE_SIZE,
        'normal-bytes': normalBytes,
        'page-size': PAGE_SIZE,
        mbps: done ? 0 : (this.rate * 8) / 1e6,
        'dirty-pages-rate': this.pass >= 2 && !done ? Math.round(stressedBytes / PAGE_SIZE / Math.max(0.001, allocatedBytes / this.rate)) : 0,
      },
    };
  }

  private downtimeMs(): number {
    if (this.convergedPrecopy) return Math.round(SWITCHOVER_FIXED_MS + (this.guest.stressedBytes / this.rate) * 1000);
    return (this.resumeAt as number) - (this.switchAt as number);
  }

  private precopyBytesAt(t: number): number {
    if (t <= SETUP_MS) return 0;
    const end = this.switchAt ?? this.completedAt ?? t;
    const sending = (Math.min(t, end) - SETUP_MS) / 1000 * this.rate;
    const cap = this.convergedPrecopy ? this.guest.allocatedBytes + this.guest.stressedBytes : Number.POSITIVE_INFINITY;
    return Math.min(sending, cap);
  }

  private advanceTo(t: number): void {
    if (t < this.nowMs) return;
    for (;;) {
      const next = this.nextTransition();
      if (next === null || next > t) break;
      this.nowMs = Math.max(this.nowMs, next);
      this.transition(next);
    }
    this.nowMs = t;
  }

  private nextTransition(): number | null {
    if (this.pass === 0) return SETUP_MS;
    if (this.completedAt !== null) return this.pendingCompletionEvent ? this.completedAt : null;
    if (this.resumeAt !== null) return null;
    if (this.switchAt !== null) return null;
    if (this.pass === 1) return this.passStartMs + (this.guest.allocatedBytes / this.rate) * 1000;
    return null;
  }

  private pendingCompletionEvent = false;

  private transition(at: number): void {
    if (this.pass === 0) {
      this.pass = 1;
      this.passStartMs = SETUP_MS;
      this.pending.push({ atMs: at, side: 'source', event: 'MIGRATION_PASS', data: { pass: 1 } });
      this.pending.push({ atMs: at, side: 'source', event: 'MIGRATION', data: { status: 'active' } });
      this.pending.push({ atMs: at, side: 'destination', event: 'MIGRATION', data: { status: 'active' } });
      return;
    }
    if (this.completedAt !== null && this.pendingCompletionEvent) {
      this.pendingCompletionEvent = false;
      this.pending.push({ atMs: at, side: 'source', event: 'MIGRATION', data: { status: 'completed' } });
      this.pending.push({ atMs: at, side: 'destination', event: 'MIGRATION', data: { status: 'completed' } });
      return;
    }
    // End of the first pass: the stressed range is dirty again.
    this.pass = 2;
    this.passStartMs = at;
    this.pending.push({ atMs: at, side: 'source', event: 'MIGRATION_PASS', data: { pass: 2 } });
    if (this.postcopyRequestedAt !== null) {
      this.switchOver(at);
    } else if (this.guest.stressedBytes <= this.precopyConvergeBytes) {
      this.convergedPrecopy = true;
      this.pending.push({ atMs: at, side: 'source', event: 'STOP' });
      const end = at + SWITCHOVER_FIXED_MS + (this.guest.stressedBytes / this.rate) * 1000;
      this.pending.push({ atMs: end, side: 'destination', event: 'RESUME' });
      this.complete(end);
    }
  }

  private switchOver(at: number): void {
    this.switchAt = at;
    this.resumeAt = at + SWITCHOVER_FIXED_MS + (DEVICE_STATE_BYTES / this.rate) * 1000;
    this.pending.push({ atMs: at, side: 'source', event: 'MIGRATION', data: { status: 'postcopy-active' } });
    this.pending.push({ atMs: at, side: 'source', event: 'STOP' });
    this.pending.push({ atMs: at, side: 'source', event: 'MIGRATION_PASS', data: { pass: this.pass + 1 } });
    this.pending.push({ atMs: at, side: 'destination', event: 'MIGRATION', data: { status: 'postcopy-active' } });
    this.pending.push({ atMs: this.resumeAt, side: 'destination', event: 'RESUME' });
    this.pass += 1;
    this.complete(this.resumeAt + (this.guest.stressedBytes / this.postcopyRate) * 1000);
  }

  private complete(at: number): void {
    this.completedAt = at;
    this.pendingCompletionEvent = true;
  }
}

function checkGuest(guest: SimGuest): void {
  for (const [field, value] of Object.entries(guest)) {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`sim guest ${field} ${value} is not a byte count`);
  }
  if (guest.allocatedBytes > guest.ramBytes) throw new RangeError(`sim guest allocates ${guest.allocatedBytes} B of ${guest.ramBytes} B RAM`);
  if (guest.stressedBytes > guest.allocatedBytes) throw new RangeError(`sim guest stresses ${guest.stressedBytes} B but allocates only ${guest.allocatedBytes} B`);
}

/** What the model predicts for a whole hybrid migration switched after the first pass (tests, docs). */
export function predictHybrid(guest: SimGuest, linkBytesPerSecond: number): { transferredBytes: number; totalTimeMs: number } {
  const sim = new SimMigration(guest, linkBytesPerSecond);
  const firstPassEnd = SETUP_MS + (guest.allocatedBytes / (linkBytesPerSecond * PAYLOAD_RATIO)) * 1000;
  sim.startPostcopy(firstPassEnd);
  const end = sim.snapshot(Number.MAX_SAFE_INTEGER / 2);
  return { transferredBytes: end.ram.transferred, totalTimeMs: end.totalTimeMs };
}
