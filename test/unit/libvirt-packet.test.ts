import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodePacket, encodePacket, PacketSplitter, type PacketFrame } from '../../src/sources/libvirt/packet.js';
import { PACKET_MAX_BYTES, REMOTE_PROGRAM } from '../../src/sources/libvirt/protocol.js';
import { allCapturedPackets, capturedPacket } from '../helpers/libvirt-fixtures.js';

const captured = allCapturedPackets();
const stream = Buffer.concat(captured.map((p) => p.raw));

function rawPackets(frames: PacketFrame[]): Buffer[] {
  return frames.map((frame) => {
    if (frame.kind !== 'packet') throw new Error(`unexpected ${frame.kind} frame`);
    return frame.packet.raw;
  });
}

function splitInto(bytes: Buffer, cuts: number[]): Buffer[] {
  const offsets = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const offset of offsets) {
    chunks.push(bytes.subarray(start, offset));
    start = offset;
  }
  chunks.push(bytes.subarray(start));
  return chunks;
}

describe('libvirt packet framing', () => {
  it("reads the header of a captured reply: program, version, procedure, type, serial, status", () => {
    const { header, body } = decodePacket(capturedPacket('domain-get-state.paused-user.reply'));
    expect(header).toEqual({ program: REMOTE_PROGRAM, version: 1, procedure: 212, type: 1, serial: 209, status: 0 });
    expect(body.toString('hex')).toBe('0000000300000001');
  });

  it('writes packets whose length word counts itself, and reads them back', () => {
    const header = { program: REMOTE_PROGRAM, version: 1, procedure: 157, type: 0, serial: 7, status: 0 };
    const packet = encodePacket(header);
    expect(packet.toString('hex')).toBe('0000001c20008086000000010000009d000000000000000700000000');
    expect(decodePacket(packet).header).toEqual(header);
  });

  it('gives back every captured packet, coalesced into one chunk', () => {
    expect(rawPackets(new PacketSplitter().push(stream))).toEqual(captured.map((p) => p.raw));
  });

  it('gives back each captured packet when it is split in two at every byte boundary', () => {
    const wrong: string[] = [];
    for (const { name, raw } of captured) {
      for (let at = 0; at <= raw.length; at++) {
        const splitter = new PacketSplitter();
        const frames = rawPackets([...splitter.push(raw.subarray(0, at)), ...splitter.push(raw.subarray(at))]);
        if (frames.length !== 1 || !frames[0]?.equals(raw) || splitter.pendingBytes !== 0) wrong.push(`${name} split at ${at}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('gives back the whole captured stream fed one byte at a time', () => {
    const splitter = new PacketSplitter();
    const frames: PacketFrame[] = [];
    for (let i = 0; i < stream.length; i++) frames.push(...splitter.push(stream.subarray(i, i + 1)));
    expect(rawPackets(frames)).toEqual(captured.map((p) => p.raw));
  });

  it('gives back the same packets however the stream is cut (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 40 }), (cuts) => {
        const splitter = new PacketSplitter();
        const frames = splitInto(stream, cuts).flatMap((chunk) => splitter.push(chunk));
        expect(rawPackets(frames)).toEqual(captured.map((p) => p.raw));
      }),
    );
  });

  it('joins a 4 MiB packet sent in 1 KiB chunks', () => {
    const header = { program: REMOTE_PROGRAM, version: 1, procedure: 14, type: 1, serial: 3, status: 0 };
    const big = encodePacket(header, Buffer.alloc(4 * 1024 * 1024, 0x61));
    const splitter = new PacketSplitter();
    const frames: PacketFrame[] = [];
    for (let at = 0; at < big.length; at += 1024) frames.push(...splitter.push(big.subarray(at, at + 1024)));
    expect(frames).toHaveLength(1);
    expect(rawPackets(frames)[0]?.equals(big)).toBe(true);
  });

  it('keeps a packet cut short pending, never yields it', () => {
    const raw = capturedPacket('connect-list-all-domains.reply');
    const splitter = new PacketSplitter();
    expect(splitter.push(raw.subarray(0, raw.length - 1))).toEqual([]);
    expect(splitter.pendingBytes).toBe(raw.length - 1);
  });

  it.each([
    ['shorter than a header', 27],
    ['zero', 0],
    ['over 32 MiB', PACKET_MAX_BYTES + 1],
    ['all ones', 0xffffffff],
  ])('reports a length word that is %s once, after the good packets before it, then nothing more', (_what, length) => {
    const good = capturedPacket('auth-list.reply');
    const bad = Buffer.alloc(40, 0xab);
    bad.writeUInt32BE(length, 0);
    const splitter = new PacketSplitter();
    const frames = splitter.push(Buffer.concat([good, bad, good]));
    expect(frames.map((f) => f.kind)).toEqual(['packet', 'bad-length']);
    expect(frames[1]).toMatchObject({ kind: 'bad-length', length });
    expect(splitter.push(good)).toEqual([]);
  });

  it('never throws on arbitrary bytes (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 10 }), (chunks) => {
        const splitter = new PacketSplitter();
        for (const chunk of chunks) splitter.push(Buffer.from(chunk));
      }),
    );
  });
});
