/**
 * libvirt's per-domain QEMU log (/var/log/libvirt/qemu/NAME.log, signals.md §3.5), one line at a
 * time. libvirt stamps its own lines `DATE TIME.mmm+ZZZZ: TEXT` (with the offset, so no configured
 * zone is needed); the QEMU command line follows the start line, on one line (old libvirt) or one
 * argument per line ending in ` \`; QEMU's own stderr lines carry an ISO stamp
 * `DATE'T'TIME.uuuuuu'Z' qemu-system-…: TEXT`. Pure, never throws.
 *
 * A destination QEMU is started with `-incoming` (`defer` since libvirt 1.2.x); the source's QEMU
 * stops with `shutting down, reason=migrated` after a successful migration.
 */
export type LibvirtLine =
  /** `… : starting up libvirt version: …`: a QEMU process is being started for the domain. */
  | { kind: 'starting'; timeMs: number; libvirtVersion?: string; qemuVersion?: string }
  /** A line of the QEMU command line carrying `-name`, `-uuid` or `-incoming`. */
  | { kind: 'command-line'; name?: string; uuid?: string; incoming?: string }
  /** `… : shutting down, reason=R`. */
  | { kind: 'shutdown'; timeMs: number; reason: string }
  /** A stamped line libvirt or QEMU wrote that is none of the above. */
  | { kind: 'message'; timeMs: number; text: string }
  | { kind: 'other' }
  | { kind: 'unparseable'; reason: string };

const LIBVIRT_STAMP = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{3})([+-])(\d{2})(\d{2}): /;
const QEMU_STAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z) (?:qemu-system-[\w-]+|qemu-kvm|kvm): /;
const UUID_ARG = /(?:^|\s)-uuid ([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?:\s|$)/;
const NAME_ARG = /(?:^|\s)-name (?:guest=)?([^,\s]+)/;
const INCOMING_ARG = /(?:^|\s)-incoming (\S+)/;
const VERSIONS = /libvirt version: ([^,]+)(?:.*?qemu version: ([^,]+))?/;

export function parseLibvirtLine(text: string): LibvirtLine {
  const line = text.endsWith('\r') ? text.slice(0, -1) : text;
  const stamp = LIBVIRT_STAMP.exec(line);
  if (stamp) {
    const offsetMin = (stamp[8] === '-' ? -1 : 1) * (Number(stamp[9]) * 60 + Number(stamp[10]));
    const timeMs =
      Date.UTC(Number(stamp[1]), Number(stamp[2]) - 1, Number(stamp[3]), Number(stamp[4]), Number(stamp[5]), Number(stamp[6]), Number(stamp[7])) -
      offsetMin * 60_000;
    if (!Number.isFinite(timeMs)) return { kind: 'unparseable', reason: 'time stamp out of range' };
    const body = line.slice(stamp[0].length);
    if (body.startsWith('starting up ')) {
      const out: LibvirtLine = { kind: 'starting', timeMs };
      const v = VERSIONS.exec(body);
      if (v?.[1] !== undefined) out.libvirtVersion = v[1].trim();
      if (v?.[2] !== undefined) out.qemuVersion = v[2].trim();
      return out;
    }
    const shut = /^shutting down, reason=(\S+)/.exec(body);
    if (shut) return { kind: 'shutdown', timeMs, reason: shut[1] ?? '' };
    return { kind: 'message', timeMs, text: body };
  }
  const qemu = QEMU_STAMP.exec(line);
  if (qemu) {
    const timeMs = Date.parse(qemu[1] ?? '');
    if (!Number.isFinite(timeMs)) return { kind: 'unparseable', reason: 'time stamp out of range' };
    return { kind: 'message', timeMs, text: line.slice(qemu[0].length) };
  }
  const uuid = UUID_ARG.exec(line);
  const name = NAME_ARG.exec(line);
  const incoming = INCOMING_ARG.exec(line);
  if (uuid || name || incoming) {
    const out: LibvirtLine = { kind: 'command-line' };
    if (name?.[1] !== undefined) out.name = name[1];
    if (uuid?.[1] !== undefined) out.uuid = uuid[1].toLowerCase();
    if (incoming?.[1] !== undefined && incoming[1] !== '\\') out.incoming = incoming[1];
    return out;
  }
  return { kind: 'other' };
}
