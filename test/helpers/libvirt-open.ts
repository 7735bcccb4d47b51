/**
 * Opens a LibvirtClient on the socket given as argument and prints, as one JSON line, the
 * procedures called and how the open ended. Run as another user (runuser) to see what libvirt
 * asks of a client that is not root.
 */
import { createConnection } from 'node:net';
import { LivemigError } from '../../src/errors.js';
import { LibvirtClient } from '../../src/sources/libvirt/client.js';

const path = process.argv[2] ?? '';
const calls: string[] = [];
const stream = createConnection({ path });
await new Promise((resolve, reject) => stream.once('connect', resolve).once('error', reject));
try {
  const client = await LibvirtClient.open(stream, `unix:${path}`, {
    tap: (direction, packet) => calls.push(`${direction} ${packet.readInt32BE(12)} ${packet.readInt32BE(24)}`),
  });
  await client.close();
  console.log(JSON.stringify({ opened: true, calls }));
} catch (err) {
  const code = err instanceof LivemigError ? err.code : 'unknown';
  console.log(JSON.stringify({ opened: false, code, message: (err as Error).message, calls }));
}
