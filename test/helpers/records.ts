import type { MigrationRecord } from '../../src/records/record.js';

export const fig = (value: number, evidence = 'test') => ({ value, evidence });

/** A minimal closed record of `vm` that ran from `startedAt` to `endedAt` (wall ms); overrides on top. */
export function recordEnded(vm: string, startedAt: number, endedAt: number, overrides: Partial<MigrationRecord> = {}): MigrationRecord {
  return {
    id: `${vm}@${startedAt}`,
    vm,
    labels: {},
    source: { host: 'hostA', monitor: 'hostA/unix:/a' },
    destination: { host: 'hostB', monitor: 'hostB/unix:/b' },
    result: 'completed',
    mode: 'precopy',
    startedAt: fig(startedAt),
    postcopyAt: null,
    stoppedAt: null,
    resumedAt: null,
    endedAt: fig(endedAt),
    durationSeconds: fig((endedAt - startedAt) / 1000),
    bytes: { transferred: fig(1), precopy: null, postcopy: null, downtime: null, disk: null },
    qemu: { downtimeMs: null, setupTimeMs: null, totalTimeMs: null, postcopyRequests: null, passes: null, passesBeforePostcopy: null, errorDesc: null },
    statuses: [],
    resumedAfterRestart: false,
    ...overrides,
  };
}
