import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalHost } from '../../src/hosts/local.js';
import { isQemuGone } from '../../src/sources/qmp/transports.js';

describe('LocalHost.connectTcp (a real loopback listener)', () => {
  let server: Server;
  let port = 0;

  beforeAll(async () => {
    // Echoes what it receives, upper-cased, so the test sees both directions of the stream.
    server = createServer((socket) => socket.on('data', (chunk: Buffer) => socket.write(chunk.toString().toUpperCase())));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    port = typeof address === 'object' && address ? address.port : 0;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('opens a byte stream in both directions', async () => {
    const stream = await new LocalHost('here').connectTcp('127.0.0.1', port);
    const reply = new Promise<string>((resolve) => stream.once('data', (chunk: Buffer) => resolve(chunk.toString())));
    stream.write('qmp');
    expect(await reply).toBe('QMP');
    stream.destroy();
  });

  it('a port nothing listens on is refused, which reads as "QEMU not running"', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const address = closed.address();
    const closedPort = typeof address === 'object' && address ? address.port : 0;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const err = await new LocalHost('here').connectTcp('127.0.0.1', closedPort).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ECONNREFUSED' });
    expect(isQemuGone(err)).toBe(true);
  });
});
