/**
 * `livemig-exporter lab --engine libvirt`, as a user runs it: the lab's network, two private
 * libvirt daemons in its src and dst namespaces, each VM a libvirt domain of the Linux guest
 * with nova's metadata, migrated by libvirt as nova asks for hybrid mode, and the exporter in the
 * lab process watching both daemons through their read-only sockets (no QMP, no virsh), the
 * migration link's counters and the nova logs. Small steps: the run takes about a minute on TCG.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTimeZone } from '../../src/config/timezone.js';
import type { LabMeasurement } from '../../src/lab/report/results.js';
import { parseNovaLine } from '../../src/sources/logs/nova-parse.js';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { LabRun, leftovers } from '../helpers/lab-cli.js';

const MiB = 1024 * 1024;
const USERFAULTFD_SYSCTL = '/proc/sys/vm/unprivileged_userfaultfd';

/** Processes of one lab run: its libvirtd and virtlogd (pid files in its directory), its domains' QEMUs (`lme.lab=DIR` on their kernel command line). */
function labProcesses(pid: number): string[] {
  const prefix = `lmelab-${pid}-`;
  return readdirSync('/proc').filter((entry) => {
    if (!/^\d+$/.test(entry)) return false;
    try {
      return readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(prefix);
    } catch {
      return false;
    }
  });
}

/** One host's nova-compute log of a lab run (in its run directory, while it lingers), as event kinds. */
function novaEvents(pid: number, host: 'src' | 'dst'): string[] {
  const [dir] = readdirSync(tmpdir()).filter((d) => d.startsWith(`lmelab-${pid}-`));
  const zone = parseTimeZone('UTC');
  return readFileSync(join(tmpdir(), dir ?? 'none', `${host}-nova-compute.log`), 'utf8')
    .trimEnd()
    .split('\n')
    .map((line) => parseNovaLine(line, zone))
    .map((p) => (p.kind !== 'event' ? `not an event: ${JSON.stringify(p)}` : p.event.kind === 'lifecycle' ? `lifecycle ${p.event.state}` : p.event.kind));
}

function show(ms: readonly LabMeasurement[]): string {
  return ms.map((m) => `${m.stressedMiB} MiB: ${m.mode}/${m.result} ${m.transferredBytes} B in ${m.durationSeconds} s (${m.transferredEvidence}), link ${m.interfaceBytes} B, nova ${m.novaSeconds} s`).join('\n');
}

describe.runIf(requireEnvironment(missingTools('libvirtd', 'virtlogd', 'virsh', 'qemu-system-x86_64', 'ip', 'tc', 'unshare', 'runuser', 'gcc', 'apt-get', 'dpkg-deb'), needsRoot()))(
  'livemig-exporter lab --engine libvirt',
  () => {
    let out = '';
    const runs: LabRun[] = [];
    beforeAll(async () => {
      out = await mkdtemp(join(tmpdir(), 'lme-lablibvirt-'));
    });
    afterAll(async () => {
      await Promise.all(runs.map((r) => r.stop()));
      if (out) await rm(out, { recursive: true, force: true });
    });

    it('stress-sweep: libvirt migrates, the exporter records it from libvirt alone, with nova\'s figures joined; nothing is left behind', async () => {
      const userfaultfdBefore = readFileSync(USERFAULTFD_SYSCTL, 'utf8');
      // 32 MB/s: at QEMU's 50 ms first downtime step even the 16 MiB step cannot finish in pre-copy.
      const lab = LabRun.start(['--scenario', 'stress-sweep', '--engine', 'libvirt', '--steps', '16,48', '--bandwidth', '256mbit', '--linger', '60', '--out', out]);
      runs.push(lab);
      await lab.lingering(150_000);
      const records = (await lab.migrations()).reverse();
      const nova = { src: novaEvents(lab.pid, 'src'), dst: novaEvents(lab.pid, 'dst') };
      const report = lab.report();
      await lab.stop();
      await lab.finished();
      console.log(lab.stdout.split('\nStudy')[0]);
      console.log(show(report.measurements));

      expect(report).toMatchObject({ engine: 'libvirt', simulated: false, bandwidthBytesPerSecond: 32_000_000 });
      expect(report.notes.join('\n')).toMatch(/no ping figures: the guest has user-mode networking/);
      expect(records.map((r) => r.vm)).toEqual(['sweep-16', 'sweep-48']);
      for (const record of records) {
        // Watched through libvirt only: the libvirt source's monitor on each host, no QMP monitor.
        expect(record, JSON.stringify(record)).toMatchObject({
          result: 'completed',
          mode: 'hybrid',
          // The VM as the exporter found it: the domain, with nova's flavor and names from its metadata.
          labels: { flavor: 'xl', nova_name: record.vm, nova_project: 'livemig-lab' },
          source: { host: 'src', monitor: 'libvirt:src' },
          destination: { host: 'dst', monitor: 'libvirt:dst' },
        });
        expect(record.bytes.transferred?.evidence).toMatch(/^libvirt:source job stats/);
        // nova's log lines, timed from libvirt's events, joined by the instance UUID (the domain's).
        expect(record.nova, JSON.stringify(record)).not.toBeNull();
        expect(record.nova?.result).toBe('completed');
        // What libvirt counted crossed the migration link.
        const sent = record.interfaces?.sourceTransmitBytes?.value ?? 0;
        expect(Math.abs(sent / (record.bytes.transferred?.value ?? 1) - 1)).toBeLessThan(0.02);
      }
      // nova's lines in nova's order, timed from libvirt's events and job statistics, once per migration.
      const perMigration = {
        src: ['pre-live-migration', 'downtime-step', 'progress', 'postcopy-switch', 'lifecycle Postcopy started', 'lifecycle Migration completed', 'completed', 'post-migration-started', 'success'],
        dst: ['lifecycle Started', 'lifecycle Resumed', 'post-operation-started'],
      };
      expect(nova.src).toEqual([...perMigration.src, ...perMigration.src]);
      expect(nova.dst).toEqual([...perMigration.dst, ...perMigration.dst]);
      for (const m of report.measurements) {
        expect(m.novaSeconds).toBeGreaterThan(m.durationSeconds as number);
        expect(m.blackoutSeconds).toBeNull();
      }
      // Transferred grows with the stressed memory. The 32 MiB between the steps crosses in the first pass, may be
      // re-sent by a second pass, and crosses again in post-copy; under TCG the larger step's longer pre-copy also
      // lets the rest of the guest dirty more (a CI run saw 3.6 times the step). Five times is a sanity bound.
      const [small, large] = report.measurements.map((m) => m.transferredBytes as number) as [number, number];
      expect(large - small, show(report.measurements)).toBeGreaterThan(32 * MiB);
      expect(large - small, show(report.measurements)).toBeLessThan(5 * 32 * MiB);

      // Nothing left: namespaces, daemons, QEMUs, the run directory, the sysctl.
      const left = leftovers(lab.pid);
      expect(left.namespaces).toEqual([]);
      expect(left.dirs).toEqual([]);
      expect(labProcesses(lab.pid)).toEqual([]);
      expect(readFileSync(USERFAULTFD_SYSCTL, 'utf8')).toBe(userfaultfdBefore);
    }, 180_000);

    it('refuses the outage scenario, naming the engine, before building anything', async () => {
      const lab = LabRun.start(['--scenario', 'outage', '--engine', 'libvirt', '--out', out]);
      runs.push(lab);
      await lab.finished(2);
      expect(lab.stderr).toMatch(/flag --scenario: outage cannot run on engine libvirt: .*use --engine qemu or sim/);
      expect(leftovers(lab.pid)).toEqual({ namespaces: [], processes: [], dirs: [] });
    }, 30_000);
  },
);
