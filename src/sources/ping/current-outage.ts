/**
 * The outage a target is in right now: time since the send of the first lost probe after its
 * latest answered one; 0 while it answers. Fed as lines arrive, not in sequence order, so that a
 * reply ends the outage at once even while `timed out` lines of earlier probes are still due.
 * Sequences are the target's own (PingObservation.sequence), which survive fping restarts.
 */
export class CurrentOutage {
  private lastAnswered = -1;
  private start: { sequence: number; sentWallMs: number } | null = null;

  answered(sequence: number): void {
    if (sequence > this.lastAnswered) this.lastAnswered = sequence;
    if (this.start && sequence > this.start.sequence) this.start = null;
  }

  lost(sequence: number, sentWallMs: number): void {
    // A loss older than the latest answer belongs to an outage that is already over.
    if (sequence <= this.lastAnswered) return;
    if (!this.start || sequence < this.start.sequence) this.start = { sequence, sentWallMs };
  }

  /** Send time of the first lost probe of the current outage, or null while answering. */
  get startedAtMs(): number | null {
    return this.start?.sentWallMs ?? null;
  }

  seconds(nowWallMs: number): number {
    return this.start ? Math.max(0, nowWallMs - this.start.sentWallMs) / 1000 : 0;
  }
}
