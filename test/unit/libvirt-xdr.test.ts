import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeXdr, XdrDecodeError, XdrOut, type XdrIn } from '../../src/sources/libvirt/xdr.js';

describe('XDR reading and writing (RFC 4506) on @stellar/js-xdr', () => {
  it('lays out each primitive as RFC 4506 says', () => {
    const bytes = new XdrOut()
      .int(-2)
      .uint(0xfffffffe)
      .hyper(-2n)
      .uhyper(2n ** 64n - 2n)
      .double(-2)
      .bool(true)
      .string('abcde', 10)
      .opaque(Buffer.from([1, 2, 3]), 3)
      .optional(null, (o, v: number) => o.int(v))
      .optional(7, (o, v) => o.int(v))
      .array([1, 2], (o, v) => o.uint(v))
      .bytes();
    expect(bytes.toString('hex')).toBe(
      [
        'fffffffe',
        'fffffffe',
        'fffffffffffffffe',
        'fffffffffffffffe',
        'c000000000000000',
        '00000001',
        '00000005' + '6162636465' + '000000',
        '010203' + '00',
        '00000000',
        '00000001' + '00000007',
        '00000002' + '00000001' + '00000002',
      ].join(''),
    );
  });

  it('reads back what it writes (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.string({ unit: 'grapheme', maxLength: 50 }),
        fc.option(fc.uint8Array({ minLength: 16, maxLength: 16 })),
        fc.array(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), { maxLength: 20 }),
        (int, uhyper, text, uuid, hypers) => {
          const bytes = new XdrOut()
            .int(int)
            .uhyper(uhyper)
            .string(text, 1000)
            .optional(uuid === null ? null : Buffer.from(uuid), (o, v) => o.opaque(v, 16))
            .array(hypers, (o, v) => o.hyper(v))
            .bytes();
          expect(bytes.length % 4).toBe(0);
          const decoded = decodeXdr('mix', bytes, (i) => ({
            int: i.int(),
            uhyper: i.uhyper(),
            text: i.string(1000),
            uuid: i.optional((o) => o.opaque(16)),
            hypers: i.array(20, (o) => o.hyper()),
          }));
          expect(decoded).toEqual({ int, uhyper, text, uuid: uuid === null ? null : Buffer.from(uuid), hypers });
        },
      ),
    );
  });

  it.each([
    ['a string longer than its maximum', new XdrOut().string('abcdef', 10).bytes(), (i: XdrIn) => i.string(5), /saw 6 length String, max allowed is 5/],
    ['an array longer than its maximum', new XdrOut().array([1, 2, 3], (o, v) => o.int(v)).bytes(), (i: XdrIn) => i.array(2, (o) => o.int()), /array: length 3 over its maximum 2/],
    ['an array length past the end', Buffer.from('00001000', 'hex'), (i: XdrIn) => i.array(1_000_000, (o) => o.int()), /array: length 4096 but only 0 bytes left/],
    ['a read past the end', Buffer.from('0000', 'hex'), (i: XdrIn) => i.int(), /outside the boundary/],
    ['non-zero padding', Buffer.from('0000000161ff0000', 'hex'), (i: XdrIn) => i.string(10), /invalid padding/],
  ])('refuses %s with an XdrDecodeError', (_what, bytes, read, message) => {
    const attempt = (): unknown => decodeXdr<unknown>('thing', bytes, read);
    expect(attempt).toThrow(XdrDecodeError);
    expect(attempt).toThrow(message);
  });
});
