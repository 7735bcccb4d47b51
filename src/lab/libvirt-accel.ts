import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { KVM_DEVICE } from './accel.js';

/**
 * Whether libvirt's QEMU can use KVM. libvirt starts QEMU as an unprivileged user, and root can
 * always open the device, so the open is tried as that user, the way QEMU will.
 */

const QEMU_CONF = '/etc/libvirt/qemu.conf';

/**
 * The user and group libvirt starts QEMU as: qemu.conf's `user`/`group`, else the build's
 * default, which on Debian is libvirt-qemu (whose primary group is kvm).
 */
export function libvirtQemuAccount(confPath = QEMU_CONF): { user: string; group: string | null } {
  const text = existsSync(confPath) ? readFileSync(confPath, 'utf8') : '';
  const setting = (key: string): string | null => new RegExp(`^\\s*${key}\\s*=\\s*"([^"]*)"`, 'm').exec(text)?.[1] ?? null;
  return { user: setting('user') ?? 'libvirt-qemu', group: setting('group') };
}

/**
 * Why libvirt's QEMU cannot open the KVM device, or null when it can: a read-write open as
 * libvirt's QEMU user (runuser, with that user's groups), which is what `-accel kvm` needs.
 */
export function libvirtKvmProblem(device = KVM_DEVICE, account = libvirtQemuAccount()): string | null {
  if (!existsSync(device)) return `${device} does not exist (no KVM on this machine)`;
  const groupArgs = account.group ? ['-g', account.group] : [];
  try {
    execFileSync('runuser', ['-u', account.user, ...groupArgs, '--', 'sh', '-c', 'exec 3<>"$1"', 'sh', device], { stdio: 'pipe' });
    return null;
  } catch (err) {
    const stat = statSync(device);
    const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
    const detail = (err as { stderr?: Buffer }).stderr?.toString().trim() || String(err);
    return (
      `libvirt's QEMU user ${account.user} cannot open ${device} (uid ${stat.uid}, gid ${stat.gid}, mode ${mode}): ${detail}; ` +
      'scripts/setup gives it group kvm and mode 0660, as Debian\'s udev rule does'
    );
  }
}
