import { closeSync, constants, openSync } from 'node:fs';

export type Accel = 'kvm' | 'tcg';

export const KVM_DEVICE = '/dev/kvm';

/** KVM when the device opens read-write (what QEMU needs), TCG otherwise. */
export function detectAccel(device: string = KVM_DEVICE): Accel {
  try {
    closeSync(openSync(device, constants.O_RDWR));
    return 'kvm';
  } catch {
    return 'tcg';
  }
}

/**
 * QEMU arguments for an accelerator. Under KVM the CPU model is pinned: `-cpu host` and
 * `-cpu max` abort on the lab machines (MSR 0x10a), and their KVM does not offer SSE3 (`pni`),
 * which plain qemu64 asks for with a warning.
 */
export function accelArgs(accel: Accel): string[] {
  return accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'qemu64,-pni'] : ['-accel', 'tcg', '-cpu', 'qemu64'];
}
