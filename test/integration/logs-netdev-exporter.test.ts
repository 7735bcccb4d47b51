/**
 * The exporter in this process, following a nova-compute log whose opening lines are already
 * there when it starts (start_at: start), and reading a host's interface counters from a file:
 * the migration that the logs' very first read opens must get its interface figures, so the
 * interface reads from before its start are kept although no QEMU monitor reports it.
 */
import { appendFile, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { runExporter } from '../../src/exporter.js';
import type { MigrationRecord } from '../../src/records/record.js';

const UUID = '0b5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f';
const CTX = '[None req-6f0e2a1b-3c4d-4e5f-8a9b-0c1d2e3f4a5b 8f3e9a7c2b1d4e6f8a9b0c1d2e3f4a5b 4a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d - - default default]';

function nova(ms: number, level: string, logger: string, message: string, ctx = CTX): string {
  const d = new Date(ms).toISOString();
  return `${d.slice(0, 10)} ${d.slice(11, 23)} 4242 ${level} ${logger} ${ctx} [instance: ${UUID}] ${message}\n`;
}

const progress = (secs: number, processed: number, remaining: number) =>
  `Migration running for ${secs} secs, memory ${Math.round((remaining * 100) / 4294967296)}% remaining (bytes processed=${processed}, remaining=${remaining}, total=4294967296); disk 100% remaining (bytes processed=0, remaining=0, total=0).`;

const DRV = 'nova.virt.libvirt.driver';
const MGR = 'nova.compute.manager';

/** /proc/net/dev with one interface, written whole and renamed into place so no read sees half of it. */
async function writeCounters(path: string, bytes: number): Promise<void> {
  const text = [
    'Inter-|   Receive                                                |  Transmit',
    ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
    `  mig0: ${Math.round(bytes / 50)} ${Math.round(bytes / 50_000)} 0 0 0 0 0 0 ${bytes} ${Math.round(bytes / 1500)} 0 0 0 0 0 0`,
    '',
  ].join('\n');
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

describe('exporter: a nova migration opened by the logs first read', () => {
  let dir: string;
  let abort: AbortController | undefined;
  let feeding: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  afterEach(async () => {
    clearInterval(feeding);
    abort?.abort();
    await running;
    await rm(dir, { recursive: true, force: true });
  });

  it('a nova migration opened by the first read of the logs gets its interface figures', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lme-logs-netdev-'));
    const log = join(dir, 'nova-compute.log');
    const counters = join(dir, 'net-dev');
    let sent = 1_000_000;
    await writeCounters(counters, sent);
    feeding = setInterval(() => void writeCounters(counters, (sent += 5_000_000)), 50);
    // Nova's opening lines, stamped a little ahead so that the counters are read before the start.
    const t0 = Date.now() + 1500;
    await writeFile(
      log,
      nova(t0 - 100, 'INFO', MGR, 'Took 1.40 seconds for pre_live_migration on destination host compute-2.') +
        nova(t0, 'DEBUG', DRV, 'Starting monitoring of live migration _live_migration /usr/lib/python3/dist-packages/nova/virt/libvirt/driver.py:11021') +
        nova(t0 + 500, 'INFO', DRV, progress(0, 0, 4294967296)),
    );
    const config = validateConfig(
      {
        state_file: null,
        libvirt: { discover: 'off' },
        hosts: [{ name: 'compute-1', interfaces: ['mig0'], netdev_path: counters }],
        netdev: { period: '100ms' },
        vms: [{ name: 'web-1', flavor: 'm', instance_uuid: UUID, monitors: [{ host: 'compute-1', qmp: { unix: join(dir, 'absent.qmp') } }] }],
        logs: [{ host: 'compute-1', path: log, kind: 'nova-compute', timezone: 'UTC' }],
        logs_options: { poll_interval: '100ms', start_at: 'start' },
      },
      '(test)',
    );
    abort = new AbortController();
    let url = '';
    running = runExporter({
      config,
      configFile: null,
      listen: { host: '127.0.0.1', port: 0 },
      telemetryPath: '/metrics',
      logger: pino({ level: 'silent' }),
      stopSignal: abort.signal,
      onListening: (u) => (url = u),
    });
    // The migration runs for longer than the reads an idle host keeps (64 at 100 ms), then ends.
    await new Promise((resolve) => setTimeout(resolve, t0 + 8000 - Date.now()));
    await appendFile(
      log,
      nova(t0 + 7500, 'DEBUG', DRV, progress(7, 5300000000, 0)) +
        nova(t0 + 7600, 'INFO', MGR, 'VM Migration completed (Lifecycle Event)', '[-]') +
        nova(t0 + 7610, 'INFO', DRV, 'Migration operation has completed') +
        nova(t0 + 7620, 'INFO', MGR, '_post_live_migration() is started..') +
        nova(t0 + 7700, 'INFO', MGR, 'Migrating instance to compute-2 finished successfully.'),
    );
    let record: MigrationRecord | undefined;
    await expect
      .poll(
        async () => {
          const records = ((await (await fetch(`${url}/api/v1/migrations`)).json()) as { data: MigrationRecord[] }).data;
          record = records.find((r) => r.vm === 'web-1' && r.interfaces);
          return record?.interfaces ? 'has interface figures' : `records: ${JSON.stringify(records)}`;
        },
        { timeout: 15_000, interval: 250 },
      )
      .toBe('has interface figures');
    expect(record?.source).toEqual({ host: 'compute-1', monitor: 'nova-compute log' });
    expect(record?.startedAt.value).toBe(t0);
    // Without a read from before the start (an idle host keeps only its last 64), there is no figure.
    expect(record?.interfaces?.sourceTransmitBytes, `interfaces: ${JSON.stringify(record?.interfaces)}`).toMatchObject({
      evidence: expect.stringMatching(/^netdev:compute-1 mig0 tx between reads at /),
    });
    // From the last read before t0 to the first after the end: about 7.6 s of 100 MB/s.
    expect(record?.interfaces?.sourceTransmitBytes?.value).toBeGreaterThan(500_000_000);
  }, 40_000);
});
