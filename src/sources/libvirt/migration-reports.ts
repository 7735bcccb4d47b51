/**
 * What libvirt's events and job statistics say about a migration, in the tracker's terms: the
 * same statuses, passes, STOP and RESUME that QMP reports, each with the libvirt wording its
 * evidence keeps. Pure; the libvirt source (source.ts) does the I/O and knows each domain's role.
 *
 * Sequences seen on libvirt 9.0 with QEMU 7.2 (docs/libvirt-migration-on-one-machine.md), for a
 * hybrid migration (`virsh migrate --live --postcopy --postcopy-after-precopy`):
 * - source: migration-iteration 1, 2, lifecycle suspended migrated (QEMU's STOP at the switch),
 *   suspended postcopy, iteration 3, stopped migrated, job-completed with the final figures;
 * - destination: started migrated (the incoming QEMU is up), resumed postcopy (QEMU's RESUME),
 *   resumed migrated (the migration completed).
 */
import { LIBVIRT_RAM_FIELDS } from '../../qemu/libvirt-fields.js';
import type { MigrationInfo, RamField, RamStats } from '../../qemu/types.js';
import type { DomainEvent } from './events.js';
import type { JobTypeName } from './names.js';
import type { TypedParamValue } from './typed-params.js';

/** virDomainJobOperation values of the two migration jobs. */
export const JobOperation = { migrationIn: 4, migrationOut: 5 } as const;

/** What a domain is to a migration on this host, as far as this source has seen. */
export type DomainRole = 'source' | 'destination' | null;

export type LibvirtReport =
  | { kind: 'status'; info: MigrationInfo; runState?: string; what: string }
  | { kind: 'event'; event: 'MIGRATION'; data: { status: string }; what: string }
  | { kind: 'event'; event: 'MIGRATION_PASS'; data: { pass: number }; what: string }
  | { kind: 'event'; event: 'STOP' | 'RESUME'; data: Record<string, never>; what: string }
  | { kind: 'gone'; reason: string; what: string };

/** Whether job statistics are those of a migration leaving this host. */
export function isOutgoingMigration(stats: Record<string, TypedParamValue>): boolean {
  return stats.operation === JobOperation.migrationOut;
}

/** A job type that means a job is running (virDomainJobType bounded or unbounded). */
export function isRunningJob(type: JobTypeName | string): boolean {
  return type === 'bounded' || type === 'unbounded';
}

const RAM_BY_LIBVIRT_NAME = new Map(Object.entries(LIBVIRT_RAM_FIELDS).map(([ram, name]) => [name, ram as RamField]));

/**
 * Job statistics as a query-migrate reply of the source: QEMU's status from the job's type (and
 * `postcopy`, which libvirt's statistics do not tell, from the lifecycle events), the memory
 * figures under QEMU's names, the times, and block migration's disk figures. Null for no job.
 */
export function jobStatsInfo(type: JobTypeName | string, stats: Record<string, TypedParamValue>, postcopy: boolean): MigrationInfo | null {
  const status = statusOf(type, postcopy);
  if (status === null) return null;
  const ram: RamStats = {};
  for (const [name, value] of Object.entries(stats)) {
    const field = RAM_BY_LIBVIRT_NAME.get(name);
    if (field === undefined || typeof value !== 'number') continue;
    // libvirt gives bytes per second where QEMU's mbps is megabits per second.
    ram[field] = field === 'mbps' ? (value * 8) / 1e6 : value;
  }
  const info: MigrationInfo = { status, incoming: false, origin: 'libvirt' };
  if (Object.keys(ram).length > 0) info.ram = ram;
  const number = (name: string): number | undefined => (typeof stats[name] === 'number' ? stats[name] : undefined);
  const elapsed = number('time_elapsed');
  if (elapsed !== undefined) info.totalTimeMs = elapsed;
  const setup = number('setup_time');
  if (setup !== undefined) info.setupTimeMs = setup;
  // While the job runs, libvirt's downtime is QEMU's expected downtime; once it completed, the measured one.
  const downtime = number('downtime');
  if (downtime !== undefined) {
    if (isRunningJob(type)) info.expectedDowntimeMs = downtime;
    else info.downtimeMs = downtime;
  }
  if (typeof stats.errmsg === 'string' && stats.errmsg) info.errorDesc = stats.errmsg;
  const disk = {
    total: number('disk_total'),
    processed: number('disk_processed'),
    remaining: number('disk_remaining'),
    bps: number('disk_bps'),
  };
  const present = Object.fromEntries(Object.entries(disk).filter(([, v]) => v !== undefined)) as MigrationInfo['disk'];
  if (present && Object.keys(present).length > 0) info.disk = present;
  return info;
}

function statusOf(type: string, postcopy: boolean): string | null {
  if (isRunningJob(type)) return postcopy ? 'postcopy-active' : 'active';
  switch (type) {
    case 'completed':
      return 'completed';
    case 'failed':
      return 'failed';
    case 'cancelled':
      return 'cancelled';
    default:
      return null;
  }
}

/**
 * The reports of one event about a domain whose role is `role`. A job-completed event gives the
 * final figures of an outgoing migration (other jobs, such as a save, give none); lifecycle events
 * give the phases; an event that says nothing about a migration gives nothing.
 */
export function eventReports(event: DomainEvent, role: DomainRole): LibvirtReport[] {
  switch (event.kind) {
    case 'migration-iteration':
      return [{ kind: 'event', event: 'MIGRATION_PASS', data: { pass: event.iteration }, what: `migration-iteration event ${event.iteration}` }];
    case 'job-completed': {
      if (!isOutgoingMigration(event.stats)) return [];
      const info = jobStatsInfo('completed', event.stats, false);
      return info ? [{ kind: 'status', info, what: 'job-completed event' }] : [];
    }
    case 'lifecycle':
      return lifecycleReports(event.event, event.detail, role);
  }
}

function lifecycleReports(event: string, detail: string, role: DomainRole): LibvirtReport[] {
  const what = `lifecycle event ${event} ${detail}`;
  const migration = (status: string): LibvirtReport => ({ kind: 'event', event: 'MIGRATION', data: { status }, what });
  switch (`${event} ${detail}`) {
    case 'started migrated':
      // The incoming QEMU is up and waits for the stream: QMP would show 'active' with socket-address.
      return [{ kind: 'status', info: { status: 'active', incoming: true, origin: 'libvirt' }, runState: 'inmigrate', what }];
    case 'suspended migrated':
      return role === 'destination' ? [] : [{ kind: 'event', event: 'STOP', data: {}, what }];
    case 'suspended postcopy':
      return [migration('postcopy-active')];
    case 'suspended postcopy-failed':
    case 'resumed postcopy-failed':
      return [migration('postcopy-paused')];
    case 'resumed postcopy':
      return [{ kind: 'event', event: 'RESUME', data: {}, what }, migration('postcopy-active')];
    case 'resumed migrated':
      return [{ kind: 'event', event: 'RESUME', data: {}, what }, migration('completed')];
    default:
      break;
  }
  if (event !== 'stopped') return [];
  const gone: LibvirtReport = { kind: 'gone', reason: `libvirt: domain ${event} ${detail}`, what };
  // An incoming QEMU that stops before it ran the guest: the migration failed on this side.
  if (role === 'destination' && detail !== 'migrated') return [migration('failed'), gone];
  return [gone];
}
