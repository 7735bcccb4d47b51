/**
 * The SIMULATED engine's QEMU speaks QMP as QEMU 7.2 does: the project's own QMP client and the
 * lab's MigrationDriver (which drive real QEMU in lab-qemu.test.ts) run a hybrid migration on
 * it over unix sockets, and see the statuses and events of test/fixtures/qmp.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { migrateOnce } from '../../src/lab/migrate.js';
import { Orchestrator } from '../../src/lab/orchestrator.js';
import { SimEngine } from '../../src/lab/sim/engine.js';
import { parseNovaLine } from '../../src/sources/logs/nova-parse.js';
import { parseTimeZone } from '../../src/config/timezone.js';
import { SimCloud } from '../../src/lab/sim/cloud.js';
import { QmpCommandError } from '../../src/sources/qmp/client.js';
import { openQmpSession } from '../../src/sources/qmp/transports.js';
import type { QmpSession } from '../../src/sources/qmp/client.js';

const MiB = 1024 * 1024;

describe('SIMULATED QEMU over QMP', () => {
  let dir = '';
  let cloud: SimCloud;
  const sessions: QmpSession[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lme-simqmp-'));
    cloud = new SimCloud(dir, ['src', 'dst'], 125_000_000);
  });
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
    await cloud.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function vm(host: string, incoming: boolean): Promise<{ orchestrator: QmpSession; observer: QmpSession }> {
    const guest = { ramBytes: 256 * MiB, allocatedBytes: 96 * MiB, stressedBytes: 64 * MiB };
    const sockets = [join(dir, `v-${host}.qmp`), join(dir, `v-${host}.observer.qmp`)];
    await cloud.startQemu({ name: `v-${host}`, host, guest, qmpSockets: sockets, incoming });
    const orchestrator = await openQmpSession({ kind: 'unix', path: sockets[0] as string });
    const observer = await openQmpSession({ kind: 'unix', path: sockets[1] as string });
    sessions.push(orchestrator, observer);
    return { orchestrator, observer };
  }

  it('greets as QEMU 7.2 (SIMULATED), answers query-status and refuses unknown commands as QEMU does', async () => {
    const { orchestrator } = await vm('src', false);
    expect(JSON.stringify((orchestrator as QmpSession & { greeting?: unknown }).greeting)).toContain('SIMULATED');
    expect(await orchestrator.execute('query-status')).toEqual({ status: 'running', singlestep: false, running: true });
    expect(await orchestrator.execute('query-migrate')).toEqual({});
    await expect(orchestrator.execute('no-such-command')).rejects.toThrow(QmpCommandError);
    await expect(orchestrator.execute('migrate-start-postcopy')).rejects.toThrow(/after migration has been started/);
  });

  it('migrates hybrid under the MigrationDriver: statuses, events on every monitor, final figures, counter files', async () => {
    const src = await vm('src', false);
    const dst = await vm('dst', true);
    expect(await dst.orchestrator.execute('query-status')).toMatchObject({ status: 'inmigrate', running: false });
    const observed: string[] = [];
    src.observer.on('event', (e) => observed.push(e.event === 'MIGRATION' ? `MIGRATION ${String(e.data?.status)}` : e.event));
    const outcome = await migrateOnce(
      { source: src.orchestrator, destination: dst.orchestrator },
      { mode: 'hybrid', uri: `unix:${join(dir, 'v-dst.migration')}`, maxBandwidth: 200 * MiB },
      20_000,
    );
    expect(outcome.source.statuses.map((s) => s.status)).toEqual(['setup', 'active', 'postcopy-active', 'completed']);
    expect(outcome.source.passes).toEqual([1, 2, 3]);
    expect(outcome.postcopyRequested?.afterPass).toBe(2);
    expect(outcome.destination?.finalStatus).toBe('completed');
    expect(outcome.destination?.events.map((e) => e.event)).toEqual(expect.arrayContaining(['MIGRATION', 'RESUME']));
    const ram = outcome.source.final?.ram ?? {};
    expect(ram['postcopy-bytes']).toBe(64 * MiB);
    expect(ram.transferred).toBe((ram['precopy-bytes'] ?? 0) + (ram['postcopy-bytes'] ?? 0) + (ram['downtime-bytes'] ?? 0));
    expect(outcome.source.final?.['total-time']).toBeGreaterThan(0);
    // The order of test/fixtures/qmp/events.7.2.src.hybrid.json.
    expect(observed).toEqual(['MIGRATION setup', 'MIGRATION_PASS', 'MIGRATION active', 'MIGRATION_PASS', 'MIGRATION postcopy-active', 'STOP', 'MIGRATION_PASS', 'MIGRATION completed']);
    expect(await src.orchestrator.execute('query-status')).toMatchObject({ status: 'postmigrate', running: false });
    expect(await dst.orchestrator.execute('query-status')).toMatchObject({ status: 'running', running: true });
    await cloud.writeCounters();
    const srcDev = await readFile(cloud.netdevPath('src'), 'utf8');
    const txBytes = Number(/mig0:\s+(?:\d+\s+){8}(\d+)/.exec(srcDev)?.[1]);
    expect(txBytes / (ram.transferred ?? 1)).toBeGreaterThan(1);
    expect(txBytes / (ram.transferred ?? 1)).toBeLessThan(1.002);
  });

  it('fails a migration to a URI nobody listens on, with error-desc', async () => {
    const src = await vm('src', false);
    await src.orchestrator.execute('migrate', { uri: `unix:${join(dir, 'nobody.migration')}` });
    expect(await src.orchestrator.execute('query-migrate')).toMatchObject({ status: 'failed', 'error-desc': expect.stringContaining('SIMULATED') });
  });
});

describe('the orchestrator (on the SIMULATED engine) writes nova-compute\'s lines on each host\'s log', () => {
  it('in nova\'s order: preparation, downtime step, progress, switch to post-copy, lifecycle events, completion and the post steps', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lme-simnova-'));
    const engine = await SimEngine.create(dir, 125_000_000);
    try {
      const orchestrator = new Orchestrator({ engine, maxBandwidth: 125_000_000, timeoutMs: 20_000, postMigrationMs: 100 });
      const spec = { name: 'nv', flavor: 'xl', memoryMiB: 256, fillMiB: 16, stressedMiB: 64, instanceUuid: randomUUID(), guest: 'dirty' as const, labels: {} };
      const source = await orchestrator.boot(spec, 'src');
      const migration = await orchestrator.migrate(source);
      expect(migration.running.host).toBe('dst');
      await migration.running.stop();
      const zone = parseTimeZone('UTC');
      const events = async (host: 'src' | 'dst') =>
        (await readFile(engine.hosts[host].novaLog, 'utf8'))
          .trimEnd()
          .split('\n')
          .map((line) => parseNovaLine(line, zone))
          .map((p) => {
            expect(p.kind).toBe('event');
            if (p.kind !== 'event') return '';
            expect(p.instanceUuid).toBe(spec.instanceUuid);
            return p.event.kind === 'lifecycle' ? `lifecycle ${p.event.state}` : p.event.kind;
          });
      expect(await events('src')).toEqual([
        'pre-live-migration', 'downtime-step', 'progress', 'postcopy-switch', 'lifecycle Postcopy started',
        'lifecycle Migration completed', 'completed', 'post-migration-started', 'success',
      ]);
      expect(await events('dst')).toEqual(['lifecycle Started', 'lifecycle Resumed', 'post-operation-started']);
    } finally {
      await engine.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
