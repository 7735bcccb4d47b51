/**
 * The libvirt RPC client against real libvirt 9.0 daemons: the machine's own read-only socket
 * (found without configuration), and a private libvirtd (LibvirtDaemon, src/lab/libvirt-daemons.ts) for
 * everything that creates domains or restarts the daemon, so that other users of the shared
 * daemon are never disturbed and a restart of theirs never breaks this file.
 * LME_CAPTURE_LIBVIRT=1 writes the packets the unit tests replay to test/fixtures/libvirt/.
 */
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalHost } from '../../src/hosts/local.js';
import { LibvirtDaemon } from '../../src/lab/libvirt-daemons.js';
import { LibvirtClient } from '../../src/sources/libvirt/client.js';
import type { DomainEvent, JobCompletedEvent, LifecycleEvent } from '../../src/sources/libvirt/events.js';
import { decodePacket } from '../../src/sources/libvirt/packet.js';
import { MessageType, Procedure } from '../../src/sources/libvirt/protocol.js';
import { LibvirtCallError } from '../../src/sources/libvirt/remote-error.js';
import { openLibvirt, READ_ONLY_SOCKETS } from '../../src/sources/libvirt/socket.js';
import { encode, read, type DomainRef } from '../../src/sources/libvirt/wire.js';
import { missingTools, needsRoot, requireCapability, requireEnvironment } from '../helpers/env.js';
import { canConnect, domainXml, run, waitFor } from '../helpers/libvirtd.js';
import { TestSshd } from '../helpers/sshd.js';

const FIXTURES = new URL('../fixtures/libvirt/', import.meta.url);
const capturing = process.env.LME_CAPTURE_LIBVIRT === '1';
const host = new LocalHost('local');

/** Every packet both ways, so that a step can save the one it produced as a fixture. */
class Capture {
  readonly packets: { direction: 'in' | 'out'; raw: Buffer }[] = [];
  readonly tap = (direction: 'in' | 'out', raw: Buffer): void => {
    this.packets.push({ direction, raw: Buffer.from(raw) });
  };

  /** The last packet received for this procedure (a reply, or an event message). */
  last(procedure: number, type: number = MessageType.reply): Buffer {
    const found = this.packets.filter((p) => {
      if (p.direction !== 'in') return false;
      const { header } = decodePacket(p.raw);
      return header.procedure === procedure && header.type === type;
    });
    const packet = found.at(-1);
    if (!packet) throw new Error(`no packet for procedure ${procedure} captured`);
    return packet.raw;
  }

  save(name: string, procedure: number, type: number = MessageType.reply): void {
    if (!capturing) return;
    mkdirSync(FIXTURES, { recursive: true });
    writeFileSync(new URL(`libvirt-9.0.${name}.bin`, FIXTURES), this.last(procedure, type));
  }
}

/** Events as they come, with a wait for the next one that matches. */
class EventLog {
  readonly seen: DomainEvent[] = [];
  constructor(client: LibvirtClient) {
    client.on('event', (event) => this.seen.push(event));
  }

  async next<T extends DomainEvent>(after: number, match: (event: DomainEvent) => event is T, what: string): Promise<T> {
    let found: T | undefined;
    await waitFor(async () => (found = this.seen.slice(after).find(match)) !== undefined, `event ${what}`, 15_000);
    return found as T;
  }
}

const lifecycle =
  (domain: string, event: string, detail: string) =>
  (e: DomainEvent): e is LifecycleEvent =>
    e.kind === 'lifecycle' && e.domain.name === domain && e.event === event && e.detail === detail;

const summary = (events: DomainEvent[], domain: string): string[] =>
  events
    .filter((e) => e.domain.name === domain)
    .map((e) => (e.kind === 'lifecycle' ? `${e.event}/${e.detail}` : e.kind === 'migration-iteration' ? `iteration ${e.iteration}` : 'job-completed'));

describe.runIf(requireEnvironment(missingTools('libvirtd', 'virtlogd', 'virsh', 'unshare', 'mount'), needsRoot()))('libvirt RPC client on a real libvirtd', () => {
  it("finds this machine's read-only socket without configuration and talks to it", async (ctx) => {
    // test/global-setup.ts starts the shared libvirtd when it is down; other sessions on this
    // machine may stop theirs at any time, so outside CI its absence skips this one test.
    const up = (await canConnect(READ_ONLY_SOCKETS[0])) || (await canConnect(READ_ONLY_SOCKETS[1]));
    requireCapability(ctx, up ? null : `no libvirt read-only socket at ${READ_ONLY_SOCKETS.join(' or ')} right now`);
    const client = await openLibvirt(host);
    try {
      expect(client.target).toMatch(/^local:unix:\/run\/libvirt\/(libvirt|virtqemud)-sock-ro$/);
      expect(client.libVersion).toBeGreaterThanOrEqual(9_000_000);
      expect((await client.listAllDomains()).every((d) => typeof d.name === 'string')).toBe(true);
    } finally {
      await client.close();
    }
  });

  it("asks polkit for a user that is not root (AUTH_LIST, then AUTH_POLKIT) and reports libvirt's refusal", async (ctx) => {
    requireCapability(ctx, missingTools('runuser'));
    const polkitDaemon = await LibvirtDaemon.start({ network: { kind: 'new' }, readOnlyAuth: 'polkit' });
    try {
      chmodSync(polkitDaemon.dir, 0o755);
      chmodSync(join(polkitDaemon.dir, 'run'), 0o755);
      const script = new URL('../helpers/libvirt-open.ts', import.meta.url).pathname;
      const { stdout } = await run('runuser', ['-u', 'nobody', '--', process.execPath, '--import', 'tsx', script, polkitDaemon.roSocket], {
        cwd: new URL('../..', import.meta.url).pathname,
        env: { ...process.env, HOME: tmpdir() },
      });
      const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { opened: boolean; code?: string; message?: string; calls: string[] };
      console.log(`as nobody: ${JSON.stringify(result)}`);
      // No polkit daemon or system bus here, so libvirt refuses; with one, a rule decides.
      expect(result.calls).toEqual([`out ${Procedure.AUTH_LIST} 0`, `in ${Procedure.AUTH_LIST} 0`, `out ${Procedure.AUTH_POLKIT} 0`, `in ${Procedure.AUTH_POLKIT} 1`]);
      expect(result).toMatchObject({ opened: false, code: 'LME_LIBVIRT_AUTH' });
      expect(result.message).toMatch(/^libvirt unix:.* cannot authenticate: polkit refused: AUTH_POLKIT on libvirt unix:.* failed: libvirt error \(code \d+, domain \d+\): /);
    } finally {
      await polkitDaemon.stop();
    }
  }, 60_000);

  describe('on a private libvirtd', () => {
    let daemon: LibvirtDaemon;
    let client: LibvirtClient;
    let events: EventLog;
    const capture = new Capture();
    const workDir = join(tmpdir(), `lme-libvirt-client-${process.pid}`);
    // Names no shell would take as they are: quotes, blanks, metacharacters, non-ASCII.
    const transient = `lme rpc "t" 'x' $HOME;|&<>*? ü-${process.pid}`;
    const persistent = `lme rpc save $(id) \`x\` ü-${process.pid}`;
    const saveFile = join(workDir, 'saved.img');
    let domain: DomainRef;

    beforeAll(async () => {
      mkdirSync(workDir, { recursive: true, mode: 0o755 });
      daemon = await LibvirtDaemon.start({ network: { kind: 'new' } });
      client = await LibvirtClient.open(await host.connectUnix(daemon.roSocket), `unix:${daemon.roSocket}`, { tap: capture.tap });
      events = new EventLog(client);
      for (const event of ['LIFECYCLE', 'MIGRATION_ITERATION', 'JOB_COMPLETED'] as const) await client.registerDomainEvent(event);
      writeFileSync(join(workDir, 'transient.xml'), domainXml(transient));
      await daemon.virsh('create', join(workDir, 'transient.xml'), '--paused');
    }, 60_000);

    afterAll(async () => {
      await client?.close();
      if (daemon) {
        await daemon.virsh('destroy', persistent).catch(() => undefined);
        await daemon.virsh('undefine', persistent).catch(() => undefined);
        await daemon.stop();
      }
      rmSync(workDir, { recursive: true, force: true });
    }, 60_000);

    it('answers AUTH_LIST with none for root, opens read-only and reports its version', async () => {
      expect(client.libVersion).toBe(9_000_000);
      const started = performance.now();
      for (let i = 0; i < 200; i++) expect(await client.getLibVersion()).toBe(9_000_000);
      console.log(`round trip of CONNECT_GET_LIB_VERSION: ${((performance.now() - started) / 200).toFixed(3)} ms (mean of 200 sequential calls)`);
      capture.save('auth-list.reply', Procedure.AUTH_LIST);
      capture.save('connect-get-lib-version.reply', Procedure.CONNECT_GET_LIB_VERSION);
    });

    it('lists the domain with its name, UUID and id', async () => {
      const domains = await client.listAllDomains();
      const found = domains.find((d) => d.name === transient);
      expect(found, JSON.stringify(domains)).toBeDefined();
      domain = found as DomainRef;
      expect(domain.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(domain.id).toBeGreaterThan(0);
      const { stdout } = await daemon.virsh('domuuid', transient);
      expect(domain.uuid).toBe(stdout.trim());
      capture.save('connect-list-all-domains.reply', Procedure.CONNECT_LIST_ALL_DOMAINS);
    });

    it('reads state, XML and lookups of the domain', async () => {
      expect(await client.getState(domain)).toEqual({ state: 3, reason: 1, stateName: 'paused', reasonName: 'user' });
      capture.save('domain-get-state.paused-user.reply', Procedure.DOMAIN_GET_STATE);
      const xml = await client.getXmlDesc(domain);
      expect(xml).toContain(`<uuid>${domain.uuid}</uuid>`);
      expect(xml).toContain("<name>lme rpc &quot;t&quot; &apos;x&apos; $HOME;|&amp;&lt;&gt;*? ü-");
      capture.save('domain-get-xml-desc.reply', Procedure.DOMAIN_GET_XML_DESC);
      expect(await client.lookupByUuid(domain.uuid)).toEqual(domain);
      capture.save('domain-lookup-by-uuid.reply', Procedure.DOMAIN_LOOKUP_BY_UUID);
      expect(await client.lookupByName(transient)).toEqual(domain);
    });

    it('reads job stats of a domain with no job', async () => {
      expect(await client.getJobStats(domain)).toEqual({ type: 0, typeName: 'none', stats: {}, params: [] });
      capture.save('domain-get-job-stats.none.reply', Procedure.DOMAIN_GET_JOB_STATS);
    });

    it("decodes libvirt's error for an unknown domain into code, domain and message", async () => {
      const err = await client.lookupByName('lme-no-such-domain').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LibvirtCallError);
      const call = err as LibvirtCallError;
      expect([call.libvirtCode, call.libvirtDomain]).toEqual([42, 10]);
      expect(call.libvirtMessage).toBe("Domain not found: no domain with matching name 'lme-no-such-domain'");
      expect(call.message).toBe(
        `DOMAIN_LOOKUP_BY_NAME on libvirt unix:${daemon.roSocket} failed: libvirt error (code 42, domain 10): Domain not found: no domain with matching name 'lme-no-such-domain'`,
      );
      expect(call.code).toBe('LME_LIBVIRT_CALL');
      capture.save('domain-lookup-by-name.no-domain.error', Procedure.DOMAIN_LOOKUP_BY_NAME);
      const byUuid = (await client.lookupByUuid('00000000-0000-4000-8000-000000000001').catch((e: unknown) => e)) as LibvirtCallError;
      expect([byUuid.libvirtCode, byUuid.libvirtDomain]).toEqual([42, 10]);
      expect(byUuid.libvirtMessage).toContain("no domain with matching uuid '00000000-0000-4000-8000-000000000001'");
      expect(client.isClosed).toBe(false);
    });

    it('is refused a write procedure (DOMAIN_SUSPEND) on the read-only socket, and stays open', async () => {
      const err = (await client.call(Procedure.DOMAIN_SUSPEND, encode.domain(domain), read.nothing).catch((e: unknown) => e)) as LibvirtCallError;
      expect(err).toBeInstanceOf(LibvirtCallError);
      console.log(`read-only refusal: ${err.message}`);
      expect(err.libvirtCode).toBe(29); // VIR_ERR_OPERATION_DENIED
      expect(err.libvirtMessage).toMatch(/read only access/);
      capture.save('domain-suspend.read-only.error', Procedure.DOMAIN_SUSPEND);
      expect((await client.getState(domain)).stateName).toBe('paused');
    });

    it('delivers lifecycle events as virsh resumes, suspends and resumes the domain', async () => {
      const from = events.seen.length;
      await daemon.virsh('resume', transient);
      const resumed = await events.next(from, lifecycle(transient, 'resumed', 'unpaused'), 'resumed/unpaused');
      expect(resumed.domain).toEqual(domain);
      expect([resumed.eventCode, resumed.detailCode]).toEqual([4, 0]);
      capture.save('event.lifecycle.resumed-unpaused', Procedure.DOMAIN_EVENT_CALLBACK_LIFECYCLE, MessageType.message);
      await daemon.virsh('suspend', transient);
      await events.next(from, lifecycle(transient, 'suspended', 'paused'), 'suspended/paused');
      capture.save('event.lifecycle.suspended-paused', Procedure.DOMAIN_EVENT_CALLBACK_LIFECYCLE, MessageType.message);
      await daemon.virsh('resume', transient);
      await waitFor(async () => summary(events.seen.slice(from), transient).length >= 3, 'the second resume');
      expect(summary(events.seen.slice(from), transient)).toEqual(['resumed/unpaused', 'suspended/paused', 'resumed/unpaused']);
    });

    it('runs the same over the socket forwarded through one SSH connection (stream-local), events included', async (ctx) => {
      requireCapability(ctx, missingTools('/usr/sbin/sshd', 'ssh-keygen'));
      const sshd = await TestSshd.start();
      const sshHost = sshd.sshHost('ssh-libvirt');
      try {
        const remote = await openLibvirt(sshHost, { socketPath: daemon.roSocket });
        expect(remote.target).toBe(`ssh-libvirt:unix:${daemon.roSocket}`);
        expect(await remote.listAllDomains()).toContainEqual(domain);
        const seen: DomainEvent[] = [];
        remote.on('event', (e) => seen.push(e));
        await remote.registerDomainEvent('LIFECYCLE', domain);
        const started = performance.now();
        for (let i = 0; i < 100; i++) await remote.getLibVersion();
        console.log(`round trip over SSH: ${((performance.now() - started) / 100).toFixed(3)} ms (mean of 100)`);
        await daemon.virsh('suspend', transient);
        await waitFor(async () => seen.some(lifecycle(transient, 'suspended', 'paused')), 'suspended/paused over SSH');
        await daemon.virsh('resume', transient);
        await waitFor(async () => seen.some(lifecycle(transient, 'resumed', 'unpaused')), 'resumed/unpaused over SSH');
        await remote.close();
      } finally {
        await sshHost.close();
        await sshd.cleanup();
      }
    }, 60_000);

    it('follows a save job: its events, its completed stats (kept, read twice), then none', async () => {
      const xml = domainXml(persistent);
      writeFileSync(join(workDir, 'persistent.xml'), xml);
      await daemon.virsh('define', join(workDir, 'persistent.xml'));
      await daemon.virsh('start', persistent);
      const saved = await client.lookupByName(persistent);
      const from = events.seen.length;

      // A second connection polls the current stats as fast as it can while the save runs.
      const poller = await LibvirtClient.open(await host.connectUnix(daemon.roSocket), `unix:${daemon.roSocket}`);
      const polled: string[] = [];
      let saving = true;
      const polling = (async () => {
        while (saving) {
          const stats = await poller.getJobStats(saved).catch((e: Error) => ({ typeName: `error ${e.message}`, stats: {} }));
          polled.push(stats.typeName === 'unbounded' ? `unbounded ${JSON.stringify(stats.stats)}` : stats.typeName);
        }
      })();
      const started = performance.now();
      await daemon.virsh('save', persistent, saveFile);
      const saveMs = performance.now() - started;
      saving = false;
      await polling;
      await poller.close();

      const completed = await events.next(from, (e): e is JobCompletedEvent => e.kind === 'job-completed' && e.domain.name === persistent, 'job-completed');
      await events.next(from, lifecycle(persistent, 'stopped', 'saved'), 'stopped/saved');
      capture.save('event.job-completed.save', Procedure.DOMAIN_EVENT_CALLBACK_JOB_COMPLETED, MessageType.message);
      capture.save('event.migration-iteration.save', Procedure.DOMAIN_EVENT_CALLBACK_MIGRATION_ITERATION, MessageType.message);
      const sequence = summary(events.seen.slice(from), persistent);
      console.log(`virsh save took ${saveMs.toFixed(0)} ms; events: ${sequence.join(', ')}`);
      console.log(`current job stats polled during the save (${polled.length} calls): ${[...new Set(polled)].join(' | ')}`);
      console.log(`job-completed stats: ${JSON.stringify(completed.stats)}`);

      // What libvirt 9.0 emitted here: pause, memory passes, the figures, then the stop.
      expect(sequence[0]).toBe('suspended/paused');
      expect(sequence.at(-2)).toBe('job-completed');
      expect(sequence.at(-1)).toBe('stopped/saved');
      expect(sequence.filter((s) => s.startsWith('iteration'))).toEqual(
        Array.from({ length: sequence.filter((s) => s.startsWith('iteration')).length }, (_, i) => `iteration ${i + 1}`),
      );
      expect(completed.stats.operation).toBe(2); // VIR_DOMAIN_JOB_OPERATION_SAVE
      for (const field of ['time_elapsed', 'downtime', 'setup_time', 'data_total', 'data_processed', 'data_remaining', 'memory_total', 'memory_processed', 'memory_remaining', 'memory_iteration', 'memory_page_size']) {
        expect(typeof completed.stats[field], field).toBe('number');
      }
      // 64 MiB of guest RAM plus the firmware and video regions QEMU migrates with it.
      expect(completed.stats.memory_total).toBeGreaterThanOrEqual(64 * 1024 * 1024);
      expect(completed.stats.data_remaining).toBe(0);
      expect(completed.params.find((p) => p.field === 'memory_total')?.type).toBe('ullong');

      const first = await client.getJobStats(saved, { completed: true, keep: true });
      capture.save('domain-get-job-stats.completed-save.reply', Procedure.DOMAIN_GET_JOB_STATS);
      const second = await client.getJobStats(saved, { completed: true, keep: true });
      expect(first.typeName).toBe('completed');
      expect(second).toEqual(first);
      expect(first.stats).toEqual(completed.stats);
      // Without KEEP_COMPLETED the read deletes them.
      expect((await client.getJobStats(saved, { completed: true })).typeName).toBe('completed');
      expect((await client.getJobStats(saved, { completed: true })).typeName).toBe('none');

      const restoredFrom = events.seen.length;
      await daemon.virsh('restore', saveFile);
      await events.next(restoredFrom, lifecycle(persistent, 'started', 'restored'), 'started/restored');
      console.log(`after virsh restore: ${summary(events.seen.slice(restoredFrom), persistent).join(', ')}`);
    }, 60_000);

    it('leaves both domains untainted (virsh dominfo and their QEMU logs)', async () => {
      for (const name of [transient, persistent]) {
        const { stdout } = await daemon.virsh('dominfo', name);
        expect(stdout).not.toMatch(/taint/i);
        expect(readFileSync(daemon.qemuLog(name), 'utf8')).not.toMatch(/taint/i);
      }
    });

    it('reports the stop of a destroyed domain, then deregisters its callbacks', async () => {
      const from = events.seen.length;
      await daemon.virsh('destroy', transient);
      const stopped = await events.next(from, lifecycle(transient, 'stopped', 'destroyed'), 'stopped/destroyed');
      expect(stopped.domain.uuid).toBe(domain.uuid);
      const callbackIds = [...new Set(events.seen.map((e) => e.callbackId))];
      for (const id of callbackIds) await client.deregisterDomainEvent(id);
      const before = events.seen.length;
      await daemon.virsh('destroy', persistent);
      await sleep(500);
      expect(events.seen.length).toBe(before);
    });

    it('closes cleanly, with the cause, when its libvirtd restarts mid-session; a new connection works', async () => {
      const watcher = await LibvirtClient.open(await host.connectUnix(daemon.roSocket), `unix:${daemon.roSocket}`);
      const closed = new Promise<Error>((resolve) => watcher.once('close', resolve));
      expect(await watcher.getLibVersion()).toBe(9_000_000);
      await daemon.restart();
      const reason = await closed;
      console.log(`close reason on restart: ${reason.message}`);
      expect(reason).toMatchObject({ code: 'LME_LIBVIRT_CLOSED' });
      expect(reason.message).toMatch(/^libvirt connection unix:.* closed: (end of stream|read ECONNRESET)/);
      expect(watcher.isClosed).toBe(true);
      await expect(watcher.getLibVersion()).rejects.toMatchObject({ code: 'LME_LIBVIRT_CLOSED' });
      const reopened = await LibvirtClient.open(await host.connectUnix(daemon.roSocket), `unix:${daemon.roSocket}`);
      expect(await reopened.getLibVersion()).toBe(9_000_000);
      await reopened.close();
      // The main client was on the same daemon: it too was closed, not crashed.
      expect(client.isClosed).toBe(true);
    }, 60_000);
  });
});

