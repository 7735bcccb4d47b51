import { createConnection } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { LivemigError } from '../../src/errors.js';
import { LibvirtClient, type LibvirtClientOptions } from '../../src/sources/libvirt/client.js';
import type { DomainEvent } from '../../src/sources/libvirt/events.js';
import { encodePacket } from '../../src/sources/libvirt/packet.js';
import { AuthType, KEEPALIVE_PROGRAM, MessageType, Procedure } from '../../src/sources/libvirt/protocol.js';
import { LibvirtCallError } from '../../src/sources/libvirt/remote-error.js';
import { decodeXdr, XdrOut } from '../../src/sources/libvirt/xdr.js';
import { CAPTURED_DOMAIN, capturedPacket } from '../helpers/libvirt-fixtures.js';
import { captured, ReplayDaemon, replyTo } from '../helpers/libvirt-replay.js';

let daemon: ReplayDaemon;
let client: LibvirtClient | undefined;

afterEach(async () => {
  await client?.close(100);
  client = undefined;
  await daemon?.close();
});

async function open(options: LibvirtClientOptions = { keepalive: false }): Promise<LibvirtClient> {
  daemon ??= await ReplayDaemon.listen();
  const stream = createConnection({ path: daemon.path });
  await new Promise((resolve) => stream.once('connect', resolve));
  client = await LibvirtClient.open(stream, 'replay', options);
  return client;
}

async function fresh(options?: LibvirtClientOptions): Promise<LibvirtClient> {
  daemon = await ReplayDaemon.listen();
  return open(options);
}

function closeReason(c: LibvirtClient): Promise<LivemigError> {
  return new Promise((resolve) => c.once('close', resolve));
}

/** A captured packet with its body cut by `cut` bytes and its length word told so. */
function truncated(name: string, cut: number, serial: number): Buffer {
  const raw = capturedPacket(name);
  const short = Buffer.from(raw.subarray(0, raw.length - cut));
  short.writeUInt32BE(short.length, 0);
  short.writeUInt32BE(serial, 20);
  return short;
}

describe('LibvirtClient over a socket replaying libvirt 9.0 packets', () => {
  it('opens with AUTH_LIST, the keepalive feature, CONNECT_OPEN read-only, then the version', async () => {
    const c = await fresh({});
    expect(daemon.calls.map((p) => p.header.procedure)).toEqual([
      Procedure.AUTH_LIST,
      Procedure.CONNECT_SUPPORTS_FEATURE,
      Procedure.CONNECT_OPEN,
      Procedure.CONNECT_GET_LIB_VERSION,
    ]);
    expect(daemon.calls.map((p) => p.header.serial)).toEqual([1, 2, 3, 4]);
    expect(daemon.calls[1]?.body.toString('hex')).toBe('0000000a'); // VIR_DRV_FEATURE_PROGRAM_KEEPALIVE
    const openArgs = daemon.calls[2]?.body as Buffer;
    expect(decodeXdr('open', openArgs, (i) => ({ uri: i.optional((o) => o.string(100)), flags: i.uint() }))).toEqual({ uri: 'qemu:///system', flags: 1 });
    expect(c.libVersion).toBe(9_000_000);
  });

  it('opens read-write without VIR_CONNECT_RO when asked, and without keepalive when told', async () => {
    await fresh({ readOnly: false, keepalive: false, uri: 'qemu:///session' });
    expect(daemon.calls.map((p) => p.header.procedure)).not.toContain(Procedure.CONNECT_SUPPORTS_FEATURE);
    const openArgs = daemon.calls.find((p) => p.header.procedure === Procedure.CONNECT_OPEN)?.body as Buffer;
    expect(decodeXdr('open', openArgs, (i) => ({ uri: i.optional((o) => o.string(100)), flags: i.uint() }))).toEqual({ uri: 'qemu:///session', flags: 0 });
  });

  it('calls AUTH_POLKIT when polkit is what the daemon offers', async () => {
    daemon = await ReplayDaemon.listen();
    daemon.respond(Procedure.AUTH_LIST, (call) => replyTo(call, new XdrOut().array([AuthType.polkit], (o, v) => o.int(v)).bytes()));
    daemon.respond(Procedure.AUTH_POLKIT, (call) => replyTo(call, new XdrOut().int(1).bytes()));
    await open();
    expect(daemon.calls.map((p) => p.header.procedure).slice(0, 2)).toEqual([Procedure.AUTH_LIST, Procedure.AUTH_POLKIT]);
  });

  it('refuses a daemon that offers only SASL, naming what it offered', async () => {
    daemon = await ReplayDaemon.listen();
    daemon.respond(Procedure.AUTH_LIST, (call) => replyTo(call, new XdrOut().array([AuthType.sasl], (o, v) => o.int(v)).bytes()));
    await expect(open()).rejects.toMatchObject({
      code: 'LME_LIBVIRT_AUTH',
      message: 'libvirt replay: cannot authenticate: the daemon offers sasl; this client speaks none and polkit',
    });
  });

  it('decodes captured replies to the calls that asked for them', async () => {
    const c = await fresh();
    daemon.respond(Procedure.CONNECT_LIST_ALL_DOMAINS, captured('connect-list-all-domains.reply'));
    daemon.respond(Procedure.DOMAIN_GET_STATE, captured('domain-get-state.paused-user.reply'));
    daemon.respond(Procedure.DOMAIN_GET_JOB_STATS, captured('domain-get-job-stats.completed-save.reply'));
    expect(await c.listAllDomains()).toEqual([CAPTURED_DOMAIN]);
    expect(await c.getState(CAPTURED_DOMAIN)).toEqual({ state: 3, reason: 1, stateName: 'paused', reasonName: 'user' });
    const stats = await c.getJobStats(CAPTURED_DOMAIN, { completed: true, keep: true });
    expect(stats).toMatchObject({ type: 3, typeName: 'completed', stats: { operation: 2, downtime: 21 } });
    expect(daemon.calls.at(-1)?.body.subarray(-4).toString('hex')).toBe('00000003'); // COMPLETED | KEEP_COMPLETED
  });

  it('matches replies to calls by serial, whatever their order', async () => {
    const c = await fresh();
    const held: Buffer[] = [];
    daemon.respond(Procedure.DOMAIN_GET_STATE, (call) => {
      held.push(Buffer.from(captured('domain-get-state.paused-user.reply')(call) as Buffer));
      return null;
    });
    daemon.respond(Procedure.DOMAIN_LOOKUP_BY_UUID, captured('domain-lookup-by-uuid.reply'));
    const state = c.getState(CAPTURED_DOMAIN);
    expect(await c.lookupByUuid(CAPTURED_DOMAIN.uuid)).toEqual(CAPTURED_DOMAIN);
    await daemon.send(held[0] as Buffer);
    expect((await state).stateName).toBe('paused');
  });

  it('reads replies that arrive one byte per write', async () => {
    const c = await fresh();
    let pending: Buffer | undefined;
    daemon.respond(Procedure.CONNECT_LIST_ALL_DOMAINS, (call) => {
      pending = captured('connect-list-all-domains.reply')(call) as Buffer;
      return null;
    });
    const listing = c.listAllDomains();
    while (!pending) await new Promise((resolve) => setTimeout(resolve, 5));
    for (let i = 0; i < pending.length; i++) await daemon.send(pending.subarray(i, i + 1));
    expect(await listing).toEqual([CAPTURED_DOMAIN]);
  });

  it("rejects a call with libvirt's error and stays open", async () => {
    const c = await fresh();
    daemon.respond(Procedure.DOMAIN_LOOKUP_BY_NAME, captured('domain-lookup-by-name.no-domain.error'));
    const err = (await c.lookupByName('lme-no-such-domain').catch((e: unknown) => e)) as LibvirtCallError;
    expect(err).toBeInstanceOf(LibvirtCallError);
    expect(err.message).toBe(
      "DOMAIN_LOOKUP_BY_NAME on libvirt replay failed: libvirt error (code 42, domain 10): Domain not found: no domain with matching name 'lme-no-such-domain'",
    );
    expect(await c.getLibVersion()).toBe(9_000_000);
  });

  it('closes with LME_LIBVIRT_PROTOCOL on a bad length word; the waiting call gets the same error, later ones too', async () => {
    const c = await fresh();
    const closed = closeReason(c);
    daemon.respond(Procedure.DOMAIN_GET_STATE, () => Buffer.from('000000050000000000000000', 'hex'));
    const state = c.getState(CAPTURED_DOMAIN).catch((e: unknown) => e);
    const reason = await closed;
    expect(reason.code).toBe('LME_LIBVIRT_PROTOCOL');
    expect(reason.message).toBe(
      'libvirt replay sent a packet that cannot be parsed (bad length), connection closed: length word 5 is outside 28 to 33554436 bytes; first bytes 000000050000000000000000',
    );
    expect(await state).toBe(reason);
    await expect(c.getLibVersion()).rejects.toBe(reason);
    expect(c.isClosed).toBe(true);
  });

  it('closes with LME_LIBVIRT_PROTOCOL on a reply whose XDR is cut short', async () => {
    const c = await fresh();
    const closed = closeReason(c);
    daemon.respond(Procedure.CONNECT_LIST_ALL_DOMAINS, (call) => truncated('connect-list-all-domains.reply', 8, call.header.serial));
    const listing = c.listAllDomains().catch((e: unknown) => e);
    const reason = await closed;
    expect(reason.message).toMatch(/^libvirt replay sent a packet that cannot be parsed \(truncated or malformed XDR\), connection closed: CONNECT_LIST_ALL_DOMAINS reply: /);
    expect(await listing).toBe(reason);
  });

  it('closes with LME_LIBVIRT_PROTOCOL on an unknown program', async () => {
    const c = await fresh();
    const closed = closeReason(c);
    await daemon.send(encodePacket({ program: 0x12345678, version: 1, procedure: 1, type: 1, serial: 9, status: 0 }));
    expect((await closed).message).toContain('(unknown program), connection closed: program 0x12345678, procedure 1, type 1, serial 9');
  });

  it('closes with LME_LIBVIRT_PROTOCOL on a malformed event message', async () => {
    const c = await fresh();
    const closed = closeReason(c);
    await daemon.send(ReplayDaemon.message(Procedure.DOMAIN_EVENT_CALLBACK_LIFECYCLE, Buffer.from('00000000', 'hex')));
    expect((await closed).message).toMatch(/\(truncated or malformed event\), connection closed: DOMAIN_EVENT_CALLBACK_LIFECYCLE: remote_domain_event_callback_lifecycle_msg: /);
  });

  it('emits captured events as typed events', async () => {
    const c = await fresh();
    const seen: DomainEvent[] = [];
    c.on('event', (e) => seen.push(e));
    for (const name of ['event.lifecycle.suspended-paused', 'event.migration-iteration.save', 'event.job-completed.save']) await daemon.send(capturedPacket(name));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen.map((e) => e.kind)).toEqual(['lifecycle', 'migration-iteration', 'job-completed']);
  });

  it("answers the daemon's keepalive PING with a PONG", async () => {
    await fresh({});
    await daemon.send(encodePacket({ program: KEEPALIVE_PROGRAM, version: 1, procedure: 1, type: MessageType.message, serial: 0, status: 0 }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const pong = daemon.received.find((p) => p.header.program === KEEPALIVE_PROGRAM);
    expect(pong?.header).toEqual({ program: KEEPALIVE_PROGRAM, version: 1, procedure: 2, type: MessageType.message, serial: 0, status: 0 });
    expect(pong?.body.length).toBe(0);
  });

  it('pings a quiet daemon and closes with LME_LIBVIRT_KEEPALIVE when the pings go unanswered', async () => {
    const c = await fresh({ keepalive: { intervalMs: 30, count: 2 } });
    const reason = await closeReason(c);
    expect(reason.code).toBe('LME_LIBVIRT_KEEPALIVE');
    expect(reason.message).toMatch(/^libvirt replay sent nothing for \d+ ms \(2 keepalive pings unanswered\), connection closed$/);
    const pings = daemon.received.filter((p) => p.header.program === KEEPALIVE_PROGRAM && p.header.procedure === 1);
    expect(pings).toHaveLength(2);
  });

  it('times a call out, drops its late reply, and goes on', async () => {
    const c = await fresh({ keepalive: false, callTimeoutMs: 50 });
    let late: Buffer | undefined;
    daemon.respond(Procedure.DOMAIN_GET_STATE, (call) => {
      late = captured('domain-get-state.paused-user.reply')(call) as Buffer;
      return null;
    });
    await expect(c.getState(CAPTURED_DOMAIN)).rejects.toMatchObject({
      code: 'LME_LIBVIRT_TIMEOUT',
      message: 'libvirt call DOMAIN_GET_STATE on replay got no reply within 50 ms',
    });
    await daemon.send(late as Buffer);
    expect(await c.getLibVersion()).toBe(9_000_000);
  });

  it('closes with LME_LIBVIRT_CLOSED when the daemon hangs up in the middle of a packet', async () => {
    const c = await fresh();
    const closed = closeReason(c);
    await daemon.send(capturedPacket('connect-list-all-domains.reply').subarray(0, 40));
    await daemon.hangUp();
    const reason = await closed;
    expect(reason.code).toBe('LME_LIBVIRT_CLOSED');
    expect(reason.message).toBe('libvirt connection replay closed: end of stream in the middle of a packet (40 bytes of it received)');
  });

  it('never throws whatever bytes follow the handshake: it stays open or closes with a named error (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.boolean(), async (bytes, framed) => {
        const c = await fresh();
        const reasons: LivemigError[] = [];
        c.on('close', (r) => reasons.push(r));
        const garbage = framed ? ReplayDaemon.message(Procedure.DOMAIN_EVENT_CALLBACK_JOB_COMPLETED, Buffer.from(bytes)) : Buffer.from(bytes);
        await daemon.send(garbage);
        await new Promise((resolve) => setTimeout(resolve, 5));
        for (const reason of reasons) expect(['LME_LIBVIRT_PROTOCOL', 'LME_LIBVIRT_CLOSED']).toContain(reason.code);
        await c.close(50);
        await daemon.close();
      }),
      { numRuns: 25 },
    );
  });
});
