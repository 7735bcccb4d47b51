/**
 * Types for the part of @stellar/js-xdr 4.0 this folder uses: its reader and writer and its
 * primitive codecs. Version 4 ships no declarations (5 does, but needs Node 22).
 */
declare module '@stellar/js-xdr' {
  namespace XDR {
    class XdrReader {
      constructor(source: Buffer);
      readonly eof: boolean;
      remainingBytes(): number;
    }
    class XdrWriter {
      constructor(initialSize?: number);
      finalize(): Buffer;
    }
    interface PrimitiveCodec<T> {
      read(reader: XdrReader): T;
      write(value: T, writer: XdrWriter): void;
    }
    interface LargeInt {
      toBigInt(): bigint;
    }
    interface LargeIntCodec {
      read(reader: XdrReader): LargeInt;
      write(value: bigint, writer: XdrWriter): void;
    }
    interface SizedCodec<R, W> {
      read(reader: XdrReader): R;
      write(value: W, writer: XdrWriter): void;
    }
    const Int: PrimitiveCodec<number>;
    const UnsignedInt: PrimitiveCodec<number>;
    const Double: PrimitiveCodec<number>;
    const Hyper: LargeIntCodec;
    const UnsignedHyper: LargeIntCodec;
    const String: new (maxLength?: number) => SizedCodec<Buffer, string | Buffer>;
    const Opaque: new (length: number) => SizedCodec<Buffer, Buffer>;
  }
  export = XDR;
}
