import { lifecycleDetailName, lifecycleEventName } from './names.js';
import { Limits, Procedure } from './protocol.js';
import { decodeTypedParam, typedParamsObject, type TypedParam, type TypedParamValue } from './typed-params.js';
import { readDomain, type DomainRef } from './wire.js';
import { decodeXdr } from './xdr.js';

/**
 * The domain events this client registers for, decoded from their message bodies
 * (remote_domain_event_callback_*_msg in remote_protocol.x). Pure.
 */

interface EventBase {
  /** The id CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY returned. */
  callbackId: number;
  domain: DomainRef;
}

export interface LifecycleEvent extends EventBase {
  kind: 'lifecycle';
  /** 'started', 'suspended', 'resumed', 'stopped' ... */
  event: string;
  /** Its detail: 'migrated', 'postcopy', 'destroyed' ... */
  detail: string;
  eventCode: number;
  detailCode: number;
}

export interface MigrationIterationEvent extends EventBase {
  kind: 'migration-iteration';
  /** The memory pass that has just started, from 1. */
  iteration: number;
}

export interface JobCompletedEvent extends EventBase {
  kind: 'job-completed';
  /** The job's statistics, as DOMAIN_GET_JOB_STATS with COMPLETED would give them. */
  stats: Record<string, TypedParamValue>;
  params: TypedParam[];
}

export type DomainEvent = LifecycleEvent | MigrationIterationEvent | JobCompletedEvent;

/** Decodes an event message; null for a procedure that is not one of these events. Throws XdrDecodeError. */
export function decodeDomainEvent(procedure: number, body: Buffer): DomainEvent | null {
  switch (procedure) {
    case Procedure.DOMAIN_EVENT_CALLBACK_LIFECYCLE:
      return decodeXdr('remote_domain_event_callback_lifecycle_msg', body, (input) => {
        const callbackId = input.int();
        const domain = readDomain(input);
        const eventCode = input.int();
        const detailCode = input.int();
        return {
          kind: 'lifecycle',
          callbackId,
          domain,
          event: lifecycleEventName(eventCode),
          detail: lifecycleDetailName(eventCode, detailCode),
          eventCode,
          detailCode,
        };
      });
    case Procedure.DOMAIN_EVENT_CALLBACK_MIGRATION_ITERATION:
      return decodeXdr('remote_domain_event_callback_migration_iteration_msg', body, (input) => ({
        kind: 'migration-iteration',
        callbackId: input.int(),
        domain: readDomain(input),
        iteration: input.int(),
      }));
    case Procedure.DOMAIN_EVENT_CALLBACK_JOB_COMPLETED:
      return decodeXdr('remote_domain_event_callback_job_completed_msg', body, (input) => {
        const callbackId = input.int();
        const domain = readDomain(input);
        const params = input.array(Limits.DOMAIN_JOB_STATS_MAX, decodeTypedParam);
        return { kind: 'job-completed', callbackId, domain, stats: typedParamsObject(params), params };
      });
    default:
      return null;
  }
}
