/**
 * A migration record from nova's log lines alone (no QEMU monitor reported the migration). Times
 * are the log lines' time stamps; the bytes are the last progress line's (memory plus disk
 * processed: a lower bound, the copy went on after that line); QEMU's figures stay null. The
 * record's `source`/`destination` monitor is `nova-compute log`, and each figure's evidence names
 * the line it came from.
 */
import type { Figure, MigrationMode, MigrationRecord, NovaFigures } from '../../records/record.js';

export const NOVA_MONITOR = 'nova-compute log';

export function novaRecord(vm: string, labels: Record<string, string>, nova: NovaFigures): MigrationRecord | null {
  const startedAt = nova.startedAt;
  if (!startedAt || !nova.sourceHost) return null;
  // Comparable with QEMU's end (the job completed); the success line comes after the
  // destination's post-processing.
  const endedAt: Figure | null = nova.completedAt && nova.result === 'completed' ? nova.completedAt : nova.endedAt;
  const destinationHost = nova.destinationHost ?? nova.destinationName;
  const p = nova.progress;
  const transferred: Figure | null = p
    ? {
        value: p.memoryProcessed + (p.diskProcessed ?? 0),
        evidence: `${p.at.evidence} (memory${p.diskProcessed !== null ? ' + disk' : ''} bytes processed; a lower bound)`,
      }
    : null;
  return {
    id: `${vm}@${startedAt.value}`,
    vm,
    labels: { ...labels },
    source: { host: nova.sourceHost, monitor: NOVA_MONITOR },
    destination: destinationHost ? { host: destinationHost, monitor: NOVA_MONITOR } : null,
    result: nova.result ?? 'failed',
    resultEvidence: nova.resultEvidence ?? 'nova: no line told the result',
    mode: modeOf(nova),
    startedAt,
    postcopyAt: nova.postcopyAt,
    stoppedAt: null,
    resumedAt: nova.resumedAt,
    endedAt,
    durationSeconds: endedAt
      ? { value: Math.max(0, endedAt.value - startedAt.value) / 1000, evidence: 'nova: log time of the end line minus log time of the start line' }
      : null,
    bytes: { transferred, precopy: null, postcopy: null, downtime: null, disk: diskOf(nova) },
    qemu: {
      downtimeMs: null,
      setupTimeMs: null,
      totalTimeMs: null,
      postcopyRequests: null,
      passes: null,
      passesBeforePostcopy: null,
      errorDesc: nova.failure,
    },
    statuses: [],
    resumedAfterRestart: false,
    nova,
  };
}

/**
 * Pre-copy without a switch. With one: hybrid when a progress line before it shows at least the
 * guest's memory processed (one full pre-copy pass, as the tracker defines hybrid). Without such a
 * line, still hybrid: nova's own switch (should_switch_to_postcopy) waits for memory_iteration > 1,
 * a full pass. The exception is a force-complete that the lines show came first (the completion
 * timeout, whose action may be force_complete): it may switch before a pass is done, so post-copy.
 */
function modeOf(nova: NovaFigures): MigrationMode {
  if (!nova.postcopyAt) return 'precopy';
  const total = nova.progress?.memoryTotal ?? 0;
  const before = nova.memoryProcessedBeforePostcopy;
  if (before !== null && total > 0 && before >= total) return 'hybrid';
  const forcedFirst = nova.completionTimeoutAt !== null && nova.completionTimeoutAt.value <= nova.postcopyAt.value;
  return forcedFirst ? 'postcopy' : 'hybrid';
}

/** Disk bytes of a block migration from the last progress line (a lower bound, as its memory bytes). */
function diskOf(nova: NovaFigures): Figure | null {
  const p = nova.progress;
  if (!p || p.diskProcessed === null) return null;
  return { value: p.diskProcessed, evidence: `${p.at.evidence} (disk bytes processed; a lower bound)` };
}
