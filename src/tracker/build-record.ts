/**
 * Turns a finished migration's state into its record: every figure with the evidence it came
 * from. Pure; the rules for each figure are documented where they are applied.
 */
import { figureEvidence } from '../qemu/libvirt-fields.js';
import type { MigrationInfo, RamField } from '../qemu/types.js';
import { evidence } from './marks.js';
import { isLibvirtMonitor } from '../observations.js';
import type { Evidence, Figure, MigrationMode, MigrationRecord } from '../records/record.js';
import type { OpenMigration, Timed } from '../records/tracker-snapshot.js';
import { type MigrationResult, isPostcopyStatus, terminalResult } from '../qemu/status.js';

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
  const final = m.finalReply ? (m.latest?.info ?? null) : null;
  // ram figures come as one set: from the final reply when it has them ('failed' and
  // 'cancelled' replies do not), else from the last reply before the end.
  const full = final?.ram ? final : (m.latestFull?.info ?? null);
  const suffix = (info: MigrationInfo | null): string => (info !== null && info === final ? '' : ' (last reply before the end)');
  const ramEvidence = (field: string): Evidence => `${figureEvidence(full?.origin, field, true)}${suffix(full)}`;
  const ram = full?.ram;
  const ramFigure = (field: RamField): Figure | null => {
    const value = ram?.[field];
    return value === undefined ? null : { value, evidence: ramEvidence(field) };
  };
  /** A top-level figure of the final reply, else of the last full reply before the end. */
  const replyFigure = (read: (info: MigrationInfo) => number | undefined, field: string): Figure | null => {
    for (const info of [final, full]) {
      const value = info ? read(info) : undefined;
      if (value !== undefined) return { value, evidence: `${figureEvidence(info?.origin, field, false)}${suffix(info)}` };
    }
    return null;
  };

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
    mode: modeOf(switched, passesBeforePostcopy, !switched && !m.finalReply && m.resumedAfterRestart && m.source.gone !== null),
    startedAt: m.startedAt,
    postcopyAt: m.postcopyAt ? timedFigure(m.postcopyAt) : null,
    stoppedAt: m.stoppedAt === null ? null : { value: m.stoppedAt, evidence: m.stoppedEvidence ?? 'qmp:source event STOP' },
    resumedAt: m.resumedAt === null ? null : { value: m.resumedAt, evidence: m.resumedEvidence ?? (m.resumedVia === 'poll' ? 'qmp:destination query-status running (poll time)' : 'qmp:destination event RESUME') },
    endedAt: closing.endedAt,
    durationSeconds: duration(m, final, closing),
    bytes: { transferred: ramFigure('transferred'), ...byteSplit(m, full, switched, ramFigure, ramEvidence), disk: diskFigure(full) },
    qemu: {
      downtimeMs: replyFigure((i) => i.downtimeMs, 'downtime'),
      setupTimeMs: replyFigure((i) => i.setupTimeMs, 'setup-time'),
      totalTimeMs: replyFigure((i) => i.totalTimeMs, 'total-time'),
      postcopyRequests: ramFigure('postcopy-requests'),
      passes: passes(m, ramFigure('dirty-sync-count')),
      passesBeforePostcopy,
      postcopyBlocktimeMs: m.destinationBlocktimeMs === null ? null : { value: m.destinationBlocktimeMs, evidence: 'qmp:destination query-migrate postcopy-blocktime' },
      errorDesc: final?.errorDesc ?? closing.errorDesc,
    },
    statuses: [...m.marks].sort((a, b) => a.at - b.at).map(({ status, at, side }) => ({ status, at, side })),
    resumedAfterRestart: m.resumedAfterRestart,
  };
}

/** Disk bytes of a block migration, which only libvirt reports (disk_processed; 0 without one). */
function diskFigure(info: MigrationInfo | null): Figure | null {
  const processed = info?.disk?.processed;
  if (processed === undefined || (processed === 0 && !info?.disk?.total)) return null;
  return { value: processed, evidence: 'libvirt:source job stats disk_processed' };
}

export function timedFigure(t: Timed): Figure {
  return { value: t.at, evidence: evidence(t.origin, t.side, t.what) };
}

/**
 * One rule: QEMU's own total-time from the source's final reply when it has one (QEMU times
 * the migration itself, independent of the poll interval and of exporter restarts); otherwise
 * the exporter's monotonic clock from the first to the last observation; otherwise, when the
 * exporter restarted in between and no final reply came, the wall clock from start to end.
 */
function duration(m: OpenMigration, final: MigrationInfo | null, closing: Closing): Figure {
  const total = final?.totalTimeMs;
  if (total !== undefined) return { value: total / 1000, evidence: figureEvidence(final?.origin, 'total-time', false) };
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
  full: MigrationInfo | null,
  switched: boolean,
  ramFigure: (field: RamField) => Figure | null,
  ramEvidence: (field: string) => Evidence,
): Pick<MigrationRecord['bytes'], 'precopy' | 'postcopy' | 'downtime'> {
  const none = { precopy: null, postcopy: null, downtime: null };
  const ram = full?.ram;
  if (ram?.['precopy-bytes'] !== undefined) {
    return { precopy: ramFigure('precopy-bytes'), postcopy: ramFigure('postcopy-bytes'), downtime: ramFigure('downtime-bytes') };
  }
  const transferred = ram?.transferred;
  if (transferred === undefined) return none;
  if (!switched) {
    return {
      precopy: { value: transferred, evidence: `derived: all of ${ramEvidence('transferred')}, no switch to post-copy (${noSplit(full)})` },
      postcopy: { value: 0, evidence: 'derived: no switch to post-copy' },
      downtime: null,
    };
  }
  const atSwitch = m.lastPrecopyRam?.transferred ?? null;
  if (atSwitch === null) return none;
  return {
    precopy: {
      value: atSwitch,
      evidence:
        full?.origin === 'libvirt'
          ? `derived: memory_processed of the last pre-copy job stats before the switch (${noSplit(full)})`
          : `derived: ram.transferred of the last pre-copy reply before the switch (${noSplit(full)})`,
    },
    postcopy: { value: Math.max(0, transferred - atSwitch), evidence: `derived: ${ramEvidence('transferred')} minus the pre-copy bytes` },
    downtime: null,
  };
}

/** What told the passes: QEMU's MIGRATION_PASS events, or libvirt's migration-iteration events (which relay them). */
function passEvents(m: OpenMigration): string {
  return isLibvirtMonitor(m.source.monitor) ? 'libvirt:source migration-iteration events' : 'qmp:source event MIGRATION_PASS';
}

function noSplit(info: MigrationInfo | null): string {
  return info?.origin === 'libvirt' ? "libvirt's job statistics have no pre-copy/post-copy split" : 'QEMU < 7.0 reports no precopy-bytes';
}

function passes(m: OpenMigration, synced: Figure | null): Figure | null {
  if (synced !== null && (m.maxPass === null || synced.value >= m.maxPass)) return synced;
  if (m.maxPass !== null) return { value: m.maxPass, evidence: `${passEvents(m)} (highest)` };
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
    return { value: m.passesAtSwitchover, evidence: `${passEvents(m)} (highest before the switch-over)` };
  }
  const last = m.latest?.info;
  // Post-copy makes no sync after the switch's own, so the final reply's count is exact; a reply
  // polled right at the switch (on its event) may not have the switch's sync yet.
  const finalCount = m.finalReply && last !== undefined && terminalResult(last.status) !== null ? last.ram?.['dirty-sync-count'] : undefined;
  if (finalCount !== undefined) {
    return { value: Math.max(0, finalCount - 1), evidence: 'derived: ram.dirty-sync-count of the final reply minus the sync QEMU makes at the switch' };
  }
  const lastIsAfterSwitch = last !== undefined && isPostcopyStatus(last.status);
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

/**
 * precopy: never switched; postcopy: switched before the first full pass ended; hybrid: after.
 * unknown: no switch was seen, but the exporter was down for part of the migration and its source
 * was gone before it could say (its final reply has the post-copy figures; a destination without
 * the postcopy-blocktime capability says only "completed").
 */
function modeOf(switched: boolean, passesBeforePostcopy: Figure | null, unobserved: boolean): MigrationMode {
  if (unobserved) return 'unknown';
  if (!switched) return 'precopy';
  return (passesBeforePostcopy?.value ?? 0) >= 2 ? 'hybrid' : 'postcopy';
}
