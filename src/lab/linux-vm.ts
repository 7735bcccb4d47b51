import { livemigError } from '../errors.js';
import type { LinuxGuestImage, LinuxGuestParams } from './guest/linux.js';
import { linuxGuestAppend } from './guest/linux.js';
import type { Host, LabNetwork } from './netns.js';
import { startQemu, type QemuHandle, type QemuOptions } from './qemu.js';

/**
 * A VM that answers ping: the Linux guest on a lab host's tap, under TCG (lab-notes: under KVM
 * this kernel hangs after "Probing EDD" on these machines). The source and the destination of a
 * migration get the same options but `host` and `incoming`: same MAC, same guest address.
 */

export interface LinuxVmOptions {
  /** QEMU's -name; unique among the lab's VMs. */
  name: string;
  image: LinuxGuestImage;
  guest: LinuxGuestParams;
  network: LabNetwork;
  host: Host;
  memoryMiB: number;
  qmpSockets: string[];
  /** Default: macForAddress(guest.address). */
  mac?: string;
  /** A migration destination: `-incoming defer`. */
  incoming?: boolean;
  qemuBinary?: string;
  stopGraceMs?: number;
}

export const LINUX_VM_NETDEV_ID = 'lan0';

/** QemuOptions for startQemu(). Pure. */
export function linuxVmQemuOptions(options: LinuxVmOptions): QemuOptions {
  const mac = options.mac ?? macForAddress(options.guest.address);
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(mac) || (parseInt(mac.slice(0, 2), 16) & 1) === 1) {
    throw livemigError('LME_LAB_QEMU', options.name, `mac ${JSON.stringify(mac)} is not a unicast MAC such as 52:54:00:00:00:0a`);
  }
  const tap = options.network.layout.tap;
  return {
    name: options.name,
    memoryMiB: options.memoryMiB,
    guest: { kernel: options.image.kernel, initrd: options.image.initrd, append: linuxGuestAppend(options.guest) },
    qmpSockets: options.qmpSockets,
    accel: 'tcg',
    incoming: options.incoming ?? false,
    netns: options.network.namespaces[options.host],
    extraArgs: [
      '-netdev', `tap,id=${LINUX_VM_NETDEV_ID},ifname=${tap},script=no,downscript=no`,
      '-device', `virtio-net-pci,netdev=${LINUX_VM_NETDEV_ID},mac=${mac}`,
    ],
    ...(options.qemuBinary && { qemuBinary: options.qemuBinary }),
    ...(options.stopGraceMs !== undefined && { stopGraceMs: options.stopGraceMs }),
  };
}

export function startLinuxVm(options: LinuxVmOptions): Promise<QemuHandle> {
  return startQemu(linuxVmQemuOptions(options));
}

/** A locally administered MAC (QEMU's 52:54:00 prefix) ending in the address's last three octets. */
export function macForAddress(address: string): string {
  const octets = address.split('/')[0]?.split('.').map(Number) ?? [];
  if (octets.length !== 4 || octets.some((octet) => !Number.isInteger(octet) || octet < 0 || octet > 255)) {
    throw livemigError('LME_LAB_QEMU', 'linux guest', `address ${JSON.stringify(address)} is not IPv4`);
  }
  return ['52', '54', '00', ...octets.slice(1).map((octet) => octet.toString(16).padStart(2, '0'))].join(':');
}
