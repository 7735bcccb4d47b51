import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LocalHost } from '../../src/hosts/local.js';
import { connectFirst, READ_ONLY_SOCKETS, READ_WRITE_SOCKETS, socketCandidates } from '../../src/sources/libvirt/socket.js';

describe('libvirt socket discovery', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lme-libvirt-socket-'));
  let server: Server | undefined;

  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('tries the read-only sockets of libvirtd, then of virtqemud, unless read-write is asked for or a path given', () => {
    expect(socketCandidates({})).toEqual(['/run/libvirt/libvirt-sock-ro', '/run/libvirt/virtqemud-sock-ro']);
    expect(socketCandidates({ readOnly: false })).toEqual(READ_WRITE_SOCKETS);
    expect(socketCandidates({ socketPath: '/srv/x.sock', readOnly: false })).toEqual(['/srv/x.sock']);
    expect(READ_ONLY_SOCKETS.every((path) => path.endsWith('-ro'))).toBe(true);
  });

  it('connects to the first candidate that accepts, past those that do not exist', async () => {
    const listening = join(dir, 'virtqemud-sock-ro');
    server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server?.listen(listening, resolve));
    const { path, stream } = await connectFirst(new LocalHost('here'), [join(dir, 'libvirt-sock-ro'), listening]);
    stream.destroy();
    expect(path).toBe(listening);
  });

  it('names every candidate and why it failed when none accepts', async () => {
    const missing = [join(dir, 'a'), join(dir, 'b')];
    await expect(connectFirst(new LocalHost('here'), missing)).rejects.toMatchObject({
      code: 'LME_LIBVIRT_CONNECT',
      message: `cannot connect to libvirt on host here: ${missing[0]}: connect ENOENT ${missing[0]}; ${missing[1]}: connect ENOENT ${missing[1]}`,
    });
  });
});
