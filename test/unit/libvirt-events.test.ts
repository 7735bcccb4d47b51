import { describe, expect, it } from 'vitest';
import { decodeDomainEvent } from '../../src/sources/libvirt/events.js';
import { domainStateName, jobTypeName, lifecycleDetailName, lifecycleEventName, stateReasonName } from '../../src/sources/libvirt/names.js';
import { decodePacket } from '../../src/sources/libvirt/packet.js';
import { Procedure } from '../../src/sources/libvirt/protocol.js';
import { XdrDecodeError } from '../../src/sources/libvirt/xdr.js';
import { CAPTURED_DOMAIN, capturedPacket } from '../helpers/libvirt-fixtures.js';

const SAVED_DOMAIN = { name: 'lme rpc save $(id) `x` ü-1715', uuid: '82810b8d-8144-42e0-8a9b-423217997820', id: 2 };

const event = (name: string) => {
  const { header, body } = decodePacket(capturedPacket(name));
  return decodeDomainEvent(header.procedure, body);
};

describe('libvirt domain events captured from libvirt 9.0', () => {
  it('lifecycle (callback variant, 318): the domain and the event and detail by name', () => {
    expect(event('event.lifecycle.suspended-paused')).toEqual({
      kind: 'lifecycle',
      callbackId: 0,
      domain: CAPTURED_DOMAIN,
      event: 'suspended',
      detail: 'paused',
      eventCode: 3,
      detailCode: 0,
    });
    expect(event('event.lifecycle.resumed-unpaused')).toMatchObject({ event: 'resumed', detail: 'unpaused' });
  });

  it('migration iteration (359): the memory pass', () => {
    expect(event('event.migration-iteration.save')).toEqual({ kind: 'migration-iteration', callbackId: 1, domain: SAVED_DOMAIN, iteration: 2 });
  });

  it("job completed (363): the save's statistics as a plain object, and the typed list", () => {
    const completed = event('event.job-completed.save');
    expect(completed).toMatchObject({ kind: 'job-completed', callbackId: 2, domain: SAVED_DOMAIN });
    if (completed?.kind !== 'job-completed') throw new Error('not a job-completed event');
    expect(completed.stats).toMatchObject({ operation: 2, downtime: 21, memory_total: 67_502_080, memory_iteration: 2, data_remaining: 0 });
    expect(completed.params).toHaveLength(18);
  });

  it('an event this client did not register for is no event (null)', () => {
    expect(decodeDomainEvent(Procedure.CONNECT_CLOSE, Buffer.alloc(0))).toBeNull();
  });

  it('a truncated event body is an XdrDecodeError naming the message struct', () => {
    const { header, body } = decodePacket(capturedPacket('event.lifecycle.suspended-paused'));
    expect(() => decodeDomainEvent(header.procedure, body.subarray(0, body.length - 4))).toThrow(XdrDecodeError);
    expect(() => decodeDomainEvent(header.procedure, body.subarray(0, body.length - 4))).toThrow(/^remote_domain_event_callback_lifecycle_msg: /);
  });
});

describe('libvirt enum names (libvirt-domain.h)', () => {
  it.each([
    [3, 1, 'suspended', 'migrated'],
    [3, 7, 'suspended', 'postcopy'],
    [3, 8, 'suspended', 'postcopy-failed'],
    [4, 1, 'resumed', 'migrated'],
    [4, 3, 'resumed', 'postcopy'],
    [4, 4, 'resumed', 'postcopy-failed'],
    [2, 1, 'started', 'migrated'],
    [2, 2, 'started', 'restored'],
    [5, 3, 'stopped', 'migrated'],
    [5, 4, 'stopped', 'saved'],
    [5, 5, 'stopped', 'failed'],
    [8, 1, 'crashed', 'crashloaded'],
  ])('lifecycle %i/%i is %s/%s', (eventCode, detailCode, eventName, detailName) => {
    expect(lifecycleEventName(eventCode)).toBe(eventName);
    expect(lifecycleDetailName(eventCode, detailCode)).toBe(detailName);
  });

  it('names values a later libvirt may add as unknown-N', () => {
    expect(lifecycleEventName(9)).toBe('unknown-9');
    expect(lifecycleDetailName(9, 0)).toBe('unknown-0');
    expect(lifecycleDetailName(4, 5)).toBe('unknown-5');
    expect(domainStateName(8)).toBe('unknown-8');
    expect(jobTypeName(6)).toBe('unknown-6');
  });

  it('names domain states, their reasons and job types', () => {
    expect([domainStateName(3), stateReasonName(3, 12)]).toEqual(['paused', 'postcopy']);
    expect([domainStateName(1), stateReasonName(1, 2)]).toEqual(['running', 'migrated']);
    expect([domainStateName(5), stateReasonName(5, 5)]).toEqual(['shutoff', 'saved']);
    expect([0, 1, 2, 3, 4, 5].map(jobTypeName)).toEqual(['none', 'bounded', 'unbounded', 'completed', 'failed', 'cancelled']);
  });
});
