import { readdirSync, readFileSync } from 'node:fs';

const DIR = new URL('../fixtures/libvirt/', import.meta.url);

/** A packet captured from libvirt 9.0 (test/fixtures/libvirt/README.md), by its name without `libvirt-9.0.` and `.bin`. */
export function capturedPacket(name: string): Buffer {
  return readFileSync(new URL(`libvirt-9.0.${name}.bin`, DIR));
}

export function allCapturedPackets(): { name: string; raw: Buffer }[] {
  return readdirSync(DIR)
    .filter((file) => file.endsWith('.bin'))
    .sort()
    .map((file) => ({ name: file, raw: readFileSync(new URL(file, DIR)) }));
}

/** The same captured packet as the reply to another call: only its serial word changes. */
export function withSerial(raw: Buffer, serial: number): Buffer {
  const copy = Buffer.from(raw);
  copy.writeUInt32BE(serial, 20);
  return copy;
}

/** The domain in the captured replies (a transient, paused domain of the integration test). */
export const CAPTURED_DOMAIN = {
  name: `lme rpc "t" 'x' $HOME;|&<>*? ü-1715`,
  uuid: '4ad22230-c939-4ba0-b18e-b32d38bae65a',
  id: 1,
};
