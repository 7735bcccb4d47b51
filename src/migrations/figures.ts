/**
 * Turns a finished migration's state into its record: every figure with the evidence it came
 * from. Pure; the rules for each figure are documented where they are applied.
 */
import type { RamStats } from '../sources/qmp/types.js';
import { isPostcopyStatus, terminalResult } from './classify.js';
import type { Evidence, Figure, MigrationMode, MigrationRecord, MigrationResult } from './record.js';
import type { OpenMigration, Timed } from './tracker-state.js';

/** How a migration ended, as the tracker decided it. */
export interface Closing {
  result: MigrationResult;
  resultEvidence: Evidence;
  endedAt: Figure;
  /** Exporter's monotonic clock when the end was observed; null after a restart. */
  endMono: number | null;
  /** The tracker's own explanation when it had to decide (timeouts, a vanished source). */
  errorDesc: string | null;
}

export function buildRecord(vm: string, labels: Record<string, string>, m: OpenMigration, closing: Closing): MigrationRecord {
  const last = m.latest?.info ?? null;
  const ram = last?.ram;
  // Figures from the source's final reply are exact; from an earlier reply they are as of then.
  const qmp = (field: string): Evidence => `qmp:source query-migrate ${field}${m.finalReply ? '' : ' (last reply before the end)'}`;
  const fig = (value: number | undefined, field: string): Figure | null => (value === undefined ? null : { value, evidence: qmp(field) });

  const switched = m.postcopyAt !== null || (ram?.['postcopy-bytes'] ?? 0) > 0;
  const passesBeforePostcopy = switched ? passesBeforeSwitch(m) : null;
  return {
    id: m.id,
    vm,
    labels: { ...labels },
    source: { host: m.source.host, monitor: m.source.monitor },
    destination: m.destination ? { host: m.destination.host, monitor: m.destination.monitor } : null,
    result: closing.result,
    resultEvidence: closing.resultEvidence,
    mode: modeOf(switched, passesBeforePostcopy),
    startedAt: m.startedAt,
    postcopyAt: m.postcopyAt ? timedFigure(m.postcopyAt) : null,
    stoppedAt: m.stoppedAt === null ? null : { value: m.stoppedAt, evidence: 'qmp:source event STOP' },
    resumedAt: m.resumedAt === null ? null : { value: m.resumedAt, evidence: 'qmp:destination event RESUME' },
    endedAt: closing.endedAt,
    durationSeconds: duration(m, closing),
    bytes: { transferred: fig(ram?.transferred, 'ram.transferred'), ...byteSplit(m, ram, switched, qmp) },
    qemu: {
      downtimeMs: fig(last?.downtimeMs, 'downtime'),
      setupTimeMs: fig(last?.setupTimeMs, 'setup-time'),
      totalTimeMs: fig(last?.totalTimeMs, 'total-time'),
      postcopyRequests: fig(ram?.['postcopy-requests'], 'ram.postcopy-requests'),
      passes: passes(m, ram, qmp),
      passesBeforePostcopy,
      errorDesc: last?.errorDesc ?? closing.errorDesc,
    },
    statuses: [...m.marks].sort((a, b) => a.at - b.at).map(({ status, at, side }) => ({ status, at, side })),
    resumedAfterRestart: m.resumedAfterRestart,
  };
}

export function timedFigure(t: Timed): Figure {
  return { value: t.at, evidence: `qmp:${t.side} ${t.what}` };
}

/**
 * One rule: QEMU's own total-time from the source's final reply when there is one (QEMU times
 * the migration itself, independent of the poll interval and of exporter restarts); otherwise
 * the exporter's monotonic clock from the first to the last observation; otherwise, when the
 * exporter restarted in between and no final reply came, the wall clock from start to end.
 */
function duration(m: OpenMigration, closing: Closing): Figure {
  const total = m.latest?.info.totalTimeMs;
  if (m.finalReply && total !== undefined) return { value: total / 1000, evidence: 'qmp:source query-migrate total-time' };
  if (m.startMono !== null && closing.endMono !== null) {
    return { value: Math.max(0, closing.endMono - m.startMono) / 1000, evidence: 'exporter monotonic clock' };
  }
  return {
    value: Math.max(0, closing.endedAt.value - m.startedAt.value) / 1000,
    evidence: 'wall clock: endedAt - startedAt (exporter restarted during the migration)',
  };
}

/**
 * Pre-copy / post-copy / downtime bytes. QEMU >= 7.0 reports them; older QEMU does not, and the
 * split is derived from ram.transferred of the last pre-copy reply before the switch.
 */
function byteSplit(
  m: OpenMigration,
  ram: RamStats | undefined,
  switched: boolean,
  qmp: (field: string) => Evidence,
): Pick<MigrationRecord['bytes'], 'precopy' | 'postcopy' | 'downtime'> {
  const none = { precopy: null, postcopy: null, downtime: null };
  if (ram === undefined) return none;
  if (ram['precopy-bytes'] !== undefined) {
    const fig = (field: 'precopy-bytes' | 'postcopy-bytes' | 'downtime-bytes'): Figure | null => {
      const value = ram[field];
      return value === undefined ? null : { value, evidence: qmp(`ram.${field}`) };
    };
    return { precopy: fig('precopy-bytes'), postcopy: fig('postcopy-bytes'), downtime: fig('downtime-bytes') };
  }
  const transferred = ram.transferred;
  if (transferred === undefined) return none;
  if (!switched) {
    return {
      precopy: { value: transferred, evidence: 'derived: all of ram.transferred, no switch to post-copy (QEMU < 7.0 reports no precopy-bytes)' },
      postcopy: { value: 0, evidence: 'derived: no switch to post-copy' },
      downtime: null,
    };
  }
  const atSwitch = m.lastPrecopyRam?.transferred ?? null;
  if (atSwitch === null) return none;
  return {
    precopy: { value: atSwitch, evidence: 'derived: ram.transferred of the last pre-copy reply before the switch (QEMU < 7.0 reports no precopy-bytes)' },
    postcopy: { value: Math.max(0, transferred - atSwitch), evidence: 'derived: ram.transferred minus the pre-copy bytes' },
    downtime: null,
  };
}

function passes(m: OpenMigration, ram: RamStats | undefined, qmp: (field: string) => Evidence): Figure | null {
  const synced = ram?.['dirty-sync-count'];
  if (synced !== undefined && (m.maxPass === null || synced >= m.maxPass)) return { value: synced, evidence: qmp('ram.dirty-sync-count') };
  if (m.maxPass !== null) return { value: m.maxPass, evidence: 'qmp:source event MIGRATION_PASS (highest)' };
  return null;
}

/**
 * Dirty-bitmap syncs before the switch to post-copy. The first sync is at setup, the second at
 * the end of the first full pass; QEMU syncs once more at the switch itself and never during
 * post-copy (the 7.2 samples: MIGRATION_PASS 3 right after postcopy-active, dirty-sync-count 3
 * from then to the end).
 */
function passesBeforeSwitch(m: OpenMigration): Figure | null {
  if (m.passesAtSwitchover !== null) {
    return { value: m.passesAtSwitchover, evidence: 'qmp:source event MIGRATION_PASS (highest before the switch-over)' };
  }
  const last = m.latest?.info;
  const lastIsAfterSwitch = last !== undefined && (isPostcopyStatus(last.status) || terminalResult(last.status) !== null);
  const afterSwitch = m.firstPostcopySyncCount ?? (lastIsAfterSwitch ? last.ram?.['dirty-sync-count'] : undefined) ?? null;
  if (afterSwitch !== null) {
    return {
      value: Math.max(0, afterSwitch - 1),
      evidence: 'derived: ram.dirty-sync-count of the first post-copy reply minus the sync QEMU makes at the switch',
    };
  }
  const before = m.lastPrecopyRam?.dirtySyncCount ?? null;
  if (before !== null) return { value: before, evidence: 'qmp:source query-migrate ram.dirty-sync-count of the last pre-copy reply (lower bound)' };
  return null;
}

/** precopy: never switched; postcopy: switched before the first full pass ended; hybrid: after. */
function modeOf(switched: boolean, passesBeforePostcopy: Figure | null): MigrationMode {
  if (!switched) return 'precopy';
  return (passesBeforePostcopy?.value ?? 0) >= 2 ? 'hybrid' : 'postcopy';
}
