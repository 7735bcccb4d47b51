/**
 * nova-compute's log lines for a live migration, in nova's exact format (oslo.log's default
 * context and default formats; message strings of nova's libvirt driver, migration module and
 * compute manager as of nova 20.0.0 Train .. 33.0.0 2026.1; ../shared/reference/signals.md
 * section 1). The lab writes them on each host's log file as nova would, at INFO and above
 * (nova's default `debug = False`). Pure: no clock, no I/O.
 */

export type NovaLevel = 'INFO' | 'WARNING' | 'ERROR';

/** The request context of the live-migration request: rendered `[None req-ID USER PROJECT - - default default]`. */
export interface NovaRequestContext {
  requestId: string;
  userId: string;
  projectId: string;
}

export interface NovaLine {
  /** Wall time, ms since the epoch; written in UTC (the lab's hosts run in UTC). */
  atMs: number;
  /** nova-compute's process id on that host. */
  pid: number;
  level: NovaLevel;
  logger: NovaLogger;
  /** null: the line is logged outside a request (lifecycle events): `[-]`. */
  context: NovaRequestContext | null;
  instanceUuid: string | null;
  message: string;
}

export type NovaLogger = 'nova.compute.manager' | 'nova.virt.libvirt.driver' | 'nova.virt.libvirt.migration';

/** `%Y-%m-%d %H:%M:%S` plus `.%(msecs)03d`, in UTC. */
export function novaTimestamp(atMs: number): string {
  const date = new Date(Math.floor(atMs));
  if (Number.isNaN(date.getTime())) throw new RangeError(`time ${atMs} is not a valid time`);
  const iso = date.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${iso.slice(20, 23)}`;
}

/** One line, without the newline. */
export function formatNovaLine(line: NovaLine): string {
  const context = line.context
    ? `[None ${line.context.requestId} ${line.context.userId} ${line.context.projectId} - - default default]`
    : '[-]';
  const instance = line.instanceUuid ? `[instance: ${line.instanceUuid}] ` : '';
  if (/[\r\n]/.test(line.message)) throw new RangeError('a nova log message is one line');
  return `${novaTimestamp(line.atMs)} ${line.pid} ${line.level} ${line.logger} ${context} ${instance}${line.message}`;
}

/** The message part of each line the lab writes, with its level and logger. */
export interface NovaMessage {
  level: NovaLevel;
  logger: NovaLogger;
  message: string;
  /** Lifecycle lines are logged outside the request context. */
  withContext: boolean;
}

const info = (logger: NovaLogger, message: string, withContext = true): NovaMessage => ({ level: 'INFO', logger, message, withContext });

export const novaMessages = {
  /** Source, once the destination is prepared (nova >= 18.0.0 Rocky). */
  preLiveMigrationTook: (seconds: number, destinationHost: string): NovaMessage =>
    info('nova.compute.manager', `Took ${seconds.toFixed(2)} seconds for pre_live_migration on destination host ${destinationHost}.`),
  /** Source, first poll of the monitor (downtime step 0). */
  increasingDowntime: (downtimeMs: number, waitSeconds: number): NovaMessage =>
    info('nova.virt.libvirt.migration', `Increasing downtime to ${Math.trunc(downtimeMs)} ms after ${Math.trunc(waitSeconds)} sec elapsed time`),
  /** Source, the progress line: INFO at the first poll and every 30 s (nova <= 33.0.0). */
  migrationRunning: (secs: number, memory: { processed: number; remaining: number; total: number }): NovaMessage => {
    const remainingPercent = memory.total === 0 ? 100 : Math.round((memory.remaining * 100) / memory.total);
    return info(
      'nova.virt.libvirt.driver',
      `Migration running for ${Math.trunc(secs)} secs, memory ${remainingPercent}% remaining ` +
        `(bytes processed=${Math.trunc(memory.processed)}, remaining=${Math.trunc(memory.remaining)}, total=${Math.trunc(memory.total)}); ` +
        'disk 100% remaining (bytes processed=0, remaining=0, total=0).',
    );
  },
  switchingToPostcopy: (): NovaMessage => info('nova.virt.libvirt.migration', 'Switching to post-copy migration mode'),
  lifecycle: (state: 'Started' | 'Stopped' | 'Paused' | 'Resumed' | 'Postcopy started' | 'Migration completed'): NovaMessage =>
    info('nova.compute.manager', `VM ${state} (Lifecycle Event)`, false),
  operationCompleted: (): NovaMessage => info('nova.virt.libvirt.driver', 'Migration operation has completed'),
  postLiveMigrationStarted: (): NovaMessage => info('nova.compute.manager', '_post_live_migration() is started..'),
  /** Destination. */
  postOperationStarted: (): NovaMessage => info('nova.compute.manager', 'Post operation of migration started'),
  finishedSuccessfully: (destinationHost: string): NovaMessage =>
    info('nova.compute.manager', `Migrating instance to ${destinationHost} finished successfully.`),
  liveMigrationFailure: (reason: string): NovaMessage => ({
    level: 'ERROR', logger: 'nova.virt.libvirt.driver', message: `Live Migration failure: ${reason.replace(/[\r\n]+/g, ' ')}`, withContext: true,
  }),
  operationAborted: (): NovaMessage => ({ level: 'ERROR', logger: 'nova.virt.libvirt.driver', message: 'Migration operation has aborted', withContext: true }),
  operationCancelled: (): NovaMessage => ({ level: 'WARNING', logger: 'nova.virt.libvirt.driver', message: 'Migration operation was cancelled', withContext: true }),
} as const;

/** A message as a full line for one host's log. */
export function novaLine(message: NovaMessage, at: { atMs: number; pid: number; context: NovaRequestContext; instanceUuid: string }): string {
  return formatNovaLine({
    atMs: at.atMs,
    pid: at.pid,
    level: message.level,
    logger: message.logger,
    context: message.withContext ? at.context : null,
    instanceUuid: at.instanceUuid,
    message: message.message,
  });
}
