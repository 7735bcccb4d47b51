import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodePacket } from '../../src/sources/libvirt/packet.js';
import { decodeTypedParam, encodeTypedParam, typedParamsObject, type TypedParam } from '../../src/sources/libvirt/typed-params.js';
import { encodeJobStats, read } from '../../src/sources/libvirt/wire.js';
import { decodeXdr, XdrOut } from '../../src/sources/libvirt/xdr.js';
import { capturedPacket } from '../helpers/libvirt-fixtures.js';

const EVERY_TYPE: TypedParam[] = [
  { field: 'operation', type: 'int', value: -7 },
  { field: 'auto_converge_throttle', type: 'uint', value: 4_294_967_295 },
  { field: 'llong', type: 'llong', value: -9_223_372_036_854_775_808n },
  { field: 'memory_total', type: 'ullong', value: 18_446_744_073_709_551_615n },
  { field: 'ratio', type: 'double', value: 0.125 },
  { field: 'success', type: 'boolean', value: true },
  { field: 'errmsg', type: 'string', value: 'schön "quoted"' },
];

const encodeOne = (param: TypedParam): Buffer => {
  const output = new XdrOut();
  encodeTypedParam(output, param);
  return output.bytes();
};

describe('libvirt typed parameters', () => {
  it("decodes the completed save job's statistics captured from libvirt 9.0 (one int, seventeen ullong)", () => {
    const { body } = decodePacket(capturedPacket('domain-get-job-stats.completed-save.reply'));
    const { type, params } = decodeXdr('stats', body, read.jobStats);
    expect(type).toBe(3);
    expect(params.map((p) => p.type)).toEqual(['int', ...Array<string>(17).fill('ullong')]);
    expect(typedParamsObject(params)).toEqual({
      operation: 2,
      time_elapsed: 27,
      downtime: 21,
      setup_time: 0,
      data_total: 67_502_080,
      data_processed: 340_815,
      data_remaining: 0,
      memory_total: 67_502_080,
      memory_processed: 340_815,
      memory_remaining: 0,
      memory_bps: 28_491_466,
      memory_constant: 16_433,
      memory_normal: 47,
      memory_normal_bytes: 192_512,
      memory_dirty_rate: 0,
      memory_iteration: 2,
      memory_postcopy_requests: 0,
      memory_page_size: 4096,
    });
    expect(encodeJobStats(type, params)).toEqual(body);
  });

  it.each(EVERY_TYPE)('reads a $type parameter back exactly as written ($field)', (param) => {
    expect(decodeXdr('param', encodeOne(param), decodeTypedParam)).toEqual(param);
  });

  it('puts every type into a plain object; 64-bit values become numbers', () => {
    expect(typedParamsObject(EVERY_TYPE)).toEqual({
      operation: -7,
      auto_converge_throttle: 4_294_967_295,
      llong: -(2 ** 63),
      memory_total: 2 ** 64, // the nearest double to 2^64 - 1
      ratio: 0.125,
      success: true,
      errmsg: 'schön "quoted"',
    });
  });

  it('lays a boolean out as an int and a double as 8 big-endian bytes', () => {
    expect(encodeOne({ field: 'b', type: 'boolean', value: true }).toString('hex')).toBe('00000001' + '62000000' + '00000006' + '00000001');
    expect(encodeOne({ field: 'd', type: 'double', value: 1 }).subarray(8).toString('hex')).toBe('00000005' + '3ff0000000000000');
  });

  it('refuses an unknown type, naming the field', () => {
    const bytes = encodeOne({ field: 'x', type: 'int', value: 1 });
    bytes.writeInt32BE(9, 8);
    expect(() => decodeXdr('param', bytes, decodeTypedParam)).toThrow('param: remote_typed_param: field "x" has unknown type 9');
  });

  const anyParam: fc.Arbitrary<TypedParam> = fc.oneof(
    fc.record({ field: fc.string(), type: fc.constant('int' as const), value: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) }),
    fc.record({ field: fc.string(), type: fc.constant('uint' as const), value: fc.integer({ min: 0, max: 2 ** 32 - 1 }) }),
    fc.record({ field: fc.string(), type: fc.constant('llong' as const), value: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) }),
    fc.record({ field: fc.string(), type: fc.constant('ullong' as const), value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
    fc.record({ field: fc.string(), type: fc.constant('double' as const), value: fc.double({ noNaN: true }) }),
    fc.record({ field: fc.string(), type: fc.constant('boolean' as const), value: fc.boolean() }),
    fc.record({ field: fc.string(), type: fc.constant('string' as const), value: fc.string({ unit: 'grapheme' }) }),
  );

  it('reads back any list of parameters of any types as written (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5 }), fc.array(anyParam, { maxLength: 64 }), (type, params) => {
        const decoded = decodeXdr('stats', encodeJobStats(type, params), read.jobStats);
        expect(decoded).toEqual({ type, params });
      }),
    );
  });
});
