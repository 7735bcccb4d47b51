/**
 * `livemig-exporter lab --engine sim`: the same scenarios without root or QEMU. The SIMULATED
 * model speaks real QMP on unix sockets, writes nova logs and counter files, and answers a
 * simulated fping; the exporter in the lab process watches it through its normal sources, and
 * every figure in the results is the exporter's. Every output says SIMULATED.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabRun } from '../helpers/lab-cli.js';

const MiB = 1024 * 1024;

function leftoverDirs(pid: number): string[] {
  return readdirSync(tmpdir()).filter((d) => d.startsWith(`lmelab-${pid}-`));
}

function simulatedFpings(): string[] {
  return readdirSync('/proc').filter((p) => {
    if (!/^\d+$/.test(p)) return false;
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('sim/fping.');
    } catch {
      return false;
    }
  });
}

describe('livemig-exporter lab --engine sim (SIMULATED)', () => {
  let out = '';
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'lme-labsim-'));
  });
  afterAll(async () => {
    if (out) await rm(out, { recursive: true, force: true });
  });

  it('stress-sweep: the model\'s law through QMP and the exporter (slope 2, time from bandwidth), SIMULATED in every output', async () => {
    const lab = LabRun.start(['--scenario', 'stress-sweep', '--engine', 'sim', '--bandwidth', '500mbit', '--steps', '48,96,144', '--out', out]);
    const url = await lab.url();
    await expect.poll(async () => (await fetch(`${url}/metrics`)).text(), { timeout: 10_000, interval: 100 }).toContain('livemig_vm_info{vm="sweep-48",flavor="xl",stressed_mib="48",stress_step_mib="48"} 1');
    await lab.finished();
    const report = lab.report();
    expect(report).toMatchObject({ engine: 'sim', simulated: true, accel: 'SIMULATED', bandwidthBytesPerSecond: 62_500_000 });
    expect(report.measurements.map((m) => [m.stressedMiB, m.result, m.mode])).toEqual([[48, 'completed', 'hybrid'], [96, 'completed', 'hybrid'], [144, 'completed', 'hybrid']]);
    for (const m of report.measurements) {
      expect(m.transferredEvidence).toMatch(/^qmp:source/);
      expect(m.qemuDowntimeMs).not.toBeNull();
      // The hosts' counter files (hosts[].netdev_path) and the nova logs the orchestrator wrote,
      // as the exporter read them: nova's time spans its preparation and post-migration steps too.
      expect(Math.abs((m.interfaceBytes as number) / (m.transferredBytes as number) - 1)).toBeLessThan(0.01);
      expect(m.novaResult).toBe('completed');
      expect(m.novaSeconds).toBeGreaterThan(m.durationSeconds as number);
    }
    expect(report.fits?.transferred.slope).toBeGreaterThan(1.95);
    expect(report.fits?.transferred.slope).toBeLessThan(2.05);
    expect(report.fits?.transferred.rSquared).toBeGreaterThan(0.99);
    // The model runs at the payload rate of the link (1448 of 1514 bytes per frame).
    expect(1 / (report.fits?.timeVsBytes.slope ?? Number.NaN) / 62_500_000).toBeCloseTo(1448 / 1514, 1);
    expect(lab.stdout.startsWith('*** SIMULATED')).toBe(true);
    expect(lab.stdout).toContain('stress-sweep (SIMULATED)');
    expect(lab.stderr).toContain('SIMULATED');
    expect(lab.csvPath()).toContain('SIMULATED');
    const csvRows = readFileSync(lab.csvPath(), 'utf8').trimEnd().split('\n').slice(1);
    expect(csvRows).toHaveLength(3);
    for (const row of csvRows) expect(row.startsWith('stress-sweep (SIMULATED),sim,')).toBe(true);
    expect(leftoverDirs(lab.pid)).toEqual([]);
  }, 60_000);

  it('flavors: only allocated memory crosses, whatever the RAM', async () => {
    const lab = LabRun.start(['--scenario', 'flavors', '--engine', 'sim', '--out', out]);
    await lab.finished();
    const { measurements } = lab.report();
    expect(measurements.map((m) => m.flavor)).toEqual(['s', 'm', 'l', 'xl']);
    for (const m of measurements) {
      expect(m.result).toBe('completed');
      expect(Math.abs((m.transferredBytes as number) - m.allocatedMiB * MiB)).toBeLessThan(4 * MiB);
      expect(m.qemuDowntimeMs).not.toBeNull();
    }
  }, 60_000);

  it('outage: the simulated LAN loses the VM in post-copy; the record and the live gauge show it; the simulated fping is stopped', async () => {
    const lab = LabRun.start(['--scenario', 'outage', '--engine', 'sim', '--out', out]);
    await lab.finished();
    const [m] = lab.report().measurements;
    expect(m).toMatchObject({ result: 'completed', mode: 'hybrid' });
    expect(m?.postcopyOutageSeconds).toBeGreaterThanOrEqual(1.8);
    expect(m?.postcopyOutageSeconds).toBeLessThanOrEqual(2.3);
    expect(m?.livePostcopyOutageMaxSeconds).toBeGreaterThanOrEqual(1);
    expect(leftoverDirs(lab.pid)).toEqual([]);
    expect(simulatedFpings()).toEqual([]);
  }, 60_000);

  it('demo: VMs go back and forth until the count is reached', async () => {
    const lab = LabRun.start(['--scenario', 'demo', '--engine', 'sim', '--count', '4', '--out', out]);
    await lab.finished();
    const { measurements } = lab.report();
    expect(measurements.map((m) => m.step)).toEqual(['demo-a src->dst', 'demo-b src->dst', 'demo-c src->dst', 'demo-a dst->src']);
    expect(measurements.every((m) => m.result === 'completed')).toBe(true);
  }, 60_000);

  it('demo until Ctrl-C: the first Ctrl-C ends it after the migration under way, with its report', async () => {
    const lab = LabRun.start(['--scenario', 'demo', '--engine', 'sim', '--out', out]);
    const url = await lab.url();
    await expect.poll(async () => (await fetch(`${url}/metrics`)).text(), { timeout: 20_000, interval: 100 }).toMatch(/^livemig_migrations_total\{result="completed",mode="hybrid"\} 1$/m);
    lab.child.kill('SIGINT');
    await lab.finished(0);
    expect(lab.stderr).toContain('stopping after the migration under way');
    const { measurements } = lab.report();
    expect(measurements.length).toBeGreaterThanOrEqual(1);
    expect(measurements.every((m) => m.result === 'completed')).toBe(true);
    expect(leftoverDirs(lab.pid)).toEqual([]);
  }, 60_000);

  it('Ctrl-C mid-run stops the exporter, its simulated fping and the sim, and removes the run directory', async () => {
    const lab = LabRun.start(['--scenario', 'outage', '--engine', 'sim', '--out', out]);
    await lab.url();
    await expect.poll(() => simulatedFpings().length, { timeout: 10_000, interval: 100 }).toBeGreaterThan(0);
    lab.child.kill('SIGINT');
    expect((await lab.exited).code).toBe(130);
    expect(leftoverDirs(lab.pid)).toEqual([]);
    await expect.poll(() => simulatedFpings(), { timeout: 5_000 }).toEqual([]);
  }, 30_000);

  it('refuses a bad rate, naming the flag (exit 2)', async () => {
    const lab = LabRun.start(['--engine', 'sim', '--bandwidth', 'fast']);
    await lab.finished(2);
    expect(lab.stderr).toMatch(/--bandwidth: "fast" is not a rate/);
  });
});
