import { describe, expect, it } from 'vitest';
import { decodePacket } from '../../src/sources/libvirt/packet.js';
import { encode, formatUuid, parseUuid, read, readRemoteError, writeRemoteError } from '../../src/sources/libvirt/wire.js';
import { decodeXdr, XdrDecodeError, XdrIn, XdrOut } from '../../src/sources/libvirt/xdr.js';
import { CAPTURED_DOMAIN, capturedPacket } from '../helpers/libvirt-fixtures.js';

const body = (name: string): Buffer => decodePacket(capturedPacket(name)).body;

describe('libvirt structs, on replies captured from libvirt 9.0', () => {
  it('AUTH_LIST: none, for root', () => {
    expect(decodeXdr('auth', body('auth-list.reply'), read.authList)).toEqual([0]);
  });

  it('CONNECT_GET_LIB_VERSION: 9.0.0 as 9000000', () => {
    expect(decodeXdr('version', body('connect-get-lib-version.reply'), read.libVersion)).toBe(9_000_000n);
  });

  it('CONNECT_LIST_ALL_DOMAINS: name (quotes, metacharacters, UTF-8), UUID and id', () => {
    expect(decodeXdr('list', body('connect-list-all-domains.reply'), read.listAllDomains)).toEqual([CAPTURED_DOMAIN]);
  });

  it('DOMAIN_LOOKUP_BY_UUID and DOMAIN_GET_STATE', () => {
    expect(decodeXdr('lookup', body('domain-lookup-by-uuid.reply'), read.domain)).toEqual(CAPTURED_DOMAIN);
    expect(decodeXdr('state', body('domain-get-state.paused-user.reply'), read.domainState)).toEqual({ state: 3, reason: 1 });
  });

  it('DOMAIN_GET_XML_DESC: the live XML', () => {
    const xml = decodeXdr('xml', body('domain-get-xml-desc.reply'), read.string);
    expect(xml).toMatch(/^<domain type='(kvm|qemu)' id='1'>/);
    expect(xml).toContain(`<uuid>${CAPTURED_DOMAIN.uuid}</uuid>`);
    expect(xml).toContain('<name>lme rpc &quot;t&quot; &apos;x&apos; $HOME;|&amp;&lt;&gt;*? ü-1715</name>');
  });

  it('DOMAIN_GET_JOB_STATS with no job: type none, no params', () => {
    expect(decodeXdr('stats', body('domain-get-job-stats.none.reply'), read.jobStats)).toEqual({ type: 0, params: [] });
  });

  it("virNetMessageError: libvirt's code, domain, message and format parts", () => {
    expect(decodeXdr('error', body('domain-lookup-by-name.no-domain.error'), readRemoteError)).toEqual({
      code: 42,
      domain: 10,
      message: "Domain not found: no domain with matching name 'lme-no-such-domain'",
      level: 2,
      str1: 'Domain not found: %s',
      str2: "no domain with matching name 'lme-no-such-domain'",
      str3: null,
      int1: -1,
      int2: -1,
    });
    expect(decodeXdr('error', body('domain-suspend.read-only.error'), readRemoteError)).toMatchObject({
      code: 29,
      domain: 20,
      message: 'operation forbidden: read only access prevents virDomainSuspend',
    });
  });

  it('writes an error that reads back the same', () => {
    const error = decodeXdr('error', body('domain-lookup-by-name.no-domain.error'), readRemoteError);
    const output = new XdrOut();
    writeRemoteError(output, error);
    expect(decodeXdr('error', output.bytes(), readRemoteError)).toEqual(error);
  });

  it.each([
    ['connect-list-all-domains.reply', read.listAllDomains],
    ['domain-lookup-by-uuid.reply', read.domain],
    ['domain-get-job-stats.completed-save.reply', read.jobStats],
    ['domain-lookup-by-name.no-domain.error', readRemoteError],
  ] as const)('%s cut short anywhere, or with a byte too many, is an XdrDecodeError naming the struct', (name, reader) => {
    const whole = body(name);
    const wrong: string[] = [];
    for (let length = 0; length < whole.length; length++) {
      try {
        decodeXdr('the reply', whole.subarray(0, length), reader as (input: XdrIn) => unknown);
        wrong.push(`${length} bytes decoded`);
      } catch (err) {
        if (!(err instanceof XdrDecodeError) || !err.message.startsWith('the reply')) wrong.push(`${length} bytes: ${String(err)}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(() => decodeXdr('the reply', Buffer.concat([whole, Buffer.alloc(4)]), reader as (input: XdrIn) => unknown)).toThrow(
      /the reply: 4 bytes left over/,
    );
  });
});

describe('libvirt call arguments', () => {
  it('CONNECT_OPEN: the URI as an optional string, then the flags (VIR_CONNECT_RO)', () => {
    expect(encode.connectOpen('qemu:///system', 1).toString('hex')).toBe(
      '00000001' + '0000000e' + Buffer.from('qemu:///system').toString('hex') + '0000' + '00000001',
    );
    expect(encode.connectOpen(null, 0).toString('hex')).toBe('0000000000000000');
  });

  it('a domain argument is name, 16 UUID bytes and id, as libvirt sent it', () => {
    const reply = body('domain-lookup-by-uuid.reply');
    expect(encode.domain(CAPTURED_DOMAIN)).toEqual(reply);
    expect(encode.domainWithFlags(CAPTURED_DOMAIN, 3)).toEqual(Buffer.concat([reply, Buffer.from('00000003', 'hex')]));
  });

  it('CALLBACK_REGISTER_ANY: the event id, then an optional domain (none: all domains)', () => {
    expect(encode.registerEvent(21, null).toString('hex')).toBe('0000001500000000');
    expect(encode.registerEvent(0, CAPTURED_DOMAIN).subarray(0, 8).toString('hex')).toBe('0000000000000001');
  });

  it('UUIDs go to and from their 16 bytes', () => {
    expect(formatUuid(parseUuid(CAPTURED_DOMAIN.uuid))).toBe(CAPTURED_DOMAIN.uuid);
    expect(formatUuid(parseUuid('4AD22230C9394BA0B18EB32D38BAE65A'))).toBe(CAPTURED_DOMAIN.uuid);
    expect(() => parseUuid('not-a-uuid')).toThrow('not a UUID: "not-a-uuid"');
  });
});
