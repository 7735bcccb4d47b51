import { describe, expect, it } from 'vitest';
import { CurrentOutage } from '../../src/sources/ping/current-outage.js';

describe('CurrentOutage', () => {
  it('is 0 while answering', () => {
    const o = new CurrentOutage();
    o.answered(0);
    o.answered(1);
    expect(o.seconds(5000)).toBe(0);
    expect(o.startedAtMs).toBeNull();
  });

  it('counts from the send of the first lost probe after the latest answer', () => {
    const o = new CurrentOutage();
    o.answered(0);
    o.lost(2, 1200);
    o.lost(1, 1100);
    o.lost(3, 1300);
    expect(o.startedAtMs).toBe(1100);
    expect(o.seconds(3600)).toBe(2.5);
  });

  it('ends at once on a later reply, even while timeouts of earlier probes are still due', () => {
    const o = new CurrentOutage();
    o.lost(12, 1200);
    o.answered(27);
    expect(o.seconds(5000)).toBe(0);
    // fping prints `timed out` for 13..26 after the reply to 27: an outage already over.
    o.lost(13, 1300);
    expect(o.seconds(5000)).toBe(0);
  });

  it('a reply older than the outage does not end it', () => {
    const o = new CurrentOutage();
    o.lost(5, 500);
    o.answered(4);
    expect(o.seconds(1500)).toBe(1);
  });
});
