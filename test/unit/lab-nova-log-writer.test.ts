import { describe, expect, it } from 'vitest';
import { formatNovaLine, novaLine, novaMessages, novaTimestamp, type NovaRequestContext } from '../../src/lab/nova-log-writer.js';
import { parseNovaLine } from '../../src/sources/logs/nova-parse.js';
import { parseTimeZone } from '../../src/config/timezone.js';

/**
 * nova's own format strings (../shared/reference/signals.md §1.0 and §1.1, read from
 * openstack/nova and oslo.log), rendered here with Python's %-formatting rules: the lab's lines
 * must be exactly what nova would write.
 */
const NOVA_FORMATS = {
  preLive: 'Took %0.2f seconds for pre_live_migration on destination host %s.',
  downtime: 'Increasing downtime to %(downtime)d ms after %(waittime)d sec elapsed time',
  progress:
    'Migration running for %(secs)d secs, memory %(remaining)d%% remaining (bytes processed=%(processed_memory)d, remaining=%(remaining_memory)d, total=%(total_memory)d); disk %(disk_remaining)d%% remaining (bytes processed=%(processed_disk)d, remaining=%(remaining_disk)d, total=%(total_disk)d).',
  switch: 'Switching to post-copy migration mode',
  lifecycle: 'VM %(state)s (Lifecycle Event)',
  completed: 'Migration operation has completed',
  postStarted: '_post_live_migration() is started..',
  postOperation: 'Post operation of migration started',
  success: 'Migrating instance to %s finished successfully.',
  failure: 'Live Migration failure: %s',
  aborted: 'Migration operation has aborted',
  cancelled: 'Migration operation was cancelled',
  contextFormat: '%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [%(global_request_id)s %(request_id)s %(user_identity)s] %(instance)s%(message)s',
  defaultFormat: '%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [-] %(instance)s%(message)s',
  userIdentity: '%(user)s %(project)s %(domain)s %(system_scope)s %(user_domain)s %(project_domain)s',
  instance: '[instance: %(uuid)s] ',
};

/** Python's `%` operator for the conversions nova uses: %s, %d, %0.2f, %03d, %%, by name or position. */
function pyFormat(format: string, args: Record<string, unknown> | unknown[]): string {
  let position = 0;
  return format.replace(/%(?:\((\w+)\))?(0?\d*)(?:\.(\d+))?([sdf%])/g, (_m, name: string | undefined, width: string, precision: string | undefined, conv: string) => {
    if (conv === '%') return '%';
    const value = Array.isArray(args) ? args[position++] : args[name as string];
    let text: string;
    if (conv === 'd') text = String(Math.trunc(Number(value)));
    else if (conv === 'f') text = Number(value).toFixed(precision === undefined ? 6 : Number(precision));
    else text = value === null ? 'None' : String(value);
    return width ? text.padStart(Number(width), width.startsWith('0') ? '0' : ' ') : text;
  });
}

const CONTEXT: NovaRequestContext = { requestId: 'req-6f0e2a1b-3c4d-4e5f-8a9b-0c1d2e3f4a5b', userId: '8f3e9a7c2b1d4e6f8a9b0c1d2e3f4a5b', projectId: '4a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d' };
const UUID = '0b5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f';
const AT = Date.UTC(2026, 2, 10, 12, 34, 56, 789);
const PID = 12345;

function expectedLine(level: string, logger: string, message: string, withContext: boolean): string {
  const common = { asctime: '2026-03-10 12:34:56', msecs: 789, process: PID, levelname: level, name: logger, instance: pyFormat(NOVA_FORMATS.instance, { uuid: UUID }), message };
  if (!withContext) return pyFormat(NOVA_FORMATS.defaultFormat, common);
  const userIdentity = pyFormat(NOVA_FORMATS.userIdentity, { user: CONTEXT.userId, project: CONTEXT.projectId, domain: '-', system_scope: '-', user_domain: 'default', project_domain: 'default' });
  return pyFormat(NOVA_FORMATS.contextFormat, { ...common, global_request_id: null, request_id: CONTEXT.requestId, user_identity: userIdentity });
}

const at = { atMs: AT, pid: PID, context: CONTEXT, instanceUuid: UUID };

describe('nova log writer: lines as nova formats them', () => {
  const progress = { processed: 2147483648, remaining: 1932735283, total: 4294967296 };
  const cases: [string, ReturnType<(typeof novaMessages)[keyof typeof novaMessages]>, string, string, string, boolean][] = [
    ['pre_live_migration', novaMessages.preLiveMigrationTook(1.5, 'dst'), 'INFO', 'nova.compute.manager', pyFormat(NOVA_FORMATS.preLive, [1.5, 'dst']), true],
    ['downtime step', novaMessages.increasingDowntime(50, 0), 'INFO', 'nova.virt.libvirt.migration', pyFormat(NOVA_FORMATS.downtime, { downtime: 50, waittime: 0 }), true],
    [
      'progress',
      novaMessages.migrationRunning(30.7, progress),
      'INFO',
      'nova.virt.libvirt.driver',
      pyFormat(NOVA_FORMATS.progress, { secs: 30, remaining: 45, processed_memory: progress.processed, remaining_memory: progress.remaining, total_memory: progress.total, disk_remaining: 100, processed_disk: 0, remaining_disk: 0, total_disk: 0 }),
      true,
    ],
    ['post-copy switch', novaMessages.switchingToPostcopy(), 'INFO', 'nova.virt.libvirt.migration', NOVA_FORMATS.switch, true],
    ['lifecycle', novaMessages.lifecycle('Postcopy started'), 'INFO', 'nova.compute.manager', pyFormat(NOVA_FORMATS.lifecycle, { state: 'Postcopy started' }), false],
    ['lifecycle resumed', novaMessages.lifecycle('Resumed'), 'INFO', 'nova.compute.manager', pyFormat(NOVA_FORMATS.lifecycle, { state: 'Resumed' }), false],
    ['completed', novaMessages.operationCompleted(), 'INFO', 'nova.virt.libvirt.driver', NOVA_FORMATS.completed, true],
    ['post started', novaMessages.postLiveMigrationStarted(), 'INFO', 'nova.compute.manager', NOVA_FORMATS.postStarted, true],
    ['post operation (destination)', novaMessages.postOperationStarted(), 'INFO', 'nova.compute.manager', NOVA_FORMATS.postOperation, true],
    ['success', novaMessages.finishedSuccessfully('dst'), 'INFO', 'nova.compute.manager', pyFormat(NOVA_FORMATS.success, ['dst']), true],
    ['failure', novaMessages.liveMigrationFailure('Unable to write to socket: Connection reset by peer'), 'ERROR', 'nova.virt.libvirt.driver', pyFormat(NOVA_FORMATS.failure, ['Unable to write to socket: Connection reset by peer']), true],
    ['aborted', novaMessages.operationAborted(), 'ERROR', 'nova.virt.libvirt.driver', NOVA_FORMATS.aborted, true],
    ['cancelled', novaMessages.operationCancelled(), 'WARNING', 'nova.virt.libvirt.driver', NOVA_FORMATS.cancelled, true],
  ];

  it.each(cases)('%s', (_name, message, level, logger, text, withContext) => {
    expect(novaLine(message, at)).toBe(expectedLine(level, logger, text, withContext));
  });

  it('rounds the memory percentage as nova does, and says 100% for a total of 0', () => {
    expect(novaMessages.migrationRunning(0, { processed: 0, remaining: 0, total: 0 }).message).toContain('memory 100% remaining');
    expect(novaMessages.migrationRunning(0, { processed: 1, remaining: 5, total: 1000 }).message).toContain('memory 1% remaining');
  });

  it('writes UTC time stamps with milliseconds', () => {
    expect(novaTimestamp(Date.UTC(2026, 0, 2, 3, 4, 5, 6))).toBe('2026-01-02 03:04:05.006');
    expect(() => novaTimestamp(Number.NaN)).toThrow(RangeError);
  });

  it('refuses a message of several lines (one log record is one line here)', () => {
    expect(() => formatNovaLine({ atMs: AT, pid: 1, level: 'INFO', logger: 'nova.compute.manager', context: null, instanceUuid: null, message: 'a\nb' })).toThrow(RangeError);
    expect(novaMessages.liveMigrationFailure('a\nb').message).toBe('Live Migration failure: a b');
  });

  it("is read back by the exporter's nova log parser as the events it means", () => {
    const zone = parseTimeZone('UTC');
    const parsed = (message: Parameters<typeof novaLine>[0]) => parseNovaLine(novaLine(message, at), zone);
    expect(parsed(novaMessages.switchingToPostcopy())).toMatchObject({ kind: 'event', timeMs: AT, instanceUuid: UUID, event: { kind: 'postcopy-switch' } });
    expect(parsed(novaMessages.migrationRunning(5, progress))).toMatchObject({ event: { kind: 'progress', elapsedSeconds: 5, memory: { processed: progress.processed, total: progress.total } } });
    expect(parsed(novaMessages.finishedSuccessfully('dst'))).toMatchObject({ event: { kind: 'success', destination: 'dst' } });
    expect(parsed(novaMessages.lifecycle('Resumed'))).toMatchObject({ event: { kind: 'lifecycle', state: 'Resumed' }, instanceUuid: UUID });
    expect(parsed(novaMessages.preLiveMigrationTook(0.25, 'dst'))).toMatchObject({ event: { kind: 'pre-live-migration', seconds: 0.25, destination: 'dst' } });
  });
});
