import { describe, expect, it } from 'vitest';
import { labExporterConfig, supportedTopLevelKeys, type LabExporterPlan } from '../../src/lab/exporter-config.js';
import { staleRunDirs } from '../../src/lab/run-dir.js';
import { staleLabNamespaces } from '../../src/lab/netns.js';
import { scenario } from '../../src/lab/scenarios/index.js';
import { sweepStepMiB } from '../../src/lab/scenarios/stress-sweep.js';

const PLAN: LabExporterPlan = {
  vms: [
    { name: 'sweep-64', flavor: 'xl', labels: { stressed_mib: '64' }, instanceUuid: '0b5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f', monitors: [{ host: 'src', socket: '/tmp/x/sweep-64-src.observer.qmp' }, { host: 'dst', socket: '/tmp/x/sweep-64-dst.observer.qmp' }] },
    { name: 'outage-1', flavor: 's', labels: {}, instanceUuid: '1b5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f', pingAddress: '198.19.0.10', monitors: [{ host: 'src', socket: '/tmp/x/o-src.qmp' }] },
  ],
  hosts: [
    { name: 'src', netns: 'lmelab-1-abcdef-src', interfaces: ['mig0'], novaLog: '/tmp/x/src-nova-compute.log' },
    { name: 'dst', interfaces: ['mig0'], netdevPath: '/tmp/x/dst.netdev', novaLog: '/tmp/x/dst-nova-compute.log' },
  ],
  pingNetns: 'lmelab-1-abcdef-lan',
};

describe("the lab's exporter config", () => {
  it('is a valid config of the exporter: monitors per host, labels, ping from the lan namespace, nothing persisted', () => {
    const { config, yaml } = labExporterConfig(PLAN);
    expect(config.stateFile).toBeNull();
    expect(config.libvirt.discover).toBe('off');
    expect(config.ping.netns).toBe('lmelab-1-abcdef-lan');
    expect(config.ping.periodMs).toBe(100);
    expect(config.vms.map((vm) => [vm.name, vm.flavor, vm.labels, vm.pingAddress])).toEqual([
      ['sweep-64', 'xl', { stressed_mib: '64' }, null],
      ['outage-1', 's', {}, '198.19.0.10'],
    ]);
    expect(config.vms[0]?.monitors.map((m) => [m.host, m.endpoint])).toEqual([
      ['src', { kind: 'unix', path: '/tmp/x/sweep-64-src.observer.qmp' }],
      ['dst', { kind: 'unix', path: '/tmp/x/sweep-64-dst.observer.qmp' }],
    ]);
    expect(yaml).toContain('stressed_mib: "64"');
  });

  it('declares the hosts with their namespaces, interfaces and counter files where the exporter accepts them, and names what it does not', () => {
    const supported = supportedTopLevelKeys();
    const generated = labExporterConfig(PLAN, supported);
    for (const key of ['hosts', 'netdev', 'logs'] as const) {
      expect(generated.missing.includes(key)).toBe(!supported.has(key));
      expect(key in generated.raw).toBe(supported.has(key));
    }
    if (supported.has('hosts')) {
      expect(generated.raw.hosts).toEqual([
        { name: 'src', netns: 'lmelab-1-abcdef-src', interfaces: ['mig0'] },
        { name: 'dst', interfaces: ['mig0'], netdev_path: '/tmp/x/dst.netdev' },
      ]);
    }
    if (supported.has('logs')) {
      expect(generated.raw.logs).toEqual([
        { host: 'src', path: '/tmp/x/src-nova-compute.log', kind: 'nova-compute', timezone: 'UTC' },
        { host: 'dst', path: '/tmp/x/dst-nova-compute.log', kind: 'nova-compute', timezone: 'UTC' },
      ]);
    }
  });

  it('leaves out every key the schema does not know (an older exporter still runs the lab)', () => {
    const generated = labExporterConfig(PLAN, new Set(['vms', 'ping']));
    expect(generated.missing).toEqual(expect.arrayContaining(['hosts', 'netdev', 'logs']));
    expect(generated.raw).not.toHaveProperty('hosts');
    expect(generated.raw).not.toHaveProperty('logs');
  });
});

describe("the lab's exporter config on the libvirt engine", () => {
  it('watches each host\'s libvirt through its read-only socket, with no VMs of its own (the exporter finds the domains)', () => {
    const { config } = labExporterConfig({
      vms: [],
      hosts: PLAN.hosts,
      libvirt: [{ host: 'src', socket: '/tmp/x/libvirt-src/run/libvirt-sock-ro' }, { host: 'dst', socket: '/tmp/x/libvirt-dst/run/libvirt-sock-ro' }],
    });
    expect(config.vms).toEqual([]);
    expect(config.libvirt).toMatchObject({
      discover: 'off',
      transport: 'rpc',
      hosts: [{ host: 'src', socket: '/tmp/x/libvirt-src/run/libvirt-sock-ro' }, { host: 'dst', socket: '/tmp/x/libvirt-dst/run/libvirt-sock-ro' }],
    });
    expect(config.ping.netns ?? null).toBeNull();
  });
});

describe('scenarios', () => {
  it('name one VM per stressed-memory step, labelled with stressed_mib and the sweep\'s stress_step_mib, all flavor xl', () => {
    const sweep = scenario('stress-sweep', { steps: [64, 128] });
    expect(sweep.vms.map((vm) => [vm.name, vm.flavor, vm.labels])).toEqual([
      ['sweep-64', 'xl', { stressed_mib: '64', stress_step_mib: '64' }],
      ['sweep-128', 'xl', { stressed_mib: '128', stress_step_mib: '64' }],
    ]);
    expect(sweep.migrations).toBe(2);
  });

  it("give a sweep's step as the smallest gap between its sizes: the study's Tables 3 and 4 apart", () => {
    expect(sweepStepMiB([256, 512, 768, 1024, 1280, 1536, 1792, 2048])).toBe(256);
    expect(sweepStepMiB([1024, 2048, 3072, 4096, 5120, 6144, 7168, 8192])).toBe(1024);
    expect(sweepStepMiB([128, 64, 192, 64])).toBe(64);
    expect(sweepStepMiB([48])).toBe(48);
  });

  it('give the flavors growing RAM and allocated memory, labelled s, m, l, xl', () => {
    const vms = scenario('flavors').vms;
    expect(vms.map((vm) => vm.flavor)).toEqual(['s', 'm', 'l', 'xl']);
    for (let i = 1; i < vms.length; i++) {
      expect(vms[i]?.memoryMiB).toBeGreaterThan(vms[i - 1]?.memoryMiB ?? Infinity);
      expect(vms[i]?.fillMiB).toBeGreaterThan(vms[i - 1]?.fillMiB ?? Infinity);
    }
  });

  it('make the outage VM a Linux guest that answers ping, without announcements', () => {
    const outage = scenario('outage');
    expect(outage.vms[0]).toMatchObject({ guest: 'linux', pingAddress: '198.19.0.10', arpNotify: false });
    expect(outage.announceRounds).toBe(0);
  });

  it('say which need a QMP engine: only the outage (the libvirt engine refuses it)', () => {
    expect(scenario('outage').needsQmpEngine).toMatch(/QMP/);
    for (const name of ['stress-sweep', 'flavors', 'demo'] as const) expect(scenario(name).needsQmpEngine).toBeUndefined();
  });
});

describe('leftovers of killed runs', () => {
  it('are recognised by their prefix and dead PID, and nothing else is', () => {
    const alive = (pid: number) => pid === 100;
    expect(staleRunDirs(['lmelab-100-abcdef', 'lmelab-200-abcdef', 'lmelab-x-abc', 'lme-cli-200', 'lmelab-300-abcdef.tmp'], alive)).toEqual(['lmelab-200-abcdef']);
    expect(staleLabNamespaces(['lmelab-100-abcdef-src', 'lmelab-200-abcdef-dst', 'lmenet-200-abcdef-src'], alive, 'lmelab')).toEqual(['lmelab-200-abcdef-dst']);
  });
});
