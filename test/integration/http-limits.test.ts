/**
 * Half-open and slow HTTP clients never keep a scrape out (issue 13, item 9): past
 * --web.max-connections the oldest idle connection is closed, and a connection that sends
 * nothing is closed after the header timeout. Real sockets against the exporter's CLI.
 */
import { connect, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExporterProcess, writeConfig } from '../helpers/exporter-process.js';

const CAP = 40;

function open(url: string, send: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      if (send) socket.write(send);
      resolve(socket);
    });
    socket.on('error', reject);
  });
}

describe('HTTP connection limits', () => {
  let dir: string;
  let exporter: ExporterProcess;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lme-http-limits-'));
    exporter = await ExporterProcess.start(await writeConfig(dir, { state_file: null, libvirt: { discover: 'off' } }), ['--web.max-connections', String(CAP)]);
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await exporter?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('answers /metrics with the cap reached by half-open clients (slowloris), closing the oldest of them', async () => {
    const closed: number[] = [];
    for (let i = 0; i < CAP * 2; i++) {
      // Half a request: a request line and one header, never the blank line that ends them.
      const socket = await open(exporter.url, 'GET /metrics HTTP/1.1\r\nHost: x\r\n');
      socket.on('close', () => closed.push(i));
      sockets.push(socket);
    }
    for (let i = 0; i < 10; i++) {
      const res = await fetch(`${exporter.url}/metrics`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('livemig_build_info');
    }
    await expect.poll(() => closed.length, { timeout: 5_000 }).toBeGreaterThanOrEqual(CAP);
    // The oldest went first.
    expect(Math.min(...closed)).toBe(0);
  }, 60_000);
});
