import { PACKET_HEADER_BYTES, PACKET_MAX_BYTES } from './protocol.js';

/**
 * libvirt RPC framing (virnetprotocol.x): a big-endian length word that counts itself, six
 * header words, then the XDR body. Pure: bytes in, packets out.
 */

export interface PacketHeader {
  program: number;
  version: number;
  procedure: number;
  type: number;
  serial: number;
  status: number;
}

export interface Packet {
  header: PacketHeader;
  body: Buffer;
  /** The whole packet as it came, length word included: what a capture stores. */
  raw: Buffer;
}

export type PacketFrame = { kind: 'packet'; packet: Packet } | { kind: 'bad-length'; length: number; raw: Buffer };

export function encodePacket(header: PacketHeader, body: Buffer = Buffer.alloc(0)): Buffer {
  const packet = Buffer.alloc(PACKET_HEADER_BYTES + body.length);
  packet.writeUInt32BE(packet.length, 0);
  packet.writeUInt32BE(header.program, 4);
  packet.writeUInt32BE(header.version, 8);
  packet.writeInt32BE(header.procedure, 12);
  packet.writeInt32BE(header.type, 16);
  packet.writeUInt32BE(header.serial, 20);
  packet.writeInt32BE(header.status, 24);
  body.copy(packet, PACKET_HEADER_BYTES);
  return packet;
}

/** Reads one whole packet (as PacketSplitter returns it, or a capture). */
export function decodePacket(raw: Buffer): Packet {
  return {
    header: {
      program: raw.readUInt32BE(4),
      version: raw.readUInt32BE(8),
      procedure: raw.readInt32BE(12),
      type: raw.readInt32BE(16),
      serial: raw.readUInt32BE(20),
      status: raw.readInt32BE(24),
    },
    body: raw.subarray(PACKET_HEADER_BYTES),
    raw,
  };
}

export function isValidPacketLength(length: number): boolean {
  return length >= PACKET_HEADER_BYTES && length <= PACKET_MAX_BYTES;
}

/**
 * Cuts a byte stream into packets; chunks may split or join packets anywhere. A length word
 * out of range means the stream can no longer be followed: it yields one 'bad-length' frame
 * and nothing after it, ever (the connection must be closed). Chunks are kept, not copied
 * (a stream never reuses them), and joined once per packet, so a 32 MiB reply in 64 KiB
 * chunks costs one copy, not one per chunk.
 */
export class PacketSplitter {
  private parts: Buffer[] = [];
  private partBytes = 0;
  private broken = false;

  push(chunk: Buffer): PacketFrame[] {
    if (this.broken || chunk.length === 0) return [];
    this.parts.push(chunk);
    this.partBytes += chunk.length;
    const frames: PacketFrame[] = [];
    while (this.partBytes >= 4) {
      const length = this.lengthWord();
      if (!isValidPacketLength(length)) {
        this.broken = true;
        frames.push({ kind: 'bad-length', length, raw: this.joined().subarray(0, 64) });
        this.parts = [];
        this.partBytes = 0;
        break;
      }
      if (this.partBytes < length) break;
      const all = this.joined();
      frames.push({ kind: 'packet', packet: decodePacket(all.subarray(0, length)) });
      const rest = all.subarray(length);
      this.parts = rest.length > 0 ? [rest] : [];
      this.partBytes = rest.length;
    }
    return frames;
  }

  /** Bytes of a packet begun but not finished: non-zero at end of stream means it was cut short. */
  get pendingBytes(): number {
    return this.partBytes;
  }

  private lengthWord(): number {
    const first = this.parts[0] as Buffer;
    return first.length >= 4 ? first.readUInt32BE(0) : this.joined().readUInt32BE(0);
  }

  private joined(): Buffer {
    if (this.parts.length > 1) this.parts = [Buffer.concat(this.parts, this.partBytes)];
    return this.parts[0] as Buffer;
  }
}
