/**
 * Names for libvirt's numeric enums, in the order of libvirt 9.0's include/libvirt/libvirt-domain.h
 * (array index = enum value). Pure. A value a later libvirt adds is named "unknown-N", never dropped.
 */

const LIFECYCLE_EVENTS = ['defined', 'undefined', 'started', 'suspended', 'resumed', 'stopped', 'shutdown', 'pmsuspended', 'crashed'] as const;

/** virDomainEvent*DetailType, one list per lifecycle event. */
const LIFECYCLE_DETAILS: Record<LifecycleEventName, readonly string[]> = {
  defined: ['added', 'updated', 'renamed', 'from-snapshot'],
  undefined: ['removed', 'renamed'],
  started: ['booted', 'migrated', 'restored', 'from-snapshot', 'wakeup'],
  suspended: ['paused', 'migrated', 'ioerror', 'watchdog', 'restored', 'from-snapshot', 'api-error', 'postcopy', 'postcopy-failed'],
  resumed: ['unpaused', 'migrated', 'from-snapshot', 'postcopy', 'postcopy-failed'],
  stopped: ['shutdown', 'destroyed', 'crashed', 'migrated', 'saved', 'failed', 'from-snapshot'],
  shutdown: ['finished', 'guest', 'host'],
  pmsuspended: ['memory', 'disk'],
  crashed: ['panicked', 'crashloaded'],
};

export type LifecycleEventName = (typeof LIFECYCLE_EVENTS)[number];

const DOMAIN_STATES = ['nostate', 'running', 'blocked', 'paused', 'shutdown', 'shutoff', 'crashed', 'pmsuspended'] as const;
export type DomainStateName = (typeof DOMAIN_STATES)[number];

/** vir*Reason, one list per domain state. */
const STATE_REASONS: Record<DomainStateName, readonly string[]> = {
  nostate: ['unknown'],
  running: ['unknown', 'booted', 'migrated', 'restored', 'from-snapshot', 'unpaused', 'migration-canceled', 'save-canceled', 'wakeup', 'crashed', 'postcopy', 'postcopy-failed'],
  blocked: ['unknown'],
  paused: ['unknown', 'user', 'migration', 'save', 'dump', 'ioerror', 'watchdog', 'from-snapshot', 'shutting-down', 'snapshot', 'crashed', 'starting-up', 'postcopy', 'postcopy-failed'],
  shutdown: ['unknown', 'user'],
  shutoff: ['unknown', 'shutdown', 'destroyed', 'crashed', 'migrated', 'saved', 'failed', 'from-snapshot', 'daemon'],
  crashed: ['unknown', 'panicked'],
  pmsuspended: ['unknown'],
};

const JOB_TYPES = ['none', 'bounded', 'unbounded', 'completed', 'failed', 'cancelled'] as const;
export type JobTypeName = (typeof JOB_TYPES)[number];

function nameIn<T extends string>(names: readonly T[], value: number): T | `unknown-${number}` {
  return names[value] ?? `unknown-${value}`;
}

export function lifecycleEventName(event: number): LifecycleEventName | `unknown-${number}` {
  return nameIn(LIFECYCLE_EVENTS, event);
}

export function lifecycleDetailName(event: number, detail: number): string {
  const eventName = LIFECYCLE_EVENTS[event];
  return eventName ? nameIn(LIFECYCLE_DETAILS[eventName], detail) : `unknown-${detail}`;
}

export function domainStateName(state: number): DomainStateName | `unknown-${number}` {
  return nameIn(DOMAIN_STATES, state);
}

export function stateReasonName(state: number, reason: number): string {
  const stateName = DOMAIN_STATES[state];
  return stateName ? nameIn(STATE_REASONS[stateName], reason) : `unknown-${reason}`;
}

export function jobTypeName(type: number): JobTypeName | `unknown-${number}` {
  return nameIn(JOB_TYPES, type);
}
