/**
 * 50 hosts over SSH polled every second: CPU and memory of the exporter process.
 *
 * Starts real sshd instances on loopback (test/helpers/sshd.ts: own host and user keys, hashed
 * known_hosts), then the exporter as a user runs it (its CLI, a config file) with N `ssh` hosts
 * spread over them (each host its own SSH connection), `interfaces: ['*']` and
 * `netdev.period: 1s`: every host's /proc/net/dev is read over its connection every second.
 * CPU (utime + stime from /proc/PID/stat, all threads) and resident memory (VmRSS, sampled every
 * second) of the exporter process over the measured window; the baseline is the same exporter
 * with the same config minus the hosts, measured the same way in the same run.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { descendants, TestSshd } from '../test/helpers/sshd.js';
import { buildExporterIfAsked, BUILT, fixed, flag, printHeader, ratio, spawnExporter, table, verdict } from './common.js';

const HOSTS = flag('hosts', 50);
const SSHDS = flag('sshds', 2);
const WARMUP_S = flag('warmup', 10);
const SECONDS = flag('seconds', 60);
const CPU_TARGET = 10;
const RSS_TARGET_MB = 150;
const TICK_MS = 10; // USER_HZ 100

interface Usage {
  cpuMs: number;
  rssMb: number;
}

function usage(pid: number): Usage {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuMs = (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuMs, rssMb: Number(rss?.[1] ?? NaN) / 1024 };
}

function treeCpuMs(pid: number): number {
  let total = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      total += usage(p).cpuMs;
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

async function startExporter(dir: string, name: string, config: unknown): Promise<{ child: ChildProcess; url: string }> {
  const { child, url } = await spawnExporter(dir, name, config, 'inherit');
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exporter ${name} exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/-/ready`)).ok) return { child, url };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`exporter ${name} not ready within 30 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** Runs one exporter: warm-up, then CPU over the window and RSS sampled every second. */
async function measure(dir: string, name: string, config: unknown, sshds: TestSshd[]): Promise<{ cpuPercent: number; rssMedian: number; rssMax: number; sshdPercent: number; url: string; metrics: string }> {
  const { child, url } = await startExporter(dir, name, config);
  const pid = child.pid as number;
  try {
    await new Promise((r) => setTimeout(r, WARMUP_S * 1000));
    const sshdPids = sshds.map((s) => s.pid as number);
    const sshdBefore = sshdPids.reduce((a, p) => a + treeCpuMs(p), 0);
    const before = usage(pid);
    const started = performance.now();
    const rss: number[] = [];
    for (let i = 0; i < SECONDS; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      rss.push(usage(pid).rssMb);
    }
    const elapsedMs = performance.now() - started;
    const after = usage(pid);
    const sshdAfter = sshdPids.reduce((a, p) => a + treeCpuMs(p), 0);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    rss.sort((a, b) => a - b);
    return {
      cpuPercent: (100 * (after.cpuMs - before.cpuMs)) / elapsedMs,
      rssMedian: rss[rss.length >> 1] as number,
      rssMax: rss[rss.length - 1] as number,
      sshdPercent: (100 * (sshdAfter - sshdBefore)) / elapsedMs,
      url,
      metrics,
    };
  } finally {
    await stop(child);
  }
}

await printHeader(`ssh-hosts: ${HOSTS} SSH hosts, /proc/net/dev of each read every 1 s`);
buildExporterIfAsked();
const dir = await mkdtemp(join(tmpdir(), 'lme-bench-ssh-'));
const sshds: TestSshd[] = [];
try {
  for (let i = 0; i < SSHDS; i++) sshds.push(await TestSshd.start());
  const knownHosts = join(dir, 'known_hosts');
  await writeFile(knownHosts, `${sshds.map((s) => s.hashedKnownHostsLine()).join('\n')}\n`);
  const base = { state_file: null, libvirt: { discover: 'off' }, netdev: { period: '1s', migrating_period: '100ms' } };
  const hosts = Array.from({ length: HOSTS }, (_, i) => {
    const sshd = sshds[i % sshds.length] as TestSshd;
    return {
      name: `hv${String(i).padStart(3, '0')}`,
      ssh: { address: '127.0.0.1', port: sshd.port, user: 'root', identity_file: sshd.userKey, known_hosts: knownHosts, keepalive_interval: '15s', connect_timeout: '10s' },
      interfaces: ['*'],
    };
  });
  console.log(`${SSHDS} sshd (OpenSSH, loopback), ${HOSTS} host entries = ${HOSTS} SSH connections; warm-up ${WARMUP_S} s, measured ${SECONDS} s each; exporter run ${BUILT ? 'compiled (tsc)' : 'through tsx'}`);
  const baseline = await measure(dir, 'baseline', base, sshds);
  const loaded = await measure(dir, 'ssh-hosts', { ...base, hosts }, sshds);
  const up = loaded.metrics.split('\n').filter((l) => l.startsWith('livemig_source_up{source="netdev"') && l.endsWith(' 1')).length;
  const hostUp = loaded.metrics.split('\n').filter((l) => l.startsWith('livemig_source_up{source="host"') && l.endsWith(' 1')).length;
  const series = loaded.metrics.split('\n').filter((l) => l.startsWith('livemig_interface_receive_bytes_total{')).length;
  console.log('');
  console.log(
    table(
      ['exporter', 'CPU % of one core', 'RSS median MB', 'RSS max MB', 'vs baseline CPU', 'sshd CPU % (live procs)'],
      [
        ['baseline: same config, no hosts', fixed(baseline.cpuPercent), fixed(baseline.rssMedian, 1), fixed(baseline.rssMax, 1), '1.00x', fixed(baseline.sshdPercent)],
        [`${HOSTS} SSH hosts, netdev every 1 s`, fixed(loaded.cpuPercent), fixed(loaded.rssMedian, 1), fixed(loaded.rssMax, 1), ratio(loaded.cpuPercent, baseline.cpuPercent), fixed(loaded.sshdPercent)],
      ],
    ),
  );
  console.log('');
  const errors = loaded.metrics
    .split('\n')
    .filter((l) => l.startsWith('livemig_source_errors_total{source="netdev"'))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  console.log(`at the end: ${hostUp}/${HOSTS} hosts up, ${up}/${HOSTS} netdev sources up, ${series} interface series, ${errors} failed reads in the run`);
  console.log(`${verdict(loaded.cpuPercent < CPU_TARGET)} CPU ${fixed(loaded.cpuPercent)} % of one core (target < ${CPU_TARGET} %)`);
  console.log(`${verdict(loaded.rssMax < RSS_TARGET_MB)} RSS max ${fixed(loaded.rssMax, 1)} MB (target < ${RSS_TARGET_MB} MB)`);
  console.log(`${verdict(up === HOSTS && errors === 0)} every host read, no read failed (${up}/${HOSTS} up, ${errors} failures)`);
} finally {
  await Promise.all(sshds.map((s) => s.cleanup()));
  await rm(dir, { recursive: true, force: true });
}
