import { describe, expect, it } from 'vitest';
import type { VmConfig } from '../../src/config/schema.js';
import type { MonitorState } from '../../src/sources/qmp/source.js';
import type { Signal } from '../../src/signals/signal.js';
import { Signals } from '../../src/signals/signals.js';
import { WatchedVms } from '../../src/signals/watched-vms.js';
import { domainVm } from '../../src/sources/libvirt/domain-vm.js';

const configured: VmConfig = {
  name: 'web-1',
  flavor: 'm1.small',
  labels: {},
  pingAddress: null,
  instanceUuid: '11111111-2222-4333-8444-555555555555',
  monitors: [{ id: 'a/unix:/run/qmp.sock', host: 'a', endpoint: { kind: 'unix', path: '/run/qmp.sock' } }],
};
const domain = (name: string, uuid: string | null = null, flavor: string | null = null) =>
  domainVm({ name, uuid, nova: flavor ? { name: `${name}-display`, flavor, project: 'p', projectUuid: null } : null, interfaces: [{ device: 'vnet0', mac: '52:54:00:00:00:01' }] });

describe('WatchedVms with libvirt domains from several hosts', () => {
  it('a domain on two hosts (during its migration) is one VM; a host whose list is unchanged changes nothing', () => {
    const vms = new WatchedVms([]);
    expect(vms.discover([domain('vm-a', 'aaaaaaaa-0000-4000-8000-000000000001', 'm1.large')], 'hv1')).toBe(true);
    expect(vms.discover([domain('vm-a', 'aaaaaaaa-0000-4000-8000-000000000001', 'm1.large'), domain('vm-b')], 'hv2')).toBe(true);
    expect(vms.discover([domain('vm-a', 'aaaaaaaa-0000-4000-8000-000000000001', 'm1.large')], 'hv1')).toBe(false);
    expect(vms.all().map((vm) => vm.name)).toEqual(['vm-a', 'vm-b']);
    expect(vms.named('vm-a')).toMatchObject({ flavor: 'm1.large', labels: { nova_name: 'vm-a-display', nova_project: 'p' }, interfaces: [{ device: 'vnet0' }] });
    expect(vms.discover([], 'hv2')).toBe(true);
    expect(vms.all().map((vm) => vm.name)).toEqual(['vm-a']);
  });

  it('a configured VM wins over a domain of its name or of its instance UUID, and names that domain', () => {
    const vms = new WatchedVms([configured]);
    vms.discover([domain('web-1'), domain('instance-0000002a', configured.instanceUuid ?? null)], 'a');
    expect(vms.all().map((vm) => vm.name)).toEqual(['web-1']);
    expect(vms.vmOfDomain('instance-0000002a', configured.instanceUuid ?? null)).toBe('web-1');
    expect(vms.vmOfDomain('web-1', null)).toBe('web-1');
    expect(vms.vmOfDomain('other', null)).toBe('other');
  });
});

describe('the cap on discovered VMs (issue 13, cardinality)', () => {
  it('watches the first domains by name up to the cap and tells the others once; configured VMs are never refused', () => {
    const told: string[][] = [];
    const vms = new WatchedVms([configured], 2, (names) => told.push(names));
    vms.discover(['d', 'a', 'c', 'b', 'web-1'].map((n) => domain(n)), 'hv1');
    expect(vms.all().map((vm) => vm.name)).toEqual(['web-1', 'a', 'b']);
    vms.discover(['d', 'a', 'c', 'b'].map((n) => domain(n)), 'hv1');
    expect(told).toEqual([['c', 'd']]);
  });

  it("cuts a domain's nova label values to 128 characters", () => {
    const vm = domainVm({ name: 'x', uuid: null, nova: { name: 'n'.repeat(300), flavor: 'f'.repeat(200), project: 'p', projectUuid: null }, interfaces: [] });
    expect(vm.labels.nova_name).toHaveLength(128);
    expect(vm.flavor).toHaveLength(128);
  });
});

describe('Signals.views.monitors', () => {
  const state = (monitor: string, up: boolean, status: string | null): MonitorState => ({
    ref: { vm: 'vm1', host: 'hv1', monitor },
    endpoint: monitor,
    up,
    reconnects: 0,
    info: status ? { status, incoming: false } : null,
    runState: null,
    lastProblem: 'none',
  });
  const signal = (states: MonitorState[]): Signal => ({
    name: 'x',
    start: async () => {},
    reload: async () => {},
    stop: async () => {},
    health: () => [],
    views: { monitors: () => states },
  });
  const views = (...lists: MonitorState[][]) => {
    const signals = new Signals();
    signals.build(
      lists.map((l) => () => signal(l)),
      {} as never,
    );
    return signals.views.monitors();
  };

  it('one state per VM and host: QMP first, unless it does not report and libvirt does', () => {
    const qmp = state('hv1/unix:/q', true, 'active');
    const libvirt = state('libvirt:hv1', true, 'active');
    expect([...views([qmp], [libvirt])].map((s) => s.ref.monitor)).toEqual(['hv1/unix:/q']);
    const down = state('hv1/unix:/q', false, null);
    expect([...views([down], [libvirt])].map((s) => s.ref.monitor)).toEqual(['libvirt:hv1']);
    const other = { ...libvirt, ref: { ...libvirt.ref, host: 'hv2' } };
    expect([...views([qmp], [other])].map((s) => `${s.ref.monitor}@${s.ref.host}`)).toEqual(['hv1/unix:/q@hv1', 'libvirt:hv1@hv2']);
  });
});
