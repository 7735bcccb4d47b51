import { livemigError } from '../errors.js';
import { NOVA_METADATA_NAMESPACE } from '../sources/libvirt/domain-xml.js';
import type { Accel } from './accel.js';
import type { LabVmSpec } from './engine.js';
import { linuxGuestAppend } from './guest/linux.js';

/**
 * The libvirt domain of a lab VM on the libvirt engine, as nova would define it: the VM's name,
 * its instance UUID as the domain's, and nova's instance metadata (display name, flavor, owner),
 * which the exporter reads back from the domain XML. The guest is the lab's Linux guest, booted
 * straight from its kernel and initramfs, filling and dirtying the spec's memory; user-mode
 * networking, a serial console into a file, nothing libvirt would call tainted (no
 * <qemu:commandline>). Pure.
 */

export interface LabDomainOwner {
  user: string;
  /** nova's user and project ids: 32 hex digits. */
  userId: string;
  project: string;
  projectId: string;
}

export interface LabDomainOptions {
  spec: LabVmSpec;
  image: { kernel: string; initrd: string };
  accel: Accel;
  owner: LabDomainOwner;
  /** When nova created the instance (its metadata's creationTime), ms since the epoch. */
  createdAtMs: number;
  /**
   * A word for the guest's kernel command line that names the lab run (`lme.lab=DIR`): QEMU's
   * command line then holds the run directory, so what a killed run left is found by it.
   */
  runDir: string;
}

/** Where the domain's serial console is written, inside its daemon's mount namespace (its /var/log/libvirt/qemu). */
export function labDomainSerialPath(name: string): string {
  return `/var/log/libvirt/qemu/${name}.serial`;
}

/** user-mode networking's guest address (QEMU's slirp default). */
const USER_NET_GUEST_ADDRESS = '10.0.2.15/24';

export function labDomainXml(options: LabDomainOptions): string {
  const { spec, image, accel, owner } = options;
  if (!/^[A-Za-z0-9_.-]+$/.test(spec.name)) throw livemigError('LME_LAB_QEMU', JSON.stringify(spec.name), 'a libvirt domain name here is letters, digits, ., - and _');
  if (/\s/.test(options.runDir)) throw livemigError('LME_LAB_QEMU', spec.name, `the run directory ${JSON.stringify(options.runDir)} has white space`);
  const append = `${linuxGuestAppend({ address: USER_NET_GUEST_ADDRESS, arpNotify: true, fillMiB: spec.fillMiB, dirtyMiB: spec.stressedMiB })} lme.lab=${options.runDir}`;
  // KVM on the lab machines offers no SSE3 (pni) to the plain qemu64 model (lab-notes).
  const cpuFeatures = accel === 'kvm' ? `\n    <feature policy='disable' name='pni'/>\n    <feature policy='disable' name='svm'/>` : '';
  return `<domain type='${accel === 'kvm' ? 'kvm' : 'qemu'}'>
  <name>${xml(spec.name)}</name>
  <uuid>${xml(spec.instanceUuid)}</uuid>
  <metadata>
    <nova:instance xmlns:nova="${NOVA_METADATA_NAMESPACE}">
      <nova:name>${xml(spec.name)}</nova:name>
      <nova:creationTime>${novaCreationTime(options.createdAtMs)}</nova:creationTime>
      <nova:flavor name="${xml(spec.flavor)}">
        <nova:memory>${spec.memoryMiB}</nova:memory>
        <nova:disk>0</nova:disk>
        <nova:swap>0</nova:swap>
        <nova:ephemeral>0</nova:ephemeral>
        <nova:vcpus>1</nova:vcpus>
      </nova:flavor>
      <nova:owner>
        <nova:user uuid="${xml(owner.userId)}">${xml(owner.user)}</nova:user>
        <nova:project uuid="${xml(owner.projectId)}">${xml(owner.project)}</nova:project>
      </nova:owner>
    </nova:instance>
  </metadata>
  <memory unit='MiB'>${spec.memoryMiB}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${xml(image.kernel)}</kernel>
    <initrd>${xml(image.initrd)}</initrd>
    <cmdline>${xml(append)}</cmdline>
  </os>
  <cpu mode='custom' match='exact' check='none'>
    <model fallback='allow'>qemu64</model>${cpuFeatures}
  </cpu>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <serial type='file'><source path='${xml(labDomainSerialPath(spec.name))}'/></serial>
    <interface type='user'><model type='virtio'/></interface>
  </devices>
</domain>
`;
}

/** nova's `%Y-%m-%d %H:%M:%S`, UTC. */
function novaCreationTime(atMs: number): string {
  const iso = new Date(atMs).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
}

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}
