import { describe, expect, it } from 'vitest';
import { confusionTable, namedCause, outageCauses, tallyCauses } from '../../src/lab/scenarios/outage-causes.js';

describe('outage-causes scenario: what a run was named, and the confusion table', () => {
  it('names a run by its longest post-copy outage longer than one period', () => {
    expect(namedCause({ blackoutCause: 'switch-over', postcopyOutageCauses: [{ cause: 'unknown', seconds: 0.1 }, { cause: 'not-announced', seconds: 3.4 }, { cause: 'announced-network-slow', seconds: 1.2 }] })).toBe('not-announced');
  });

  it('names a run guest-stalled when only short outages were, the late answers around them', () => {
    expect(namedCause({ blackoutCause: 'switch-over', postcopyOutageCauses: [{ cause: 'guest-stalled', seconds: 0.1 }, { cause: 'unknown', seconds: 0.1 }] })).toBe('guest-stalled');
  });

  it('names a run clean without post-copy outages and with no blackout or the switch-over\'s own; else by its blackout', () => {
    expect(namedCause({ blackoutCause: null, postcopyOutageCauses: [] })).toBe('clean');
    expect(namedCause({ blackoutCause: 'switch-over', postcopyOutageCauses: [{ cause: 'unknown', seconds: 0.1 }] })).toBe('clean');
    expect(namedCause({ blackoutCause: 'announced-network-slow', postcopyOutageCauses: [] })).toBe('announced-network-slow');
  });

  it('tallies runs per injected cause and prints them as a markdown table, other named causes as extra columns', () => {
    const tallies = tallyCauses([
      { injected: 'clean', named: 'clean' },
      { injected: 'clean', named: 'unknown' },
      { injected: 'guest-stalled', named: 'guest-stalled' },
    ]);
    expect(tallies.find((t) => t.injected === 'clean')).toEqual({ injected: 'clean', runs: 2, right: 1, named: { clean: 1, unknown: 1 } });
    expect(confusionTable(tallies).split('\n')).toEqual([
      '| injected \\ named | clean | not-announced | announced-network-slow | guest-stalled | unknown | right |',
      '|---|---|---|---|---|---|---|',
      '| clean | 1 | 0 | 0 | 0 | 1 | 1/2 (50 %) |',
      '| not-announced | 0 | 0 | 0 | 0 | 0 | 0/0 (0 %) |',
      '| announced-network-slow | 0 | 0 | 0 | 0 | 0 | 0/0 (0 %) |',
      '| guest-stalled | 0 | 0 | 0 | 1 | 0 | 1/1 (100 %) |',
    ]);
  });

  it('runs N rounds of the four causes, each VM on its own address, and refuses more rounds than addresses', () => {
    const vms = outageCauses(2).vms;
    expect(vms.map((v) => v.labels.injected_cause)).toEqual(['clean', 'not-announced', 'announced-network-slow', 'guest-stalled', 'clean', 'not-announced', 'announced-network-slow', 'guest-stalled']);
    expect(new Set(vms.map((v) => v.pingAddress)).size).toBe(8);
    expect(() => outageCauses(38)).toThrow(/at most 37 rounds/);
  });
});
