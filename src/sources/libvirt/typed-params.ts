import { Limits } from './protocol.js';
import { XdrDecodeError, type XdrIn, type XdrOut } from './xdr.js';

/**
 * remote_typed_param (remote_protocol.x): a field name and a value whose union discriminant is
 * virTypedParameterType (include/libvirt/libvirt-common.h). Pure.
 */

export const TypedParamType = { int: 1, uint: 2, llong: 3, ullong: 4, double: 5, boolean: 6, string: 7 } as const;
export type TypedParamTypeName = keyof typeof TypedParamType;

export type TypedParam =
  | { field: string; type: 'int' | 'uint' | 'double'; value: number }
  | { field: string; type: 'llong' | 'ullong'; value: bigint }
  | { field: string; type: 'boolean'; value: boolean }
  | { field: string; type: 'string'; value: string };

export type TypedParamValue = number | boolean | string;

export function decodeTypedParam(input: XdrIn): TypedParam {
  const field = input.string(Limits.REMOTE_STRING_MAX);
  const type = input.int();
  switch (type) {
    case TypedParamType.int:
      return { field, type: 'int', value: input.int() };
    case TypedParamType.uint:
      return { field, type: 'uint', value: input.uint() };
    case TypedParamType.llong:
      return { field, type: 'llong', value: input.hyper() };
    case TypedParamType.ullong:
      return { field, type: 'ullong', value: input.uhyper() };
    case TypedParamType.double:
      return { field, type: 'double', value: input.double() };
    case TypedParamType.boolean:
      return { field, type: 'boolean', value: input.bool() };
    case TypedParamType.string:
      return { field, type: 'string', value: input.string(Limits.REMOTE_STRING_MAX) };
    default:
      throw new XdrDecodeError('remote_typed_param', `field ${JSON.stringify(field)} has unknown type ${type}`);
  }
}

export function encodeTypedParam(output: XdrOut, param: TypedParam): void {
  output.string(param.field, Limits.REMOTE_STRING_MAX).int(TypedParamType[param.type]);
  switch (param.type) {
    case 'int':
      output.int(param.value);
      return;
    case 'uint':
      output.uint(param.value);
      return;
    case 'llong':
      output.hyper(param.value);
      return;
    case 'ullong':
      output.uhyper(param.value);
      return;
    case 'double':
      output.double(param.value);
      return;
    case 'boolean':
      output.bool(param.value);
      return;
    case 'string':
      output.string(param.value, Limits.REMOTE_STRING_MAX);
  }
}

/**
 * The params as a plain object keyed by field. 64-bit values become numbers: exact below 2^53
 * (8 PiB for byte counts), which job statistics never reach; the list keeps them exact.
 * A repeated field (libvirt repeats none in job stats) keeps its last value.
 */
export function typedParamsObject(params: readonly TypedParam[]): Record<string, TypedParamValue> {
  const object: Record<string, TypedParamValue> = {};
  for (const param of params) object[param.field] = typeof param.value === 'bigint' ? Number(param.value) : param.value;
  return object;
}
