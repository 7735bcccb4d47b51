/**
 * The cost of watching idle libvirt domains (issue 12, item 6): the libvirt RPC source beside
 * the virsh transport, each against a baseline exporter that watches nothing, in the same run.
 *
 * Starts libvirtd and virtlogd unless they run, creates `--domains` paused transient domains
 * (32 MiB, 1 vcpu, no disk, network or graphics) named lme-idle-NNN, then runs the exporter
 * through its CLI once per case, one after the other: baseline (discovery off), rpc, virsh. For
 * each: wait until /metrics shows every domain watched, warm up, then over `--seconds` the CPU
 * (utime + stime + the reaped children's cutime + cstime, from /proc/PID/stat) of the exporter's
 * process tree and of libvirtd, and the tree's RSS sampled every second; then `--events`
 * lifecycle events (virsh resume / suspend) and the CPU they cost. Last, `--ssh-hosts` hosts
 * entries on a loopback sshd whose libvirt is watched over SSH, with `--ssh-domains` domains.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { libvirtKvmProblem, startLibvirtd, stopDaemons, virsh, xmlEscape } from '../test/helpers/libvirtd.js';
import { descendants, TestSshd } from '../test/helpers/sshd.js';
import { buildExporterIfAsked, BUILT, fixed, flag, loadText, median, printHeader, ratio, spawnExporter, stopChild, table, verdict } from './common.js';

const DOMAINS = flag('domains', 200);
const WARMUP_S = flag('warmup', 10);
const SECONDS = flag('seconds', 60);
const EVENTS = flag('events', 2000);
const SSH_HOSTS = flag('ssh-hosts', 50);
const SSH_DOMAINS = Math.min(flag('ssh-domains', 40), DOMAINS);
const PREFIX = 'lme-idle-';
const CREATE_AT_ONCE = 8;
const SETTLE_S = 15;
const COMMANDS_PER_VIRSH = 100;
const TICK_MS = 10; // USER_HZ 100
const TARGET_CPU_PER_VM = 0.01; // % of a core
const TARGET_RSS_PER_VM_KB = 100;
const TARGET_LIBVIRTD_EXTRA = 0.5; // % of a core, in all

type CaseName = 'baseline' | 'rpc' | 'virsh';

/**
 * The libvirt section of each case: the only place that knows the keys being added on main
 * (`transport`, `hosts`). `transport: 'virsh'` is the final form of today's path; before main has
 * the key, `{ discover: 'on' }` runs the same virsh transport.
 */
function libvirtSection(kind: CaseName | 'ssh-baseline' | 'ssh-rpc', hostNames: string[] = []): Record<string, unknown> {
  if (kind === 'rpc') return { discover: 'on', transport: 'rpc' };
  if (kind === 'virsh') return { discover: 'on', transport: 'virsh' };
  if (kind === 'ssh-rpc') return { discover: 'off', transport: 'rpc', hosts: hostNames };
  return { discover: 'off' };
}

// --- /proc ------------------------------------------------------------------------------------

/** utime + stime + cutime + cstime: a process's CPU with that of the children it has reaped. */
function procCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * TICK_MS;
  } catch {
    return 0; // exited meanwhile: its parent's cutime has it once reaped
  }
}

function rssKb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

const tree = (pid: number): number[] => [pid, ...descendants(pid)];
/** Over the live tree: children that exited in the window are in their parent's cutime/cstime. */
const treeCpuMs = (pid: number): number => tree(pid).reduce((a, p) => a + procCpuMs(p), 0);
const cpuMs = (pids: readonly number[]): number => pids.reduce((a, p) => a + procCpuMs(p), 0);

// --- cleanup, also on SIGINT/SIGTERM ------------------------------------------------------------

const cleanups: (() => Promise<unknown>)[] = [];
let cleaning: Promise<void> | null = null;
function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    for (const step of cleanups.splice(0).reverse()) await step().catch((err: unknown) => console.error(`cleanup: ${String(err)}`));
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`${signal}: destroying the domains and stopping what this benchmark started`);
    void cleanUp().then(() => process.exit(130));
  });
}

// --- domains ----------------------------------------------------------------------------------

const domainName = (i: number): string => `${PREFIX}${String(i + 1).padStart(3, '0')}`;

function domainXml(name: string, kvm: boolean): string {
  return `<domain type='${kvm ? 'kvm' : 'qemu'}'>
  <name>${xmlEscape(name)}</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <on_crash>destroy</on_crash>
  <devices>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

async function inParallel<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

const created = new Set<string>();

async function destroyDomains(names: readonly string[]): Promise<void> {
  await inParallel(names, CREATE_AT_ONCE, async (name) => {
    await virsh('destroy', '--domain', name).catch(() => undefined);
    created.delete(name);
    await rm(`/var/log/libvirt/qemu/${name}.log`, { force: true });
  });
}

async function createDomains(dir: string, count: number, kvm: boolean): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => domainName(i));
  await inParallel(names, CREATE_AT_ONCE, async (name) => {
    const file = join(dir, `${name}.xml`);
    await writeFile(file, domainXml(name, kvm));
    await virsh('create', '--paused', file);
    created.add(name);
  });
  return names;
}

// --- the exporter -----------------------------------------------------------------------------

/** The exporter refused the config: this case needs keys this branch does not have yet. */
class NotAvailable extends Error {}

interface Exporter {
  child: ChildProcess;
  pid: number;
  url: string;
  stderr: () => string;
}

async function startExporter(dir: string, name: string, config: unknown): Promise<Exporter> {
  const { child, url } = await spawnExporter(dir, name, config, 'pipe');
  const closed = new Promise((r) => child.once('close', r));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    if (stderr.length < 65536) stderr += chunk.toString();
  });
  cleanups.push(() => stopChild(child, 10_000));
  const exporter = { child, pid: child.pid as number, url, stderr: () => stderr };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      await closed;
      const said = stderr.trim().replace(/^livemig-exporter: /, '');
      if (child.exitCode === 2) throw new NotAvailable(said);
      throw new Error(`exporter ${name} exited with ${child.exitCode}: ${said}`);
    }
    if (await fetch(`${exporter.url}/-/ready`).then((r) => r.ok, () => false)) return exporter;
    if (Date.now() > deadline) throw new Error(`exporter ${name} not ready within 30 s`);
    await sleep(200);
  }
}

interface Seen {
  listed: number;
  polled: number;
  pairs: number;
}

/**
 * What /metrics shows of this benchmark's domains: in livemig_vm_info (listed), with a monitor
 * whose query-migrate was answered (a livemig_qemu_migration_status series at 1: polled), and the
 * (vm, host) pairs of those series.
 */
function watched(text: string): Seen {
  const listed = new Set<string>();
  const polled = new Set<string>();
  const pairs = new Set<string>();
  for (const line of text.split('\n')) {
    const vm = /[{,]vm="([^"]*)"/.exec(line)?.[1];
    if (!vm?.startsWith(PREFIX)) continue;
    if (line.startsWith('livemig_vm_info{')) listed.add(vm);
    if (!line.startsWith('livemig_qemu_migration_status{') || !line.endsWith(' 1')) continue;
    polled.add(vm);
    pairs.add(`${vm}\u0000${/[{,]host="([^"]*)"/.exec(line)?.[1] ?? ''}`);
  }
  return { listed: listed.size, polled: polled.size, pairs: pairs.size };
}

const describeSeen = (s: Seen) => `${s.listed} listed, ${s.polled} polled, ${s.pairs} (vm, host) pairs`;
const scrape = async (e: Exporter): Promise<string> => (await fetch(`${e.url}/metrics`)).text();

/**
 * Seconds until every domain is polled on every host (`pairs` of them), or, for a source that
 * has no per-VM poll series, until all are listed and nothing changed for SETTLE_S.
 */
async function waitWatched(e: Exporter, want: number, pairs: number): Promise<{ seconds: number; how: string }> {
  const started = performance.now();
  const timeoutS = Math.max(60, 1.5 * DOMAINS);
  let last = '';
  let since = started;
  for (;;) {
    const now = watched(await scrape(e));
    const elapsed = (performance.now() - started) / 1000;
    if (now.polled >= want && now.pairs >= pairs) return { seconds: elapsed, how: 'all polled' };
    if (describeSeen(now) !== last) [last, since] = [describeSeen(now), performance.now()];
    if (now.listed >= want && performance.now() - since > SETTLE_S * 1000) return { seconds: elapsed - SETTLE_S, how: `settled at ${last}` };
    if (e.child.exitCode !== null) throw new Error(`exporter exited with ${e.child.exitCode}: ${e.stderr().trim()}`);
    if (elapsed > timeoutS) throw new Error(`not all watched within ${timeoutS} s: ${last}`);
    await sleep(1000);
  }
}

// --- measuring --------------------------------------------------------------------------------

interface Window {
  cpuPct: number;
  libvirtdPct: number;
  otherPct: number;
  rssMedian: number;
  rssMax: number;
  children: number;
}

/** `seconds` of the exporter left alone: tree CPU, libvirtd's, `others`' (QEMU, sshd), tree RSS each second. */
async function measureWindow(pid: number, libvirtd: number, others: () => number[]): Promise<Window> {
  const otherPids = others();
  const before = { tree: treeCpuMs(pid), libvirtd: procCpuMs(libvirtd), other: cpuMs(otherPids) };
  const started = performance.now();
  const rss: number[] = [];
  let children = 0;
  for (let i = 0; i < SECONDS; i++) {
    await sleep(1000);
    const pids = tree(pid);
    rss.push(pids.reduce((a, p) => a + rssKb(p), 0) / 1024);
    children = Math.max(children, pids.length - 1);
  }
  const ms = performance.now() - started;
  const pct = (delta: number) => (100 * delta) / ms;
  return {
    cpuPct: pct(treeCpuMs(pid) - before.tree),
    libvirtdPct: pct(procCpuMs(libvirtd) - before.libvirtd),
    otherPct: pct(cpuMs(otherPids) - before.other),
    rssMedian: median(rss),
    rssMax: Math.max(...rss),
    children,
  };
}

interface EventPhase {
  seconds: number;
  exporterMs: number;
  libvirtdMs: number;
}

/** EVENTS lifecycle events: each paused domain in turn resumed then suspended, many commands per virsh run; all paused after. */
async function eventPhase(pid: number, libvirtd: number, domains: readonly string[]): Promise<EventPhase> {
  const commands: string[] = [];
  for (let i = 0; commands.length < EVENTS; i++) {
    const name = domains[i % domains.length] as string;
    commands.push(`resume ${name}`, `suspend ${name}`);
  }
  const before = { tree: treeCpuMs(pid), libvirtd: procCpuMs(libvirtd) };
  const started = performance.now();
  for (let i = 0; i < commands.length; i += COMMANDS_PER_VIRSH) await virsh(commands.slice(i, i + COMMANDS_PER_VIRSH).join(' ; '));
  await sleep(2000); // events still queued in the exporter
  return { seconds: (performance.now() - started) / 1000, exporterMs: treeCpuMs(pid) - before.tree, libvirtdMs: procCpuMs(libvirtd) - before.libvirtd };
}

/** The exporter's warnings and errors, counted by message: "N lines: 3 × msg (first reason), ...". */
function logSummary(stderr: string): string {
  const lines = stderr.trim().split('\n').filter(Boolean);
  const byMsg = new Map<string, { n: number; first: string }>();
  for (const line of lines) {
    let entry: { msg?: string; reason?: string; err?: string } = {};
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      // not pino's JSON: counted as its own text
    }
    const key = entry.msg ?? line.slice(0, 120);
    const seen = byMsg.get(key) ?? { n: 0, first: (entry.reason ?? entry.err ?? '').slice(0, 200) };
    seen.n++;
    byMsg.set(key, seen);
  }
  const top = [...byMsg].sort((x, y) => y[1].n - x[1].n).slice(0, 3);
  return lines.length ? `${lines.length} lines: ${top.map(([msg, v]) => `${v.n} × "${msg}"${v.first ? ` (first: ${v.first})` : ''}`).join('; ')}` : '';
}

type Outcome = { ok: true; window: Window; events: EventPhase | null; end: Seen } | { ok: false; reason: string };
let broke = false;

/** One exporter: start, wait until `want` domains are watched on `pairs` (vm, host), warm up, the window, the event phase; stopped after. */
async function runCase(dir: string, name: string, config: unknown, want: { vms: number; pairs: number } | null, libvirtd: number, others: () => number[], domains: readonly string[] | null): Promise<Outcome> {
  let exporter: Exporter | null = null;
  try {
    exporter = await startExporter(dir, name, config);
    if (want) {
      const { seconds, how } = await waitWatched(exporter, want.vms, want.pairs);
      console.log(`  ${name}: watching after ${fixed(seconds, 1)} s (${how})`);
    }
    await sleep(WARMUP_S * 1000);
    const window = await measureWindow(exporter.pid, libvirtd, others);
    const end = watched(await scrape(exporter));
    const events = domains ? await eventPhase(exporter.pid, libvirtd, domains) : null;
    const logged = logSummary(exporter.stderr());
    if (logged) console.log(`  ${name}: the exporter logged ${logged}`);
    console.log(`  ${name}: at the window's end ${describeSeen(end)}; ${name.startsWith('ssh') ? 'sshd' : 'QEMU processes'} ${fixed(window.otherPct)} % of a core`);
    return { ok: true, window, events, end };
  } catch (err) {
    if (!(err instanceof NotAvailable)) broke = true;
    const reason = err instanceof NotAvailable ? `not available: ${err.message}` : `broke: ${err instanceof Error ? err.message : String(err)}`;
    console.log(`  ${name}: ${reason}`);
    return { ok: false, reason };
  } finally {
    if (exporter) await stopChild(exporter.child, 10_000);
  }
}

/** The domains' QEMU processes (children of init, not of libvirtd). */
const qemuPids = (names: readonly string[]) => () => names.map((n) => Number(readFileSync(`/run/libvirt/qemu/${n}.pid`, 'utf8').trim()));

// --- the run ----------------------------------------------------------------------------------

const runStarted = performance.now();
await printHeader(`libvirt-idle: ${DOMAINS} idle libvirt domains watched, rpc source beside virsh`);
const dir = await mkdtemp(join(tmpdir(), 'lme-bench-idle-'));
cleanups.push(() => rm(dir, { recursive: true, force: true }));
try {
  buildExporterIfAsked();
  const daemons = await startLibvirtd();
  cleanups.push(() => stopDaemons(daemons));
  const libvirtd = Number(readFileSync('/run/libvirtd.pid', 'utf8').trim());
  console.log(`libvirtd PID ${libvirtd} (${daemons.length ? `started by this benchmark: ${daemons.join(', ')}` : 'already running'}); ${(await virsh('version', '--daemon')).stdout.trim().split('\n').join('; ')}`);
  const kvmProblem = libvirtKvmProblem();
  console.log(`accelerator: ${kvmProblem === null ? 'KVM' : `TCG (${kvmProblem})`}`);
  const leftovers = (await virsh('list', '--all', '--name')).stdout.split('\n').map((l) => l.trim()).filter((n) => n.startsWith(PREFIX));
  if (leftovers.length) {
    await destroyDomains(leftovers);
    console.log(`destroyed ${leftovers.length} ${PREFIX}* domains left over from an earlier run`);
  }
  cleanups.push(() => destroyDomains([...created]));
  let t = performance.now();
  const domains = await createDomains(dir, DOMAINS, kvmProblem === null);
  console.log(`created ${DOMAINS} paused transient domains (32 MiB, 1 vcpu, no disk/network/graphics), ${CREATE_AT_ONCE} at a time, in ${fixed((performance.now() - t) / 1000, 1)} s`);
  console.log(`exporter run ${BUILT ? 'compiled (tsc)' : 'through tsx'}; each case: watched, ${WARMUP_S} s warm-up, ${SECONDS} s measured, then ${EVENTS} lifecycle events`);

  const base = { state_file: null };
  const results = new Map<CaseName, Outcome>();
  for (const name of ['baseline', 'rpc', 'virsh'] as const) {
    const want = name === 'baseline' ? null : { vms: DOMAINS, pairs: DOMAINS };
    results.set(name, await runCase(dir, name, { ...base, libvirt: libvirtSection(name) }, want, libvirtd, qemuPids(domains), domains));
  }

  const baseline = results.get('baseline');
  if (!baseline?.ok) throw new Error(`the baseline did not run: ${baseline?.ok === false ? baseline.reason : ''}`);
  const b = baseline.window;
  const perVm = (w: Window) => (w.cpuPct - b.cpuPct) / DOMAINS;
  const rssPerVmKb = (w: Window) => ((w.rssMedian - b.rssMedian) * 1024) / DOMAINS;
  const perKEvents = (e: EventPhase | null, of: 'exporterMs' | 'libvirtdMs') => (e && baseline.events ? ((e[of] - baseline.events[of]) * 1000) / EVENTS : NaN);
  const rows = (['baseline', 'rpc', 'virsh'] as const).map((name) => {
    const o = results.get(name) as Outcome;
    if (!o.ok) return [name, ...Array<string>(10).fill('-')];
    const w = o.window;
    return [name, fixed(w.cpuPct), name === 'baseline' ? '-' : fixed(perVm(w), 4), fixed(w.libvirtdPct), fixed(w.libvirtdPct - b.libvirtdPct), fixed(w.rssMedian, 1), fixed(w.rssMax, 1), name === 'baseline' ? '-' : fixed(rssPerVmKb(w), 1), String(w.children), name === 'baseline' ? '-' : fixed(perKEvents(o.events, 'exporterMs'), 0), name === 'baseline' ? '-' : fixed(perKEvents(o.events, 'libvirtdMs'), 0)];
  });
  console.log('');
  console.log(table(['case', 'exporter CPU % (tree)', 'per idle VM %', 'libvirtd CPU %', 'libvirtd extra', 'RSS MiB median', 'RSS max', 'per idle VM KB', 'child procs', 'exp ms/1k events', 'libvirtd ms/1k events'], rows));
  for (const [name, o] of results) if (!o.ok) console.log(`${name}: ${o.reason}`);
  for (const [name, o] of results) {
    if (!o.ok || !o.events) continue;
    const aboveIdle = (ms: number, pct: number) => `${fixed(ms - pct * 10 * (o.events as EventPhase).seconds, 0)} ms`;
    const { seconds, exporterMs, libvirtdMs } = o.events;
    console.log(`events, ${name}: ${EVENTS} in ${fixed(seconds, 1)} s; exporter tree ${fixed(exporterMs, 0)} ms (${aboveIdle(exporterMs, o.window.cpuPct)} above its idle rate), libvirtd ${fixed(libvirtdMs, 0)} ms (${aboveIdle(libvirtdMs, o.window.libvirtdPct)} above)`);
  }
  console.log('(% = of one core; "per idle VM" and "extra" = case minus baseline, per domain or in all; events columns: case minus baseline per 1,000 events)');
  console.log('');
  const rpc = results.get('rpc') as Outcome;
  const vir = results.get('virsh') as Outcome;
  const line = (what: string, value: (w: Window) => number, target: number, unit: string, digits: number) => {
    const beside = vir.ok ? `; virsh ${fixed(value(vir.window), digits)}${unit}${rpc.ok ? `, virsh/rpc ${ratio(value(vir.window), value(rpc.window))}` : ''}` : '';
    if (!rpc.ok) console.log(`SKIP  ${what}: rpc case ${rpc.reason.split(':')[0]} (target ≤ ${target}${unit})${beside}`);
    else console.log(`${verdict(value(rpc.window) <= target)}  ${what}: rpc ${fixed(value(rpc.window), digits)}${unit} (target ≤ ${target}${unit})${beside}`);
  };
  line('CPU per idle VM', perVm, TARGET_CPU_PER_VM, ' % of a core', 4);
  line('RSS per idle VM', rssPerVmKb, TARGET_RSS_PER_VM_KB, ' KB', 1);
  line('libvirtd extra CPU in all', (w) => w.libvirtdPct - b.libvirtdPct, TARGET_LIBVIRTD_EXTRA, ' % of a core', 2);

  if (SSH_HOSTS > 0) {
    console.log('');
    t = performance.now();
    await destroyDomains(domains.slice(SSH_DOMAINS));
    console.log(`# ${SSH_HOSTS} hosts over SSH, ${SSH_DOMAINS} domains: destroyed the other ${DOMAINS - SSH_DOMAINS} in ${fixed((performance.now() - t) / 1000, 1)} s`);
    const sshd = await TestSshd.start();
    cleanups.push(() => sshd.cleanup());
    const knownHosts = join(dir, 'known_hosts');
    await writeFile(knownHosts, `${sshd.hashedKnownHostsLine()}\n`);
    const names = Array.from({ length: SSH_HOSTS }, (_, i) => `h${String(i + 1).padStart(2, '0')}`);
    const ssh = { address: '127.0.0.1', port: sshd.port, user: 'root', identity_file: sshd.userKey, known_hosts: knownHosts, keepalive_interval: '15s', connect_timeout: '10s' };
    const hosts = names.map((name) => ({ name, ssh }));
    console.log(`one sshd (OpenSSH, loopback, AllowStreamLocalForwarding yes), ${SSH_HOSTS} hosts entries h01.. = ${SSH_HOSTS} SSH connections to it; baseline: the same hosts, libvirt not watched`);
    const sshdPids = () => tree(sshd.pid as number);
    const pairsWanted = SSH_HOSTS * SSH_DOMAINS;
    const sshBase = await runCase(dir, 'ssh-baseline', { ...base, hosts, libvirt: libvirtSection('ssh-baseline') }, null, libvirtd, sshdPids, null);
    const sshRpc = await runCase(dir, 'ssh-rpc', { ...base, hosts, libvirt: libvirtSection('ssh-rpc', names) }, { vms: SSH_DOMAINS, pairs: pairsWanted }, libvirtd, sshdPids, null);
    const row = (label: string, o: Outcome, ref: Window | null) => {
      if (!o.ok) return [label, ...Array<string>(9).fill('-')];
      const w = o.window;
      return [label, fixed(w.cpuPct), ref ? fixed((w.cpuPct - ref.cpuPct) / SSH_HOSTS, 4) : '-', fixed(w.libvirtdPct), ref ? fixed(w.libvirtdPct - ref.libvirtdPct) : '-', fixed(w.otherPct), fixed(w.rssMedian, 1), fixed(w.rssMax, 1), ref ? fixed(((w.rssMedian - ref.rssMedian) * 1024) / SSH_HOSTS, 1) : '-', String(w.children)];
    };
    console.log('');
    console.log(
      table(
        ['case', 'exporter CPU % (tree)', 'per host %', 'libvirtd CPU %', 'libvirtd extra', 'sshd CPU %', 'RSS MiB median', 'RSS max', 'per host KB', 'child procs'],
        [row(`ssh-baseline: ${SSH_HOSTS} hosts, no libvirt`, sshBase, null), row(`ssh-rpc: libvirt of ${SSH_HOSTS} hosts`, sshRpc, sshBase.ok ? sshBase.window : null)],
      ),
    );
    for (const [name, o] of [['ssh-baseline', sshBase], ['ssh-rpc', sshRpc]] as const) if (!o.ok) console.log(`${name}: ${o.reason}`);
    if (sshRpc.ok) {
      const { listed, pairs } = sshRpc.end;
      console.log(pairs > 0 ? `${verdict(pairs === pairsWanted)}  (vm, host) pairs polled at the end: ${pairs} of ${SSH_HOSTS} × ${SSH_DOMAINS} = ${pairsWanted}` : `${verdict(listed === SSH_DOMAINS)}  no per-host series; ${listed} of ${SSH_DOMAINS} VMs listed`);
    }
  }
} catch (err) {
  broke = true;
  console.error(`libvirt-idle: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  await cleanUp();
}
console.log('');
console.log(`load average at end: ${loadText()}; the run took ${fixed((performance.now() - runStarted) / 60_000, 1)} min`);
process.exit(broke ? 1 : 0);
