import { describe, expect, it } from 'vitest';
import type { LabVmSpec } from '../../src/lab/engine.js';
import { labDomainSerialPath, labDomainXml, type LabDomainOptions } from '../../src/lab/libvirt-domain.js';
import { domainVm } from '../../src/sources/libvirt/domain-vm.js';
import { parseDomainXml } from '../../src/sources/libvirt/domain-xml.js';

const SPEC: LabVmSpec = {
  name: 'sweep-48',
  flavor: 'xl',
  memoryMiB: 512,
  fillMiB: 32,
  stressedMiB: 48,
  instanceUuid: '0B5C7D3E-4F1A-4C2B-9E8D-7A6B5C4D3E2F',
  guest: 'dirty',
  labels: { stressed_mib: '48' },
};

const OPTIONS: LabDomainOptions = {
  spec: SPEC,
  image: { kernel: '/tmp/livemig-lab/guest/linux-x/vmlinuz', initrd: '/tmp/livemig-lab/guest/linux-x/initrd.img' },
  accel: 'tcg',
  owner: { user: 'lab', userId: '8f3e9a7c2b1d4e6f8a9b0c1d2e3f4a5b', project: 'livemig-lab', projectId: '4a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d' },
  createdAtMs: Date.UTC(2026, 11, 2, 9, 30, 15),
  runDir: '/tmp/lmelab-1234-abcdef',
};

describe('the libvirt engine\'s domain XML', () => {
  it('reads back, through the exporter\'s own parser, as the VM nova would have defined: name, instance UUID, flavor, project', () => {
    const description = parseDomainXml(labDomainXml(OPTIONS), 'lab domain');
    expect(description).toEqual({
      name: 'sweep-48',
      uuid: '0b5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f',
      nova: { name: 'sweep-48', flavor: 'xl', project: 'livemig-lab', projectUuid: '4a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d' },
      interfaces: [],
    });
    expect(domainVm(description)).toMatchObject({ name: 'sweep-48', flavor: 'xl', instanceUuid: '0b5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f', labels: { nova_name: 'sweep-48', nova_project: 'livemig-lab' } });
  });

  it('boots the Linux guest with the spec\'s memory, fill and stressed MiB, and the run directory on its command line', () => {
    const xml = labDomainXml(OPTIONS);
    expect(xml).toContain("<memory unit='MiB'>512</memory>");
    expect(xml).toContain('<kernel>/tmp/livemig-lab/guest/linux-x/vmlinuz</kernel>');
    expect(xml).toContain('<initrd>/tmp/livemig-lab/guest/linux-x/initrd.img</initrd>');
    expect(/<cmdline>([^<]*)<\/cmdline>/.exec(xml)?.[1]?.split(' ')).toEqual(expect.arrayContaining(['console=ttyS0', 'lme.fill=32', 'lme.dirty=48', 'lme.lab=/tmp/lmelab-1234-abcdef']));
    expect(xml).toContain(`<source path='${labDomainSerialPath('sweep-48')}'/>`);
    expect(xml).toContain('<nova:creationTime>2026-12-02 09:30:15</nova:creationTime>');
    expect(xml).toContain('<nova:memory>512</nova:memory>');
  });

  it('is type qemu under TCG and kvm (qemu64 without pni and svm) under KVM, and never tainted by QEMU arguments of its own', () => {
    const tcg = labDomainXml(OPTIONS);
    const kvm = labDomainXml({ ...OPTIONS, accel: 'kvm' });
    expect(tcg).toMatch(/^<domain type='qemu'>/);
    expect(tcg).not.toContain("name='pni'");
    expect(kvm).toMatch(/^<domain type='kvm'>/);
    expect(kvm).toContain("<feature policy='disable' name='pni'/>");
    expect(kvm).toContain("<feature policy='disable' name='svm'/>");
    for (const xml of [tcg, kvm]) {
      expect(xml).not.toContain('qemu:commandline');
      expect(xml).not.toContain('libvirt/qemu/1.0');
    }
  });

  it('escapes the flavor and owner, and refuses a name libvirt or a path could not take', () => {
    const xml = labDomainXml({ ...OPTIONS, spec: { ...SPEC, flavor: 'x<l>"&' }, owner: { ...OPTIONS.owner, project: "a'b" } });
    expect(parseDomainXml(xml, 'lab domain').nova).toMatchObject({ flavor: 'x<l>"&', project: "a'b" });
    expect(() => labDomainXml({ ...OPTIONS, spec: { ...SPEC, name: 'a/b' } })).toThrow(/LME_LAB_QEMU|letters, digits/);
    expect(() => labDomainXml({ ...OPTIONS, runDir: '/tmp/a b' })).toThrow(/white space/);
  });
});
