import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { errorMessage, LivemigError } from '../errors.js';
import { runExporter } from '../exporter.js';
import { createLogger, type LogLevel } from '../log.js';
import type { ListenAddress } from '../server/listen-address.js';
import { LAB_HOSTS, type LabEngine, type LabEngineKind, type LabOrchestrator, type LabVmSpec } from './engine.js';
import { labExporterConfig, type LabExporterPlan } from './exporter-config.js';
import { LibvirtEngine } from './libvirt-engine.js';
import { LibvirtOrchestrator } from './libvirt-orchestrator.js';
import { removeStaleLabNetworks } from './netns.js';
import { Orchestrator } from './orchestrator.js';
import { QemuEngine } from './qemu-engine.js';
import { parseRate } from './rate.js';
import type { MigrationRecord } from '../records/record.js';
import { reportCsv, reportJson } from './report/csv.js';
import { labReportHtml } from './report/html.js';
import { stressFits, type ScenarioReport } from './report/results.js';
import { formatReport, SIMULATED_BANNER } from './report/table.js';
import { createRunDir, LAB_PREFIX, removeStaleRunDirs, type RunDir } from './run-dir.js';
import { scenario as makeScenario, type ScenarioName } from './scenarios/index.js';
import { httpRecords, seriesValue } from './scenarios/records.js';
import type { Scenario } from './scenarios/types.js';
import { SimEngine } from './sim/engine.js';

/**
 * `livemig-exporter lab`: builds the lab (engine qemu: namespaces and real QEMU; libvirt:
 * namespaces, two private libvirt daemons and their domains; sim: the SIMULATED model), runs the
 * exporter in this process on a generated config, lets the orchestrator migrate as nova would,
 * and reports the exporter's figures beside the study's.
 * Everything it creates is removed on exit, on Ctrl-C and on error; what a killed run left is
 * removed by the next run (or `lab --cleanup`).
 */

/** `auto` never picks libvirt: it is chosen by name. */
export type EngineChoice = LabEngineKind | 'auto';

export interface LabOptions {
  scenario: ScenarioName;
  engine: EngineChoice;
  bandwidth: string;
  out: string;
  listen: ListenAddress;
  logLevel: LogLevel;
  /** demo: stop after this many migrations. */
  count?: number;
  /** stress-sweep: stressed MiB per step (default the scenario's). */
  steps?: number[];
  /** Seconds the exporter keeps serving after the report (a last scrape, the records API); Ctrl-C ends it early. */
  lingerSeconds?: number;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

export interface LabResult {
  report: ScenarioReport;
  files: { csv: string; json: string; html: string };
}

/** Why the qemu engine cannot run here, or null. */
export function qemuEngineUnavailable(): string | null {
  if (process.geteuid?.() !== 0) return `not root (uid ${process.geteuid?.() ?? 'unknown'})`;
  for (const tool of ['qemu-system-x86_64', 'ip', 'tc', 'nasm']) {
    try {
      execFileSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed`;
    }
  }
  return null;
}

/** Removes what killed runs left: their QEMUs and libvirt daemons (by PID), namespaces and directories. */
export async function cleanupLeftovers(): Promise<string[]> {
  const removed: string[] = [];
  const { dirs, killed } = await removeStaleRunDirs();
  removed.push(...dirs.map((d) => `directory ${d}`), ...killed.map(({ pid, command }) => `${command} pid ${pid}`));
  if (process.geteuid?.() === 0) {
    const namespaces = await removeStaleLabNetworks(LAB_PREFIX).catch(() => [] as string[]);
    removed.push(...namespaces.map((ns) => `namespace ${ns}`));
  }
  return removed;
}

export async function runLab(options: LabOptions): Promise<LabResult> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  // A closed pipe (`lab | head`) must not kill the run before it has cleaned up.
  if (stdout === process.stdout) process.stdout.on('error', () => undefined);
  const startedAt = new Date().toISOString();
  const bandwidthBytes = parseRate(options.bandwidth);
  const scenario = makeScenario(options.scenario, { ...(options.count !== undefined ? { count: options.count } : {}), ...(options.steps ? { steps: options.steps } : {}) });

  for (const item of await cleanupLeftovers()) stderr.write(`lab: removed leftover of a killed run: ${item}\n`);

  const engineKind = chooseEngine(options.engine, stderr);
  if (engineKind === 'libvirt' && scenario.needsQmpEngine) {
    throw new LivemigError('LME_FLAG_INVALID', ['--scenario', `${scenario.name} cannot run on engine libvirt: ${scenario.needsQmpEngine}; use --engine qemu or sim`]);
  }
  if (engineKind !== 'qemu' && scenario.needsQemuEngine) {
    throw new LivemigError('LME_FLAG_INVALID', ['--scenario', `${scenario.name} cannot run on engine ${engineKind}: ${scenario.needsQemuEngine}; use --engine qemu (root, QEMU)`]);
  }
  const simulated = engineKind === 'sim';
  if (simulated) stderr.write(`${SIMULATED_BANNER}\n`);

  const abort = new AbortController();
  const exporterStop = new AbortController();
  let run: RunDir | undefined;
  let engine: LabEngine | LibvirtEngine | undefined;
  let exporterDone: Promise<void> | undefined;
  let bar: cliProgress.SingleBar | undefined;
  let orchestrator: LabOrchestrator | undefined;
  let done = 0;
  let cleaned: Promise<void> | undefined;
  const linger = new AbortController();
  let lingering = false;
  const cleanup = (): Promise<void> =>
    (cleaned ??= (async () => {
      bar?.stop();
      await orchestrator?.close();
      exporterStop.abort();
      await exporterDone?.catch(() => undefined);
      await engine?.close().catch((err: unknown) => stderr.write(`lab: cleanup: ${errorMessage(err)}\n`));
      if (run) await rm(run.path, { recursive: true, force: true, maxRetries: 3 });
    })());
  const onSignal = (signal: NodeJS.Signals): void => {
    // The report is written already: a signal during --linger ends the run as if the linger had run out.
    if (lingering) {
      lingering = false;
      linger.abort();
      return;
    }
    // The demo runs until stopped: the first Ctrl-C ends it after the migration under way, with its report.
    if (scenario.migrations === null && signal === 'SIGINT' && !abort.signal.aborted) {
      stderr.write('\nlab: stopping after the migration under way (Ctrl-C again to stop now)\n');
      abort.abort();
      return;
    }
    stderr.write(`\nlab: ${signal}: stopping and cleaning up\n`);
    abort.abort();
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    run = await createRunDir();
    engine = await createEngine(engineKind, scenario, run, options.bandwidth, bandwidthBytes);
    const generated = labExporterConfig(exporterPlan(engine, scenario));
    await writeFile(join(run.path, 'exporter.yml'), generated.yaml);
    const notes = [...scenario.notes];
    if (engine.kind === 'libvirt') {
      notes.push(
        'engine libvirt: each VM is a libvirt domain of the lab\'s Linux guest on two private libvirt daemons (in the src and dst namespaces); ' +
          'libvirt migrates it (virsh migrate --live --postcopy --postcopy-after-precopy, as nova asks); the exporter watches both daemons through their read-only sockets',
        'engine libvirt: no ping figures: the guest has user-mode networking, so nothing on the lab\'s LAN can ping it',
        'engine libvirt: the guest\'s kernel and init take memory of their own besides the filled and stressed MiB',
      );
    }
    if (generated.missing.length > 0) {
      notes.push(`the exporter's config does not accept ${generated.missing.join(', ')} yet: those sources are not watched`);
    }
    if (scenario.needsLinuxGuest && simulated) notes.push('SIMULATED: the VM answers a simulated fping (nothing is sent) while it runs; the LAN loses it during the blackhole');

    const logger = createLogger(options.logLevel, 'json');
    const url = await new Promise<string>((resolveUrl, reject) => {
      exporterDone = runExporter({
        config: generated.config,
        configFile: null,
        listen: options.listen,
        telemetryPath: '/metrics',
        logger,
        stopSignal: exporterStop.signal,
        onListening: resolveUrl,
        lab: { engine: engineKind, simulated },
      });
      exporterDone.catch(reject);
    });
    stderr.write(`lab: ${scenario.name} on engine ${engineKind}${simulated ? ' (SIMULATED)' : ` (${engine.accel})`}; the exporter serves ${url}/metrics while it runs\n`);

    const onProgress = (vm: string, fraction: number): void => bar?.update(done, { step: `${vm} ${Math.round(fraction * 100)}%` });
    orchestrator =
      engine.kind === 'libvirt'
        ? await LibvirtOrchestrator.create({ engine, maxBandwidth: bandwidthBytes, timeoutMs: MIGRATION_TIMEOUT_MS, onProgress })
        : new Orchestrator({
            engine,
            maxBandwidth: bandwidthBytes,
            ...(scenario.postcopyBandwidth ? { maxPostcopyBandwidth: scenario.postcopyBandwidth } : {}),
            timeoutMs: MIGRATION_TIMEOUT_MS,
            onProgress,
          });
    bar = progressBar(scenario, stderr, simulated);
    const measurements = await scenario.run({
      engine,
      orchestrator,
      records: httpRecords(url),
      novaLogs: !generated.missing.includes('logs') && !generated.missing.includes('vms[].instance_uuid'),
      signal: abort.signal,
      step: (label) => {
        done++;
        bar?.update(done, { step: label });
        if (scenario.migrations === null) bar?.setTotal(done + 1);
      },
      ...(options.count !== undefined ? { count: options.count } : {}),
      waitForExporter: (vm, host, wait) => waitForExporter(url, engineKind, vm, host, abort.signal, wait?.pingReplies),
    });
    bar.stop();
    if (engine.kind === 'libvirt') notes.push(...engine.notes);
    const report: ScenarioReport = {
      scenario: scenario.name,
      engine: engineKind,
      simulated,
      bandwidth: options.bandwidth,
      bandwidthBytesPerSecond: bandwidthBytes,
      accel: engine.accel,
      startedAt,
      measurements,
      fits: scenario.name === 'flavors' ? null : stressFits(measurements),
      notes,
    };
    stdout.write(formatReport(report));
    // The timelines need the whole records, read while the exporter still serves them.
    const records = await readRecords(url, report.measurements.map((m) => m.recordId), stderr);
    const files = await writeOutputs(report, records, options.out);
    stdout.write(`lab: wrote ${files.csv} and ${files.json}${simulated ? ' (SIMULATED)' : ''}\n`);
    stdout.write(`lab: wrote ${files.html} (the report with its figures)${simulated ? ' (SIMULATED)' : ''}\n`);
    if (options.lingerSeconds && options.lingerSeconds > 0) {
      lingering = true;
      stderr.write(`lab: the exporter keeps serving ${url}/metrics for ${options.lingerSeconds} s (Ctrl-C to stop now)\n`);
      await sleepUnlessAborted(options.lingerSeconds * 1000, linger.signal);
      lingering = false;
    }
    return { report, files };
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

const MIGRATION_TIMEOUT_MS = 120_000;

/** What the exporter watches: the VMs' QMP monitors, or (libvirt) each host's libvirt; the hosts' interfaces and nova logs; ping. */
export function exporterPlan(engine: LabEngine | LibvirtEngine, scenario: Scenario): LabExporterPlan {
  const hosts = LAB_HOSTS.map((host) => {
    const info = engine.hosts[host];
    return { name: host, interfaces: info.interfaces, novaLog: info.novaLog, ...(info.netns ? { netns: info.netns } : {}), ...(info.netdevPath ? { netdevPath: info.netdevPath } : {}) };
  });
  // libvirt's domains are found by the exporter itself (name, UUID and flavor from their XML); nothing pings them.
  if (engine.kind === 'libvirt') return { vms: [], hosts, libvirt: engine.readOnlySockets() };
  const ping = { ...(engine.pingNetns ? { pingNetns: engine.pingNetns } : {}), ...(engine.fpingPath ? { fpingPath: engine.fpingPath } : {}) };
  const nic = (vm: LabVmSpec) => engine.nicOf?.(vm) ?? undefined;
  const vms = scenario.vms.map((vm) => ({
    name: vm.name,
    flavor: vm.flavor,
    labels: vm.labels,
    instanceUuid: vm.instanceUuid,
    ...(vm.pingAddress ? { pingAddress: vm.pingAddress } : {}),
    ...(nic(vm) ? { nic: nic(vm) } : {}),
    monitors: LAB_HOSTS.map((host) => ({ host, socket: engine.observerSocket(vm.name, host) })),
  }));
  return { vms, hosts, ...ping };
}

function chooseEngine(choice: EngineChoice, stderr: NodeJS.WritableStream): LabEngineKind {
  if (choice !== 'auto') return choice;
  const why = qemuEngineUnavailable();
  if (why === null) {
    stderr.write('lab: engine qemu (root, QEMU and iproute2 found)\n');
    return 'qemu';
  }
  stderr.write(`lab: engine sim, SIMULATED, because the qemu engine cannot run here: ${why}\n`);
  return 'sim';
}

async function createEngine(kind: LabEngineKind, scenario: Scenario, run: RunDir, rate: string, bytesPerSecond: number): Promise<LabEngine | LibvirtEngine> {
  if (kind === 'sim') return SimEngine.create(run.path, bytesPerSecond, scenario.postcopyBlackhole);
  if (kind === 'libvirt') return LibvirtEngine.create({ run, rate });
  return QemuEngine.create({
    run,
    rate,
    needLinuxGuest: scenario.needsLinuxGuest,
    ...(scenario.announceRounds !== undefined ? { announceRounds: scenario.announceRounds } : {}),
    ...(scenario.postcopyBlackhole ? { postcopyBlackhole: scenario.postcopyBlackhole } : {}),
  });
}

function progressBar(scenario: Scenario, stderr: NodeJS.WritableStream, simulated: boolean): cliProgress.SingleBar {
  const bar = new cliProgress.SingleBar(
    {
      format: `${simulated ? 'SIMULATED ' : ''}${scenario.name} [{bar}] {value}/{total} migrations  {step}`,
      stream: stderr as NodeJS.WriteStream,
      hideCursor: false,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(scenario.migrations ?? 1, 0, { step: '' });
  return bar;
}

/**
 * Waits until the exporter watches a VM on a host (so it sees the migration from its start): its
 * QMP monitor there is up; on the libvirt engine, that host's libvirt connection is up and the
 * domain has been found (libvirt's source shows a domain's monitor only once it migrated).
 */
export async function waitForExporter(url: string, engine: LabEngineKind, vm: string, host: string, signal: AbortSignal, pingReplies = 0, timeoutMs = 15_000 + pingReplies * 200): Promise<void> {
  const watched = (lines: string[]): boolean =>
    engine === 'libvirt'
      ? lines.includes(`livemig_source_up{source="libvirt",host="${host}"} 1`) && lines.some((l) => l.startsWith(`livemig_vm_info{vm="${vm}",`))
      : lines.includes(`livemig_qmp_monitor_up{vm="${vm}",host="${host}"} 1`);
  const answering = (text: string): boolean =>
    pingReplies === 0 ||
    ((seriesValue(text, `livemig_ping_replies_received_total{vm="${vm}"}`) ?? 0) >= pingReplies && seriesValue(text, `livemig_ping_outage_seconds{vm="${vm}"}`) === 0);
  const deadline = Date.now() + timeoutMs;
  while (!signal.aborted) {
    const text = await fetch(`${url}/metrics`).then((r) => r.text()).catch(() => '');
    if (watched(text.split('\n')) && answering(text)) return;
    if (Date.now() > deadline) {
      const what = engine === 'libvirt' ? 'through libvirt' : 'its QMP monitor';
      throw new Error(`the exporter did not watch ${vm} on ${host} (${what})${pingReplies ? ` with ${pingReplies} probes answered` : ''} within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function writeOutputs(report: ScenarioReport, records: ReadonlyMap<string, MigrationRecord>, out: string): Promise<LabResult['files']> {
  const dir = resolve(out);
  await mkdir(dir, { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, '-');
  const base = join(dir, `${report.scenario}-${report.engine}${report.simulated ? '-SIMULATED' : ''}-${stamp}`);
  const files = { csv: `${base}.csv`, json: `${base}.json`, html: `${base}.html` };
  await writeFile(files.csv, reportCsv(report));
  await writeFile(files.json, reportJson(report));
  await writeFile(files.html, await labReportHtml(report, records));
  return files;
}

/** The exporter's records of these ids (/api/v1/migrations/{id}); one that cannot be read is said and left out. */
async function readRecords(url: string, ids: readonly string[], stderr: NodeJS.WritableStream): Promise<Map<string, MigrationRecord>> {
  const records = new Map<string, MigrationRecord>();
  for (const id of new Set(ids)) {
    try {
      const response = await fetch(`${url}/api/v1/migrations/${encodeURIComponent(id)}`);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      records.set(id, ((await response.json()) as { data: MigrationRecord }).data);
    } catch (err) {
      stderr.write(`lab: record ${id}: ${errorMessage(err)}: the report has no timeline of it\n`);
    }
  }
  return records;
}
