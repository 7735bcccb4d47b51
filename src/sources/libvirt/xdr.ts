import XDR from '@stellar/js-xdr';

/**
 * XDR (RFC 4506) reading and writing on top of @stellar/js-xdr's primitives, which check
 * bounds, zero padding, lengths against their maximum and 64-bit ranges. Structs are
 * composed from these calls in wire.ts, in the order the .x files declare their fields.
 * A read past the end or a bad length throws; decodeXdr() turns that into XdrDecodeError.
 */

export class XdrDecodeError extends Error {
  constructor(
    readonly what: string,
    readonly detail: string,
  ) {
    super(`${what}: ${detail}`);
    this.name = 'XdrDecodeError';
  }
}

export class XdrIn {
  private readonly reader: XDR.XdrReader;

  constructor(bytes: Buffer) {
    this.reader = new XDR.XdrReader(bytes);
  }

  int(): number {
    return XDR.Int.read(this.reader);
  }

  uint(): number {
    return XDR.UnsignedInt.read(this.reader);
  }

  hyper(): bigint {
    return XDR.Hyper.read(this.reader).toBigInt();
  }

  uhyper(): bigint {
    return XDR.UnsignedHyper.read(this.reader).toBigInt();
  }

  double(): number {
    return XDR.Double.read(this.reader);
  }

  /** libvirt sends booleans as int: any non-zero value is true. */
  bool(): boolean {
    return this.int() !== 0;
  }

  string(maxBytes: number): string {
    return new XDR.String(maxBytes).read(this.reader).toString('utf8');
  }

  opaque(length: number): Buffer {
    return Buffer.from(new XDR.Opaque(length).read(this.reader));
  }

  /** An XDR optional-data (`type *name`): a boolean, then the value when it is true. */
  optional<T>(read: (input: XdrIn) => T): T | null {
    return this.bool() ? read(this) : null;
  }

  /** A variable-length array `type name<max>`. */
  array<T>(maxLength: number, read: (input: XdrIn) => T): T[] {
    const length = this.uint();
    if (length > maxLength) throw new XdrDecodeError('array', `length ${length} over its maximum ${maxLength}`);
    // Every XDR item takes at least 4 bytes: a length past that is a corrupt packet, not a huge list.
    if (length * 4 > this.reader.remainingBytes()) {
      throw new XdrDecodeError('array', `length ${length} but only ${this.reader.remainingBytes()} bytes left`);
    }
    const items: T[] = [];
    for (let i = 0; i < length; i++) items.push(read(this));
    return items;
  }

  remaining(): number {
    return this.reader.remainingBytes();
  }
}

export class XdrOut {
  private readonly writer = new XDR.XdrWriter(256);

  int(value: number): this {
    XDR.Int.write(value, this.writer);
    return this;
  }

  uint(value: number): this {
    XDR.UnsignedInt.write(value, this.writer);
    return this;
  }

  hyper(value: bigint): this {
    XDR.Hyper.write(value, this.writer);
    return this;
  }

  uhyper(value: bigint): this {
    XDR.UnsignedHyper.write(value, this.writer);
    return this;
  }

  double(value: number): this {
    XDR.Double.write(value, this.writer);
    return this;
  }

  bool(value: boolean): this {
    return this.int(value ? 1 : 0);
  }

  string(value: string, maxBytes: number): this {
    new XDR.String(maxBytes).write(value, this.writer);
    return this;
  }

  opaque(value: Buffer, length: number): this {
    new XDR.Opaque(length).write(value, this.writer);
    return this;
  }

  optional<T>(value: T | null | undefined, write: (output: XdrOut, value: T) => void): this {
    const present = value !== null && value !== undefined;
    this.bool(present);
    if (present) write(this, value);
    return this;
  }

  array<T>(items: readonly T[], write: (output: XdrOut, item: T) => void): this {
    this.uint(items.length);
    for (const item of items) write(this, item);
    return this;
  }

  bytes(): Buffer {
    return Buffer.from(this.writer.finalize());
  }
}

/**
 * Reads a whole XDR body. Any failure, including bytes left over, becomes an XdrDecodeError
 * that names the struct, so a caller never sees the library's own exceptions.
 */
export function decodeXdr<T>(what: string, bytes: Buffer, read: (input: XdrIn) => T): T {
  let value: T;
  let input: XdrIn;
  try {
    input = new XdrIn(bytes);
    value = read(input);
  } catch (err) {
    if (err instanceof XdrDecodeError) throw new XdrDecodeError(`${what}: ${err.what}`, err.detail);
    throw new XdrDecodeError(what, err instanceof Error ? err.message : String(err));
  }
  const left = input.remaining();
  if (left !== 0) throw new XdrDecodeError(what, `${left} bytes left over after the struct`);
  return value;
}
