/**
 * Daemons killed in the middle of a migration, with real components (issue 13): QEMU on either
 * side in pre-copy and in post-copy, the sshd that carries the exporter's QMP connections, and
 * the source host's libvirtd. Each case runs the exporter as a user runs it (its CLI and a config
 * file), migrates for real, SIGKILLs one process by PID at a chosen moment, waits for the
 * exporter's record of that migration (or a deadline) and says what the record says beside what
 * really happened, as told by the processes themselves (QMP, virsh, exit codes).
 *
 * A module, not a test: daemon-faults.test.ts asserts on what runDaemonFaults() returns, and the
 * same function can be run by hand for the table.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../../src/errors.js';
import { detectAccel, type Accel } from '../../src/lab/accel.js';
import { buildDirtyGuest } from '../../src/lab/guest/build.js';
import { libvirtKvmProblem } from '../../src/lab/libvirt-accel.js';
import { LabLibvirt, isAlive } from '../../src/lab/libvirt-daemons.js';
import { MigrationDriver, type MigrationOutcome, type MigrationPlan, type QueryMigrateReply } from '../../src/lab/migrate.js';
import { LabNetwork } from '../../src/lab/netns.js';
import { GUEST_PARAM_DIRTY_ADDR, GUEST_PARAM_FILL_ADDR, type QemuExit } from '../../src/lab/qemu.js';
import type { MigrationRecord } from '../../src/records/record.js';
import type { QmpSession } from '../../src/sources/qmp/client.js';
import type { QmpEvent } from '../../src/qemu/types.js';
import { ExporterProcess, writeConfig } from '../helpers/exporter-process.js';
import { hybridPlan, MiB, QemuLab, type Booted } from '../helpers/qemu-lab.js';
import { descendants, TestSshd } from '../helpers/sshd.js';

export const FAULT_NAMES = [
  'qemu-source-precopy',
  'qemu-destination-precopy',
  'qemu-destination-postcopy',
  'qemu-source-postcopy',
  'sshd',
  'sshd-restart',
  'libvirtd-source',
] as const;
export type FaultName = (typeof FAULT_NAMES)[number];

export interface DaemonFaultResult {
  fault: FaultName;
  /** The fault in words, with the moment it was injected. */
  what: string;
  /** Records the exporter made of that migration (closed ones; one still open is counted too). */
  records: number;
  result: string | null;
  mode: string | null;
  durationSeconds: number | null;
  transferredBytes: number | null;
  /** What really happened, as the processes told it. */
  truth: string;
  /** The result a record consistent with the truth has; null when the truth could not be told. */
  truthResult: string | null;
  /** QEMU's own final ram.transferred, where the source QEMU lived to report one. */
  qemuTransferredBytes: number | null;
  /** The record in short: result, mode, bytes, what decided the result, its closing reason. */
  says: string;
  /** One record, its result that of the truth (and its bytes QEMU's, where QEMU has final ones). */
  ok: boolean;
  /** Wall seconds the case took. */
  seconds: number;
}

export interface DaemonFaultOptions {
  only?: readonly FaultName[];
  log?: (line: string) => void;
}

/** The dirtying guest of the QEMU cases: 64 MiB touched once, 32 MiB dirtied for ever (never converges at these rates). */
const SIZE = { memoryMiB: 128, fillMiB: 64, dirtyMiB: 32 };
/** Short record deadlines (the config's minimum for the stale one), so that a case ends in seconds. */
const RECORDS = { stale_migration_timeout: '10s', postcopy_paused_timeout: '3s' };
const POLLING = { idle_interval: '1s', migrating_interval: '100ms', command_timeout: '2s', reconnect_max_backoff: '1s' };
/** How long a case waits for the record after the fault: the stale timeout and then some. */
const RECORD_DEADLINE_MS = 25_000;
/** After the first record, time for a second one (a duplicate) to show. */
const SETTLE_MS = 4_000;
const STEP_TIMEOUT_MS = 30_000;

export async function runDaemonFaults(options: DaemonFaultOptions = {}): Promise<DaemonFaultResult[]> {
  const log = options.log ?? (() => undefined);
  const results: DaemonFaultResult[] = [];
  for (const fault of options.only ?? FAULT_NAMES) {
    const started = Date.now();
    log(`${fault}: start`);
    let result: DaemonFaultResult;
    try {
      result = await CASES[fault](log);
    } catch (err) {
      result = broken(fault, err);
    }
    result.seconds = round((Date.now() - started) / 1000, 1);
    log(`${fault}: ${result.ok ? 'ok' : 'NOT OK'} in ${result.seconds} s: ${result.says}`);
    results.push(result);
  }
  return results;
}

type Log = (line: string) => void;

const CASES: Record<FaultName, (log: Log) => Promise<DaemonFaultResult>> = {
  'qemu-source-precopy': (log) => qemuCase('qemu-source-precopy', log),
  'qemu-destination-precopy': (log) => qemuCase('qemu-destination-precopy', log),
  'qemu-destination-postcopy': (log) => qemuCase('qemu-destination-postcopy', log),
  'qemu-source-postcopy': (log) => qemuCase('qemu-source-postcopy', log),
  sshd: (log) => sshdCase('sshd', log),
  'sshd-restart': (log) => sshdCase('sshd-restart', log),
  'libvirtd-source': (log) => libvirtdCase(log),
};

// --- QEMU killed ---------------------------------------------------------------------------------

type QemuFault = 'qemu-source-precopy' | 'qemu-destination-precopy' | 'qemu-destination-postcopy' | 'qemu-source-postcopy';

async function qemuCase(fault: QemuFault, log: Log): Promise<DaemonFaultResult> {
  const victim = fault.startsWith('qemu-source') ? 'source' : 'destination';
  const postcopy = fault.endsWith('postcopy');
  const vm = `fault-${fault.slice('qemu-'.length)}`;
  return withCleanups(async (cleanups) => {
    const lab = new QemuLab(SIZE);
    cleanups.push(() => lab.cleanup());
    await lab.init();
    const { src, dst } = await lab.pair();
    const exporter = await startExporter(cleanups, await writeConfig(lab.dir, qmpConfig(lab.dir, vm, [
      { host: 'src-host', qmp: { unix: src.observerSocket } },
      { host: 'dst-host', qmp: { unix: dst.observerSocket } },
    ])));
    await exporter.waitForMonitors(vm, 2);

    // Pre-copy: 32 MiB/s, so that the first pass (96 MiB touched) takes about 3 s and the dirtied
    // range never converges. Post-copy: the switch after the first pass, then 4 MiB/s, so that
    // post-copy (the 32 MiB dirtied) lasts about 8 s.
    const plan: MigrationPlan = postcopy ? hybridPlan({ maxBandwidth: 32 * MiB, maxPostcopyBandwidth: 4 * MiB }) : hybridPlan({ mode: 'precopy', maxBandwidth: 32 * MiB });
    const driver = new MigrationDriver({ source: src.qmp, destination: dst.qmp }, plan);
    cleanups.push(() => driver.dispose());
    const sourceEvents = collectEvents(src.qmp);
    cleanups.push(sourceEvents.stop);
    await driver.prepare();
    const startedAt = Date.now();
    await driver.start();

    let moment: string;
    if (postcopy) {
      await driver.waitForEvent('destination', 'RESUME', STEP_TIMEOUT_MS);
      moment = `${seconds(startedAt)} s after migrate, right after the destination's RESUME (post-copy)`;
    } else {
      await waitUntil(() => sourceEvents.passes().some((pass) => pass >= 2), STEP_TIMEOUT_MS, 'the end of the first pass (MIGRATION_PASS 2)');
      // In the middle of the second pass.
      await sleep(300);
      moment = `${seconds(startedAt)} s into pre-copy, 0.3 s into its second pass`;
    }
    const killed = victim === 'source' ? src : dst;
    const survivor = victim === 'source' ? dst : src;
    const ramBefore = await lastRam(src.qmp);
    const faultAt = Date.now();
    killed.vm.kill('SIGKILL');
    const what = `${victim} QEMU (PID ${killed.vm.pid}) SIGKILLed ${moment}`;
    log(`${fault}: ${what}`);
    const truth = (async (): Promise<Truth> => {
      const killedExit = await killed.vm.exited;
      const outcome = await driver.finish(STEP_TIMEOUT_MS).catch((err: unknown) => err as Error);
      // What the surviving QEMU does next: exits, or stays with its status and run state.
      return qemuTruth(fault, outcome, killedExit, await settleSurvivor(survivor), ramBefore);
    })();
    // The exporter's record is awaited meanwhile: both take seconds.
    const [told, found] = await Promise.all([truth, awaitRecord(exporter, vm, faultAt)]);
    return judged(fault, what, found, told, exporter, log);
  });
}

interface SurvivorState {
  exit: QemuExit | null;
  status: string | null;
  runState: string | null;
  errorDesc: string | null;
}

/** The QEMU that was not killed, 3 s on: exited (with its code) or its migration status and run state. */
async function settleSurvivor(survivor: Booted): Promise<SurvivorState> {
  const exit = await Promise.race([survivor.vm.exited, sleep(3_000).then(() => null)]);
  if (exit) return { exit, status: null, runState: null, errorDesc: null };
  try {
    const reply = await survivor.qmp.execute<QueryMigrateReply>('query-migrate');
    const run = await survivor.qmp.execute<{ status?: string }>('query-status');
    return { exit: null, status: reply.status ?? null, runState: run.status ?? null, errorDesc: reply['error-desc'] ?? null };
  } catch (err) {
    return { exit: null, status: `unreachable (${errorMessage(err)})`, runState: null, errorDesc: null };
  }
}

interface Truth {
  text: string;
  result: string | null;
  qemuTransferredBytes: number | null;
}

function qemuTruth(fault: QemuFault, outcome: MigrationOutcome | Error, killedExit: QemuExit, survivor: SurvivorState, ramBefore: number | null): Truth {
  const killed = `killed QEMU exited ${killedExit.signal ?? `with code ${killedExit.code}`}`;
  const other = survivor.exit
    ? `the other QEMU exited with code ${survivor.exit.code}${survivor.exit.stderrTail ? ` (${lastLine(survivor.exit.stderrTail)})` : ''}`
    : `the other QEMU runs on: migration ${survivor.status}, run state ${survivor.runState}${survivor.errorDesc ? ` (${survivor.errorDesc})` : ''}`;
  const seen = outcome instanceof Error ? `driver: ${errorMessage(outcome)}` : `orchestrator saw source ${outcome.source.finalStatus}, destination ${outcome.destination?.finalStatus ?? 'none'}`;
  const facts = `${killed}; ${other}; ${seen}; ${ramBefore === null ? '' : `${ramBefore} B sent before the kill`}`;
  switch (fault) {
    case 'qemu-source-precopy': {
      // The destination has no guest without its source: its incoming migration fails and it exits.
      const failed = survivor.exit !== null || survivor.status === 'failed';
      return { text: `source gone in pre-copy: ${failed ? 'the migration failed, the guest is gone with its source' : 'UNEXPECTED'}; ${facts}`, result: failed ? 'failed' : null, qemuTransferredBytes: null };
    }
    case 'qemu-destination-precopy': {
      const failed = survivor.status === 'failed' && survivor.runState === 'running';
      return { text: `destination gone in pre-copy: ${failed ? 'the migration failed, the guest runs on at the source' : 'UNEXPECTED'}; ${facts}`, result: failed ? 'failed' : null, qemuTransferredBytes: null };
    }
    case 'qemu-destination-postcopy': {
      // The guest ran at the destination: with it gone, the source cannot take it back.
      const paused = survivor.status === 'postcopy-paused';
      return { text: `destination gone in post-copy: ${paused ? 'the source is paused for good, the guest is lost' : 'UNEXPECTED'}; ${facts}`, result: paused ? 'postcopy-paused' : null, qemuTransferredBytes: null };
    }
    case 'qemu-source-postcopy': {
      // The pages still at the source are lost: the destination waits for them, paused.
      const paused = survivor.status === 'postcopy-paused';
      return { text: `source gone in post-copy: ${paused ? 'the destination is paused for good, the guest is lost' : 'UNEXPECTED'}; ${facts}`, result: paused ? 'postcopy-paused' : null, qemuTransferredBytes: null };
    }
  }
}

// --- sshd killed ---------------------------------------------------------------------------------

async function sshdCase(fault: 'sshd' | 'sshd-restart', log: Log): Promise<DaemonFaultResult> {
  const vm = `fault-${fault}`;
  return withCleanups(async (cleanups) => {
    const lab = new QemuLab(SIZE);
    cleanups.push(() => lab.cleanup());
    await lab.init();
    // One sshd per host, as in a fleet: the exporter reaches each QEMU's monitor (a unix
    // socket) through that host's SSH connection.
    const servers = { src: await TestSshd.start(), dst: await TestSshd.start() };
    cleanups.push(() => servers.src.cleanup(), () => servers.dst.cleanup());
    const { src, dst } = await lab.pair();
    const ssh = (server: TestSshd, name: string) => ({
      address: server.address,
      port: server.port,
      user: 'root',
      identity_file: server.userKey,
      known_hosts: server.writeKnownHosts(`known_hosts.${name}`, [server.knownHostsLine()]),
      keepalive_interval: '1s',
      connect_timeout: '2s',
    });
    const config = {
      ...qmpConfig(lab.dir, vm, [
        { host: 'src-host', qmp: { unix: src.observerSocket } },
        { host: 'dst-host', qmp: { unix: dst.observerSocket } },
      ]),
      hosts: [
        { name: 'src-host', ssh: ssh(servers.src, 'src-host') },
        { name: 'dst-host', ssh: ssh(servers.dst, 'dst-host') },
      ],
    };
    const exporter = await startExporter(cleanups, await writeConfig(lab.dir, config));
    await exporter.waitForMonitors(vm, 2, 20_000);

    // Hybrid at 16 MiB/s: about 6 s for the first pass, then the 32 MiB dirtied in post-copy, 2 s more.
    const driver = new MigrationDriver({ source: src.qmp, destination: dst.qmp }, hybridPlan({ maxBandwidth: 16 * MiB }));
    cleanups.push(() => driver.dispose());
    await driver.prepare();
    const startedAt = Date.now();
    await driver.start();
    await driver.waitForStatus('source', ['active'], STEP_TIMEOUT_MS);
    await sleep(1_500);

    // The processes sshd forked for the exporter's connections (the only clients of these
    // listeners), by PID; with 'sshd-restart' the listeners too.
    const connectionPids = [...descendants(servers.src.pid ?? -1), ...descendants(servers.dst.pid ?? -1)];
    const names = connectionPids.map((pid) => processName(pid));
    if (connectionPids.length === 0) throw new Error('no sshd connection processes found under the test listeners: the exporter is not connected through them');
    let what: string;
    const faultAt = Date.now();
    if (fault === 'sshd') {
      for (const pid of connectionPids) killPid(pid);
      what = `the per-connection sshd processes of both hosts (PIDs ${connectionPids.join(', ')}: ${[...new Set(names)].join(', ')}) SIGKILLed ${seconds(startedAt)} s into pre-copy; listeners kept`;
    } else {
      await Promise.all([servers.src.stop(), servers.dst.stop()]);
      what = `both hosts' sshd (listeners and connection processes ${connectionPids.join(', ')}) SIGKILLed ${seconds(startedAt)} s into pre-copy; restarted 2 s after the migration ended`;
    }
    log(`${fault}: ${what}`);

    const outcome = await driver.finish(STEP_TIMEOUT_MS);
    if (fault === 'sshd-restart') {
      await sleep(2_000);
      await Promise.all([servers.src.listen(servers.src.port), servers.dst.listen(servers.dst.port)]);
    }
    const final = outcome.source.final;
    const transferred = final?.ram?.transferred ?? null;
    const completed = outcome.source.finalStatus === 'completed' && outcome.destination?.finalStatus === 'completed';
    const truth: Truth = {
      text: `only the exporter's path to the monitors was cut: QEMU migrated on, source ${outcome.source.finalStatus}, destination ${outcome.destination?.finalStatus ?? 'none'}, ${transferred} B (QEMU's final ram.transferred), total-time ${String(final?.['total-time'])} ms`,
      result: completed ? 'completed' : null,
      qemuTransferredBytes: transferred,
    };
    const found = await awaitRecord(exporter, vm, faultAt);
    const reconnects = exporter.logs.filter((l) => l.msg === 'SSH connection up').length;
    const result = judged(fault, what, found, truth, exporter, log);
    result.says += `; SSH connections up ${reconnects} times`;
    return result;
  });
}

// --- libvirtd killed -----------------------------------------------------------------------------

/** The lab's bare guest as a libvirt domain: its -bios image, its two inputs and its debug console through <qemu:commandline>. */
function dirtyDomainXml(name: string, options: { image: string; console: string; accel: Accel }): string {
  const args = [
    '-device', `loader,addr=0x${GUEST_PARAM_DIRTY_ADDR.toString(16)},data=${SIZE.dirtyMiB},data-len=4`,
    '-device', `loader,addr=0x${GUEST_PARAM_FILL_ADDR.toString(16)},data=${SIZE.fillMiB},data-len=4`,
    '-chardev', `file,id=guestlog,path=${options.console}`,
    '-device', 'isa-debugcon,iobase=0x402,chardev=guestlog',
  ];
  const cpuFeatures = options.accel === 'kvm' ? `<feature policy='disable' name='pni'/><feature policy='disable' name='svm'/>` : '';
  return `<domain type='${options.accel === 'kvm' ? 'kvm' : 'qemu'}' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>${name}</name>
  <memory unit='MiB'>${SIZE.memoryMiB}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <loader type='rom' readonly='yes'>${options.image}</loader>
  </os>
  <cpu mode='custom' match='exact' check='none'><model fallback='allow'>qemu64</model>${cpuFeatures}</cpu>
  <on_poweroff>destroy</on_poweroff>
  <devices><memballoon model='none'/></devices>
  <qemu:commandline>
${args.map((a) => `    <qemu:arg value='${a}'/>`).join('\n')}
  </qemu:commandline>
</domain>
`;
}

async function libvirtdCase(log: Log): Promise<DaemonFaultResult> {
  const fault = 'libvirtd-source' as const;
  const domain = `fault-libvirtd-${process.pid}`;
  return withCleanups(async (cleanups) => {
    const dir = await mkdtemp(join(tmpdir(), 'lme-fault-libvirtd-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await chmod(dir, 0o755);
    // libvirt's QEMU runs as its own user, and libvirt chowns the ROM it boots: a copy of ours.
    const image = join(dir, 'dirty.bin');
    await copyFile(await buildDirtyGuest(), image);
    await chmod(image, 0o644);
    const consoleDir = join(dir, 'console');
    await mkdir(consoleDir, { mode: 0o777 });
    await chmod(consoleDir, 0o777);
    const console = join(consoleDir, `${domain}.log`);
    const accel: Accel = detectAccel() === 'kvm' && libvirtKvmProblem() === null ? 'kvm' : 'tcg';

    const network = await LabNetwork.create({ rate: null });
    cleanups.push(() => network.destroy());
    const libvirt = await LabLibvirt.start(network, dir);
    // Stopped before the network goes (cleanups run last in, first out).
    cleanups.push(() => libvirt.stop());
    const { src, dst } = libvirt.daemons;
    // A new daemon probes QEMU when first asked (seconds): done now, not inside the migration.
    await Promise.all([src, dst].map((d) => d.virsh('domcapabilities', '--virttype', accel === 'kvm' ? 'kvm' : 'qemu')));
    const xml = join(dir, 'domain.xml');
    await writeFile(xml, dirtyDomainXml(domain, { image, console, accel }));
    await src.virsh('create', xml);
    await waitUntil(async () => (await readFile(console, 'utf8').catch(() => '')).includes('dirtying'), 20_000, 'the guest to dirty its memory');

    const exporter = await startExporter(cleanups, await writeConfig(dir, {
      polling: POLLING,
      records: RECORDS,
      state_file: join(dir, 'state.json'),
      hosts: [
        { name: 'src', netns: network.namespaces.src },
        { name: 'dst', netns: network.namespaces.dst },
      ],
      libvirt: { discover: 'off', hosts: [{ host: 'src', socket: src.roSocket }, { host: 'dst', socket: dst.roSocket }] },
    }));
    await waitUntil(async () => (await exporter.metrics()).includes(`livemig_vm_info{vm="${domain}"`), 20_000, 'the exporter to find the domain');

    // Pre-copy at 16 MiB/s: the first pass alone takes 6 s, and the dirtied range never converges.
    await src.virsh('migrate-setspeed', domain, '16');
    const migration = runVirsh(src.uri, ['migrate', '--live', '--domain', domain, '--desturi', dst.uri, '--migrateuri', `tcp://${network.migrationAddress('dst')}`]);
    cleanups.push(() => migration.kill());
    const startedAt = Date.now();
    await waitUntil(async () => (await src.virsh('domjobinfo', domain).catch(() => ({ stdout: '' }))).stdout.includes('Unbounded'), STEP_TIMEOUT_MS, 'the migration job on src');
    // The exporter has seen the job running (its job statistics polled).
    await waitUntil(async () => /livemig_migration_phase\{vm="[^"]+",phase="precopy"\} 1/.test(await exporter.metrics()), 10_000, 'the exporter to see pre-copy');
    await sleep(1_000);
    // The lab's own daemon, never the machine's (/run/libvirt): its command line names its pid file in our directory.
    const pid = src.libvirtdPid;
    if (pid === undefined || !isAlive(pid) || !processName(pid).includes(src.dir)) throw new Error(`the source private libvirtd has no live PID of its own (${pid}: ${pid && processName(pid)})`);
    const faultAt = Date.now();
    killPid(pid);
    const what = `the source host's private libvirtd (PID ${pid}) SIGKILLed ${seconds(startedAt)} s into pre-copy, during 'virsh migrate'; restarted after virsh returned`;
    log(`${fault}: ${what}`);

    const virshSaid = await migration.done;
    let restarted = 'restarted';
    await src.restart().catch((err: unknown) => {
      restarted = `restart failed: ${errorMessage(err)}`;
    });
    // libvirtd reconnects to its domains' QEMUs and recovers the interrupted migration job.
    await sleep(2_000);
    const state = async (d: typeof src): Promise<string> =>
      (await d.virsh('domstate', '--reason', domain).then((o) => o.stdout.trim(), (err: unknown) => `none (${/error: ([^\n]*)$/.exec(errorMessage(err))?.[1] ?? errorMessage(err)})`));
    const [srcState, dstState] = [await state(src), await state(dst)];
    const failed = srcState.startsWith('running') && dstState.startsWith('none');
    const truth: Truth = {
      text: `virsh migrate ${virshSaid.code === 0 ? 'succeeded' : `failed: ${lastLine(virshSaid.stderr)}`}; source libvirtd ${restarted}; domain on src: ${srcState}; on dst: ${dstState}${failed ? ': the migration failed, the guest runs on at the source' : ''}`,
      result: failed ? 'failed' : virshSaid.code === 0 && dstState.startsWith('running') ? 'completed' : null,
      qemuTransferredBytes: null,
    };
    const found = await awaitRecord(exporter, domain, faultAt);
    return judged(fault, what, found, truth, exporter, log);
  });
}

function runVirsh(uri: string, args: string[]): { done: Promise<{ code: number | null; stderr: string }>; kill(): void } {
  const child: ChildProcess = spawn('virsh', ['-c', uri, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.once('exit', (code) => resolve({ code, stderr })));
  return {
    done,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

// --- the record ----------------------------------------------------------------------------------

interface Found {
  records: MigrationRecord[];
  /** Migrations still open for the VM when the case ended. */
  running: number;
  /** From the fault to the first record (or to the deadline). */
  waitedMs: number;
}

/** Waits for the VM's first closed record (until `deadlineMs` after the fault), then SETTLE_MS more for any other. */
async function awaitRecord(exporter: ExporterProcess, vm: string, faultAt: number, deadlineMs = RECORD_DEADLINE_MS): Promise<Found> {
  const started = faultAt;
  const read = async (): Promise<{ data: MigrationRecord[]; running: unknown[] }> =>
    (await (await exporter.get(`/api/v1/migrations?vm=${encodeURIComponent(vm)}`)).json()) as { data: MigrationRecord[]; running: unknown[] };
  let body = await read();
  while (body.data.length === 0 && Date.now() - started < deadlineMs) {
    await sleep(200);
    body = await read();
  }
  const waitedMs = Date.now() - started;
  if (body.data.length > 0) {
    await sleep(SETTLE_MS);
    body = await read();
  }
  return { records: body.data, running: body.running.length, waitedMs };
}

function judged(fault: FaultName, what: string, found: Found, truth: Truth, exporter: ExporterProcess, log: Log): DaemonFaultResult {
  // The API lists the newest first: the first record made is the last.
  const record = found.records.at(-1) ?? null;
  const count = found.records.length + found.running;
  const bytes = record?.bytes.transferred?.value ?? null;
  const bytesRight = truth.qemuTransferredBytes === null || bytes === truth.qemuTransferredBytes;
  const says = record
    ? describeRecord(record, found)
    : `no record within ${round(found.waitedMs / 1000, 1)} s${found.running ? ` (${found.running} still open)` : ''}`;
  const ok = count === 1 && record !== null && truth.result !== null && record.result === truth.result && bytesRight;
  // What the exporter said about its monitors and migrations, for a case that went wrong.
  if (!ok) for (const line of exporter.logs.filter((l) => TOLD.test(String(l.msg)))) log(`${fault}: exporter: ${JSON.stringify(line)}`);
  return {
    fault,
    what,
    records: count,
    result: record?.result ?? null,
    mode: record?.mode ?? null,
    durationSeconds: record?.durationSeconds?.value ?? null,
    transferredBytes: bytes,
    truth: truth.text,
    truthResult: truth.result,
    qemuTransferredBytes: truth.qemuTransferredBytes,
    says,
    ok,
    seconds: 0,
  };
}

/** Exporter log lines that tell a case's story: monitors and connections up and down, migrations opened and closed. */
const TOLD = /QMP monitor (up|down)|migration (started|ended)|SSH connection (up|lost)|libvirt (connection lost|reachable)|watching libvirt|a new migration started/;

function describeRecord(r: MigrationRecord, found: Found): string {
  const parts = [
    `${r.result} ${r.mode}`,
    `closed ${round(found.waitedMs / 1000, 1)} s after the fault`,
    `result from "${r.resultEvidence ?? '?'}"`,
    `end "${r.endedAt?.evidence ?? '?'}"`,
  ];
  if (r.qemu.errorDesc) parts.push(`errorDesc "${r.qemu.errorDesc}"`);
  parts.push(`transferred ${r.bytes.transferred ? `${r.bytes.transferred.value} B ("${r.bytes.transferred.evidence}")` : 'none'}`);
  parts.push(`duration ${r.durationSeconds ? `${round(r.durationSeconds.value, 2)} s` : 'none'}`);
  parts.push(`statuses ${r.statuses.map((s) => `${s.side === 'source' ? 'S' : 'D'}:${s.status}`).join(' ')}`);
  if (found.records.length > 1) parts.push(`ALSO ${found.records.length - 1} more record(s): ${found.records.slice(0, -1).map((x) => `${x.id} ${x.result}`).join(', ')}`);
  if (found.running > 0) parts.push(`ALSO ${found.running} migration(s) still open`);
  return parts.join('; ');
}

/** A case that threw: what it got to, and why it stopped. */
function broken(fault: FaultName, err: unknown): DaemonFaultResult {
  return {
    fault,
    what: 'the case did not get to its fault or its record',
    records: 0,
    result: null,
    mode: null,
    durationSeconds: null,
    transferredBytes: null,
    truth: 'unknown',
    truthResult: null,
    qemuTransferredBytes: null,
    says: `case failed: ${errorMessage(err).slice(0, 2000)}`,
    ok: false,
    seconds: 0,
  };
}

// --- plumbing ------------------------------------------------------------------------------------

type Cleanup = () => unknown;

/** Runs `body` with a list of cleanups, run in reverse order whatever happens, each on its own. */
async function withCleanups<T>(body: (cleanups: Cleanup[]) => Promise<T>): Promise<T> {
  const cleanups: Cleanup[] = [];
  try {
    return await body(cleanups);
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        console.error(`cleanup failed: ${errorMessage(err)}`);
      }
    }
  }
}

async function startExporter(cleanups: Cleanup[], configFile: string): Promise<ExporterProcess> {
  const exporter = await ExporterProcess.start(configFile);
  cleanups.push(() => exporter.stop());
  return exporter;
}

function qmpConfig(dir: string, vm: string, monitors: { host: string; qmp: { unix: string } }[]) {
  return {
    polling: POLLING,
    records: RECORDS,
    state_file: join(dir, `${vm}.state.json`),
    libvirt: { discover: 'off' },
    vms: [{ name: vm, flavor: 'm', monitors }],
  };
}

function collectEvents(session: QmpSession): { passes(): number[]; stop(): void } {
  const events: QmpEvent[] = [];
  const listener = (event: QmpEvent): void => void events.push(event);
  session.on('event', listener);
  return {
    passes: () => events.filter((e) => e.event === 'MIGRATION_PASS').map((e) => Number(e.data?.pass)),
    stop: () => void session.off('event', listener),
  };
}

async function lastRam(session: QmpSession): Promise<number | null> {
  const reply = await session.execute<QueryMigrateReply>('query-migrate').catch(() => null);
  return reply?.ram?.transferred ?? null;
}

async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '?';
  }
}

function seconds(since: number): number {
  return round((Date.now() - since) / 1000, 1);
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1) ?? '';
}
