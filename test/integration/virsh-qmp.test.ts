import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import { QmpCommandError } from '../../src/sources/qmp/client.js';
import { parseQueryMigrate } from '../../src/sources/qmp/parse.js';
import { isQemuGone, openQmpSession } from '../../src/sources/qmp/transports.js';
import type { QmpEndpoint, QmpEvent } from '../../src/qemu/types.js';
import { VirshError, VirshQmpSession } from '../../src/sources/qmp/virsh.js';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { domainXml, isAlive, LIBVIRT_URI, run, virsh, waitFor } from '../helpers/libvirtd.js';
import { rejection } from '../helpers/rejection.js';

/** A name no shell would survive: spaces, both quotes, a dollar and a leading dash. */
const DOMAIN = `-lme test 'it"s' $HOME ${process.pid}`;
const URI = LIBVIRT_URI;

async function destroyDomain(): Promise<void> {
  try {
    await run('virsh', ['-c', URI, 'destroy', '--domain', DOMAIN]);
  } catch {
    // Already gone (a test destroys it on purpose).
  }
}


const ENDPOINT: QmpEndpoint = { kind: 'virsh', domain: DOMAIN, uri: URI, virshPath: 'virsh' };
const workDir = mkdtempSync(join(tmpdir(), 'lme-virsh-'));

describe.runIf(requireEnvironment(missingTools('virsh', 'libvirtd', 'virtlogd', 'qemu-system-x86_64'), needsRoot()))(
  'QMP through virsh against a real libvirtd',
  () => {
    let session: VirshQmpSession;

    beforeAll(async () => {
      // libvirtd itself is started once per run by test/global-setup.ts.
      const xmlPath = join(workDir, 'domain.xml');
      writeFileSync(xmlPath, domainXml(DOMAIN));
      await virsh('create', xmlPath, '--paused');
      session = (await openQmpSession(ENDPOINT, { connectTimeoutMs: 10_000 })) as VirshQmpSession;
    });

    afterAll(async () => {
      await session?.close();
      await destroyDomain();
      rmSync(join('/var/log/libvirt/qemu', `${DOMAIN}.log`), { force: true });
      rmSync(workDir, { recursive: true, force: true });
    });

    it('runs query-migrate and query-status on a domain whose name no shell would take', async () => {
      expect(session).toBeInstanceOf(VirshQmpSession);
      expect(parseQueryMigrate(await session.execute('query-migrate'), session.target)).toEqual({ status: 'none', incoming: false });
      expect(await session.execute('query-status')).toMatchObject({ running: false, status: expect.stringMatching(/paused|prelaunch/) });
    });

    it('passes arguments to QEMU', async () => {
      const caps = [{ capability: 'events', state: true }];
      await session.execute('migrate-set-capabilities', { capabilities: caps });
      const after = await session.execute<{ capability: string; state: boolean }[]>('query-migrate-capabilities');
      expect(after.find((c) => c.capability === 'events')?.state).toBe(true);
    });

    it('measures a qemu-monitor-command round trip', async () => {
      const times: number[] = [];
      for (let i = 0; i < 20; i++) {
        const start = performance.now();
        await session.execute('query-migrate');
        times.push(performance.now() - start);
      }
      times.sort((a, b) => a - b);
      console.log(`virsh qemu-monitor-command round trip: median ${times[10]!.toFixed(1)} ms, max ${times[19]!.toFixed(1)} ms`);
      expect(times[10]).toBeLessThan(2000);
    });

    it('emits STOP and RESUME from virsh qemu-monitor-event with QEMU time stamps', async () => {
      const events: QmpEvent[] = [];
      session.on('event', (event) => events.push(event));
      const names = (): string[] => events.map((e) => e.event);
      // The event stream registers with libvirtd asynchronously (virsh prints nothing when it is
      // ready), so toggle until both events have come through.
      await waitFor(
        async () => {
          await virsh('resume', '--domain', DOMAIN);
          await virsh('suspend', '--domain', DOMAIN);
          await new Promise((resolve) => setTimeout(resolve, 100));
          return names().includes('RESUME') && names().includes('STOP');
        },
        'RESUME and STOP events',
      );
      const stop = events.find((e) => e.event === 'STOP')!;
      expect(Math.abs(stop.timestamp.seconds - Date.now() / 1000)).toBeLessThan(60);
      expect(stop.timestamp.microseconds).toBeGreaterThanOrEqual(0);
    });

    it("maps QEMU's error reply to LME_QMP_COMMAND", async () => {
      const err = await rejection(session.execute('no-such-command'));
      expect(err).toBeInstanceOf(QmpCommandError);
      expect(err.message).toContain('CommandNotFound: The command no-such-command has not been found');
    });

    it('maps an unknown domain to LME_VIRSH_FAILED with its stderr', async () => {
      const missing = `lme-no-such-domain-${process.pid}`;
      const direct = await rejection(VirshQmpSession.open({ domain: missing, uri: URI, virshPath: 'virsh' }));
      expect(direct).toBeInstanceOf(VirshError);
      expect(direct.code).toBe('LME_VIRSH_FAILED');
      expect(direct.message).toContain(`failed to get domain '${missing}'`);
      const viaTransport = await rejection(openQmpSession({ kind: 'virsh', domain: missing, uri: URI, virshPath: 'virsh' }));
      expect(viaTransport.code).toBe('LME_QMP_CONNECT');
      expect(isQemuGone(viaTransport)).toBe(true);
    });

    it('maps a virsh that cannot run to LME_VIRSH_FAILED', async () => {
      const err = await rejection(VirshQmpSession.open({ domain: DOMAIN, virshPath: join(workDir, 'no-virsh') }));
      expect(err.code).toBe('LME_VIRSH_FAILED');
      expect(err.message).toContain('ENOENT');
    });

    it('kills its event process on close()', async () => {
      const other = await VirshQmpSession.open({ domain: DOMAIN, uri: URI, virshPath: 'virsh' });
      const pid = other.eventStreamPid!;
      expect(isAlive(pid)).toBe(true);
      await other.close();
      expect(isAlive(pid)).toBe(false);
      expect((await rejection(other.execute('query-status'))).code).toBe('LME_QMP_CLOSED');
    });

    it('closes itself when the domain goes away', async () => {
      const closed = new Promise<Error>((resolve) => session.on('close', resolve));
      const pid = session.eventStreamPid!;
      await destroyDomain();
      const err = await rejection(session.execute('query-status'));
      expect(err).toBeInstanceOf(VirshError);
      expect((err as VirshError).domainGone).toBe(true);
      expect(await closed).toBe(err);
      await waitFor(async () => !isAlive(pid), 'event process to exit');
    });
  },
);
