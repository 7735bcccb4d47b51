/**
 * `livemig-exporter lab` with the qemu engine, as a user runs it: network namespaces, real QEMU
 * (KVM or TCG), the exporter in the lab process watching through its normal sources, and the
 * figures it reports read back from the results file. Small sizes: the whole file runs in about
 * two minutes on two cores.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LabMeasurement } from '../../src/lab/report/results.js';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { LabRun, leftovers, noLeftovers } from '../helpers/lab-cli.js';

const MiB = 1024 * 1024;
const GBIT_BYTES_PER_SECOND = 125_000_000;

function show(m: readonly LabMeasurement[]): string {
  return m.map((x) => `${x.step}: ${x.mode}/${x.result} ${x.transferredBytes} B in ${x.durationSeconds} s, downtime ${x.qemuDowntimeMs} ms`).join('\n');
}

describe.runIf(requireEnvironment(missingTools('qemu-system-x86_64', 'nasm', 'ip', 'tc', 'fping', 'runuser'), needsRoot()))('livemig-exporter lab --engine qemu', () => {
  let out = '';
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'lme-labout-'));
  });
  afterAll(async () => {
    if (out) await rm(out, { recursive: true, force: true });
  });

  it('stress-sweep: transferred = base + 2 x stressed (slope 1.9..2.1, R² >= 0.99), time = bytes / 1 Gbit/s within 10 %, /metrics served while it runs, nothing left', async () => {
    const lab = LabRun.start(['--scenario', 'stress-sweep', '--engine', 'qemu', '--bandwidth', '1gbit', '--out', out]);
    const url = await lab.url();
    // The exporter serves the lab's VMs while the lab runs.
    await expect.poll(async () => (await fetch(`${url}/metrics`)).text(), { timeout: 30_000, interval: 200 }).toContain('livemig_vm_info{vm="sweep-64",flavor="xl",stressed_mib="64",stress_step_mib="64"} 1');
    await lab.finished();
    const report = lab.report();
    console.log(lab.stdout.split('\nStudy')[0]);
    expect(report.engine).toBe('qemu');
    expect(report.simulated).toBe(false);
    expect(report.measurements.map((m) => m.stressedMiB)).toEqual([64, 128, 192, 256]);
    for (const m of report.measurements) {
      expect(m, show(report.measurements)).toMatchObject({ result: 'completed', mode: 'hybrid' });
      expect(m.transferredEvidence).toMatch(/^qmp:source/);
      // The veth counters in the host namespaces (lab-notes: 1.0011 x ram.transferred with offloads)
      // and the nova logs the orchestrator wrote, as the exporter read them.
      expect(Math.abs((m.interfaceBytes as number) / (m.transferredBytes as number) - 1)).toBeLessThan(0.01);
      expect(m.novaResult).toBe('completed');
      expect(m.novaSeconds).toBeGreaterThan(m.durationSeconds as number);
    }
    // Time proportional to bytes at the configured bandwidth: the fit of time against bytes has
    // a slope of one over 1 Gbit/s, within 10 % (its intercept takes the fixed setup and switch).
    const rate = report.fits?.timeVsBytes;
    expect(rate?.rSquared, show(report.measurements)).toBeGreaterThanOrEqual(0.95);
    expect(Math.abs(1 / (rate?.slope ?? Number.NaN) / GBIT_BYTES_PER_SECOND - 1), show(report.measurements)).toBeLessThanOrEqual(0.1);
    const fit = report.fits?.transferred;
    expect(fit?.slope, show(report.measurements)).toBeGreaterThanOrEqual(1.9);
    expect(fit?.slope).toBeLessThanOrEqual(2.1);
    expect(fit?.rSquared).toBeGreaterThanOrEqual(0.99);
    expect(report.fits?.time.rSquared).toBeGreaterThanOrEqual(0.99);
    // The study's table is printed beside the lab's, and the CSV has a row per migration.
    expect(lab.stdout).toContain('Table 3: x-large VM');
    expect(readFileSync(lab.csvPath(), 'utf8').trimEnd().split('\n')).toHaveLength(5);
    expect(leftovers(lab.pid)).toEqual(noLeftovers());
  }, 180_000);

  it('flavors: transferred bytes follow allocated memory, not RAM size, with QEMU downtime for each', async () => {
    const lab = LabRun.start(['--scenario', 'flavors', '--engine', 'qemu', '--out', out]);
    await lab.finished();
    const { measurements } = lab.report();
    console.log(show(measurements));
    expect(measurements.map((m) => m.flavor)).toEqual(['s', 'm', 'l', 'xl']);
    for (const m of measurements) {
      expect(m.result).toBe('completed');
      // Allocated memory plus a few MB of device state and page headers: never the RAM (256..2048 MiB).
      const transferred = m.transferredBytes as number;
      expect(transferred).toBeGreaterThanOrEqual(m.allocatedMiB * MiB);
      expect(transferred - m.allocatedMiB * MiB).toBeLessThan(12 * MiB);
      expect(m.qemuDowntimeMs).not.toBeNull();
    }
    const bytes = measurements.map((m) => m.transferredBytes as number);
    expect([...bytes].sort((a, b) => a - b)).toEqual(bytes);
    expect(leftovers(lab.pid)).toEqual(noLeftovers());
  }, 120_000);

  it('outage: the post-copy outage is in the record and in the live gauge', async () => {
    const lab = LabRun.start(['--scenario', 'outage', '--engine', 'qemu', '--out', out]);
    await lab.finished();
    const [m] = lab.report().measurements;
    console.log(lab.stdout.split('\nStudy')[0]);
    expect(m).toMatchObject({ result: 'completed', mode: 'hybrid' });
    // The LAN loses the VM for 2 s inside post-copy (a blackhole route), on top of whatever the
    // missing announcement costs; the record measures it to one probe period (100 ms).
    expect(m?.postcopyOutageSeconds).toBeGreaterThanOrEqual(1.8);
    expect(m?.livePostcopyOutageMaxSeconds).toBeGreaterThanOrEqual(1);
    expect(leftovers(lab.pid)).toEqual(noLeftovers());
  }, 180_000);

  it('says which tool is missing when QEMU is not installed (exit 1)', async () => {
    const lab = LabRun.start(['--engine', 'qemu', '--out', out], { PATH: '/nonexistent' });
    await lab.finished(1);
    expect(lab.stderr).toMatch(/lab tool qemu-system-x86_64 is not installed: install Debian package qemu-system-x86/);
    expect(leftovers(lab.pid)).toEqual(noLeftovers());
  }, 30_000);

  it('as a user: --engine qemu says it needs root; auto says why it runs SIMULATED instead', async () => {
    const asNobody = (args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = execFile('runuser', ['-u', 'nobody', '--', process.execPath, '--import', 'tsx', 'src/cli.ts', 'lab', '--web.listen-address', '127.0.0.1:0', '--out', join(tmpdir(), `lme-nobody-${process.pid}`), ...args], { cwd: new URL('../..', import.meta.url).pathname, timeout: 60_000 }, (_err, stdout, stderr) =>
          resolve({ code: child.exitCode, stdout, stderr }),
        );
      });
    const qemu = await asNobody(['--engine', 'qemu']);
    expect(qemu.code).toBe(1);
    expect(qemu.stderr).toMatch(/the lab needs root to create network namespaces and run QEMU in them: running as uid \d+; run as root, or use --engine sim/);
    const auto = await asNobody(['--steps', '48,96']);
    expect(auto.code, auto.stderr).toBe(0);
    expect(auto.stderr).toMatch(/lab: engine sim, SIMULATED, because the qemu engine cannot run here: not root/);
    expect(auto.stdout).toContain('stress-sweep (SIMULATED)');
    await rm(join(tmpdir(), `lme-nobody-${process.pid}`), { recursive: true, force: true });
  }, 90_000);

  it('Ctrl-C (SIGINT) mid-run stops the lab and removes its namespaces, QEMUs and files', async () => {
    const lab = LabRun.start(['--scenario', 'stress-sweep', '--engine', 'qemu', '--out', out]);
    await lab.url();
    await expect.poll(() => leftovers(lab.pid).processes.length, { timeout: 30_000, interval: 100 }).toBeGreaterThan(0);
    lab.child.kill('SIGINT');
    const exit = await lab.exited;
    expect(exit.code).toBe(130);
    expect(leftovers(lab.pid)).toEqual(noLeftovers());
  }, 60_000);

  it('a killed run (SIGKILL) leaves recognisable leftovers that `lab --cleanup` removes', async () => {
    const lab = LabRun.start(['--scenario', 'stress-sweep', '--engine', 'qemu', '--out', out]);
    await lab.url();
    await expect.poll(() => leftovers(lab.pid).processes.length, { timeout: 30_000, interval: 100 }).toBeGreaterThan(0);
    lab.child.kill('SIGKILL');
    await lab.exited;
    const left = leftovers(lab.pid);
    expect(left.namespaces.length).toBeGreaterThan(0);
    expect(left.processes.length).toBeGreaterThan(0);
    expect(left.dirs).toHaveLength(1);
    const cleanup = LabRun.start(['--cleanup']);
    await cleanup.finished();
    expect(cleanup.stdout).toContain(`removed directory lmelab-${lab.pid}-`);
    expect(cleanup.stdout).toContain(`removed namespace lmelab-${lab.pid}-`);
    await expect.poll(() => leftovers(lab.pid), { timeout: 5_000 }).toEqual(noLeftovers());
  }, 60_000);
});
