/**
 * nova-compute live-migration events from one log line (libvirt driver and compute manager),
 * for every wording in signals.md §1.1–1.2 (Icehouse 2014.1 to 2026.1 and master). Pure: text in,
 * typed event out; a line that is not an event is `other`, a traceback line `continuation`, a line
 * outside the oslo.log layout `unparseable`. Never throws.
 */
import { parseOsloLine, type OsloLevel } from './oslo-line.js';
import type { TimeZone } from '../../config/timezone.js';

export const LIFECYCLE_STATES = ['Started', 'Stopped', 'Paused', 'Resumed', 'Suspended', 'Postcopy started', 'Migration completed'] as const;
export type LifecycleState = (typeof LIFECYCLE_STATES)[number];

export interface ByteProgress {
  percentRemaining: number;
  processed: number;
  remaining: number;
  total: number;
}

export type NovaEvent =
  /** Source: the monitor thread starts (Kilo+, DEBUG). */
  | { kind: 'monitoring-started' }
  /** Source: the destination is prepared (Rocky+). */
  | { kind: 'pre-live-migration'; seconds: number; destination: string }
  /** Source: `Migration running for …`, Kilo+ (memory only before Train). */
  | { kind: 'progress'; elapsedSeconds: number; memory: ByteProgress; disk?: ByteProgress }
  /** Source: a downtime step (Liberty+). */
  | { kind: 'downtime-step'; downtimeMs: number; afterSeconds: number }
  /** Source: completion timeout reached (Liberty+). */
  | { kind: 'completion-timeout'; afterSeconds: number }
  /** Source: no progress for that long (Liberty–Rocky). */
  | { kind: 'progress-timeout'; afterSeconds: number }
  /** Source: migrate_start_postcopy returned (Newton+). */
  | { kind: 'postcopy-switch' }
  | { kind: 'postcopy-switch-failed'; reason: string }
  /** Source: the libvirt job completed (end of the data copy). */
  | { kind: 'completed' }
  | { kind: 'aborted' }
  | { kind: 'cancelled' }
  /** Source: the migrate API raised (`Live Migration failure: …`). */
  | { kind: 'failure'; reason: string }
  /** Source: the compute manager saw the driver fail, or the destination's preparation failed. */
  | { kind: 'manager-failure'; destination?: string }
  | { kind: 'monitoring-done' }
  /** Source: `_post_live_migration() is started..` */
  | { kind: 'post-migration-started' }
  /** Destination: `Post operation of migration started`. */
  | { kind: 'post-operation-started' }
  | { kind: 'post-operation-failed'; destination?: string }
  /** Source: `Migrating instance to HOST finished successfully.` */
  | { kind: 'success'; destination: string }
  | { kind: 'lifecycle'; state: LifecycleState };

export type NovaEventKind = NovaEvent['kind'];

/** Every event kind, the bounded `event` label of livemig_log_lines_matched_total. */
export const NOVA_EVENT_KINDS: readonly NovaEventKind[] = [
  'monitoring-started', 'pre-live-migration', 'progress', 'downtime-step', 'completion-timeout',
  'progress-timeout', 'postcopy-switch', 'postcopy-switch-failed', 'completed', 'aborted',
  'cancelled', 'failure', 'manager-failure', 'monitoring-done', 'post-migration-started',
  'post-operation-started', 'post-operation-failed', 'success', 'lifecycle',
];

export interface NovaLogEvent {
  kind: 'event';
  timeMs: number;
  level: OsloLevel;
  logger: string;
  instanceUuid?: string;
  requestId?: string;
  event: NovaEvent;
}

export type NovaParse =
  | NovaLogEvent
  | { kind: 'other'; timeMs: number }
  | { kind: 'continuation'; timeMs: number }
  | { kind: 'unparseable'; reason: string };

const EXACT: Readonly<Record<string, NovaEvent>> = {
  'Starting monitoring of live migration': { kind: 'monitoring-started' },
  'Switching to post-copy migration mode': { kind: 'postcopy-switch' },
  'Migration operation has completed': { kind: 'completed' },
  'Migration operation has aborted': { kind: 'aborted' },
  'Migration operation was cancelled': { kind: 'cancelled' },
  'Live migration monitoring is all done': { kind: 'monitoring-done' },
  '_post_live_migration() is started..': { kind: 'post-migration-started' },
  'Post operation of migration started': { kind: 'post-operation-started' },
  'Live migration failed.': { kind: 'manager-failure' },
  'Unexpected error during post live migration at destination host.': { kind: 'post-operation-failed' },
};

const UUID = String.raw`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`;
const BYTES = String.raw`\(bytes processed=(\d+), remaining=(\d+), total=(\d+)\)`;
const PROGRESS = new RegExp(
  String.raw`^Migration running for (\d+) secs, memory (\d+)% remaining;? ${BYTES}(?:; disk (\d+)% remaining ${BYTES}\.)?`,
);
const DOWNTIME = /^Increasing downtime to (\d+) ?ms after (\d+) sec elapsed time/;
const PRE_LIVE = /^Took (\d+(?:\.\d+)?) seconds for pre_live_migration on destination host (.+?)\.?$/;
const NOT_COMPLETED = /^Live migration not completed after (\d+) sec/;
const STUCK = /^Live migration stuck for (\d+) sec/;
const SUCCESS = /^Migrating instance to (.+) finished successfully\.?$/;
const LIFECYCLE = /^VM (Started|Stopped|Paused|Resumed|Suspended|Postcopy started|Migration completed) \(Lifecycle Event\)/;
const ICEHOUSE_LIFECYCLE = new RegExp(String.raw`^Lifecycle event (\d+) on VM (${UUID})`);
const ICEHOUSE_STATES: readonly LifecycleState[] = ['Started', 'Stopped', 'Paused', 'Resumed'];
const PRE_FAILED = /^Pre live migration failed at (.+)$/;
const POST_FAILED = /^Post live migration at destination (.+) failed$/;

export function parseNovaLine(text: string, zone: TimeZone): NovaParse {
  const line = parseOsloLine(text, zone);
  if (line.kind !== 'line') return line;
  const matched = matchMessage(line.message);
  if (!matched) return { kind: 'other', timeMs: line.timeMs };
  const out: NovaLogEvent = { kind: 'event', timeMs: line.timeMs, level: line.level, logger: line.logger, event: matched.event };
  const uuid = line.instanceUuid ?? matched.uuid;
  if (uuid !== undefined) out.instanceUuid = uuid;
  if (line.requestId !== undefined) out.requestId = line.requestId;
  return out;
}

/** The event a message (without layout prefix) names, if any; exported for the tests. */
export function matchMessage(message: string): { event: NovaEvent; uuid?: string } | undefined {
  const exact = EXACT[message.trimEnd()];
  if (exact) return { event: { ...exact } };
  let m: RegExpExecArray | null;
  switch (message.charCodeAt(0)) {
    case 77: // M
      if ((m = PROGRESS.exec(message))) {
        const event: NovaEvent = {
          kind: 'progress',
          elapsedSeconds: Number(m[1]),
          memory: bytes(m[2], m[3], m[4], m[5]),
        };
        if (m[6] !== undefined) event.disk = bytes(m[6], m[7], m[8], m[9]);
        return { event };
      }
      if ((m = SUCCESS.exec(message))) return { event: { kind: 'success', destination: m[1] ?? '' } };
      return undefined;
    case 73: // I
      if ((m = DOWNTIME.exec(message))) return { event: { kind: 'downtime-step', downtimeMs: Number(m[1]), afterSeconds: Number(m[2]) } };
      return undefined;
    case 84: // T
      if ((m = PRE_LIVE.exec(message))) return { event: { kind: 'pre-live-migration', seconds: Number(m[1]), destination: m[2] ?? '' } };
      return undefined;
    case 76: // L
      if (message.startsWith('Live Migration failure: ')) return { event: { kind: 'failure', reason: message.slice(24) } };
      if ((m = NOT_COMPLETED.exec(message))) return { event: { kind: 'completion-timeout', afterSeconds: Number(m[1]) } };
      if ((m = STUCK.exec(message))) return { event: { kind: 'progress-timeout', afterSeconds: Number(m[1]) } };
      if ((m = ICEHOUSE_LIFECYCLE.exec(message))) {
        const state = ICEHOUSE_STATES[Number(m[1])];
        return state ? { event: { kind: 'lifecycle', state }, uuid: (m[2] ?? '').toLowerCase() } : undefined;
      }
      return undefined;
    case 86: // V
      if ((m = LIFECYCLE.exec(message))) return { event: { kind: 'lifecycle', state: m[1] as LifecycleState } };
      return undefined;
    case 70: // F
      if (message.startsWith('Failed to switch to post-copy live migration: ')) {
        return { event: { kind: 'postcopy-switch-failed', reason: message.slice(46) } };
      }
      return undefined;
    case 80: // P
      if ((m = PRE_FAILED.exec(message))) return { event: { kind: 'manager-failure', destination: m[1] ?? '' } };
      if ((m = POST_FAILED.exec(message))) return { event: { kind: 'post-operation-failed', destination: m[1] ?? '' } };
      return undefined;
    default:
      return undefined;
  }
}

function bytes(percent?: string, processed?: string, remaining?: string, total?: string): ByteProgress {
  return { percentRemaining: Number(percent), processed: Number(processed), remaining: Number(remaining), total: Number(total) };
}
