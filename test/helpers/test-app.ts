import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { createApp, type ServerDeps } from '../../src/server/app.js';

/** The exporter's express app on a free loopback port, with empty defaults for what a test does not give. */
export async function startTestApp(deps: Partial<ServerDeps> = {}): Promise<{ server: Server; base: string; close(): Promise<void> }> {
  const app = createApp({
    telemetryPath: '/metrics',
    version: 'test',
    logger: pino({ level: 'silent' }),
    metricsContentType: 'text/plain; version=0.0.4; charset=utf-8',
    renderMetrics: async () => '',
    listMigrations: () => [],
    getMigration: () => undefined,
    activeMigrations: () => [],
    isReady: () => true,
    describeSources: () => [],
    ...deps,
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    server,
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
