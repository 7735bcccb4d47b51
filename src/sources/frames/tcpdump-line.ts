/**
 * Reads one line of `tcpdump -l -e -n -tt` output (one Ethernet frame) and tells which kind of frame
 * a VM sent: QEMU's self-announce (RARP), a gratuitous ARP, or any other frame of the guest's.
 * Also builds tcpdump's argv for the frame watcher. Pure: no I/O.
 *
 * A line looks like (tcpdump 4.99):
 *   1796212338.653428 52:54:00:4c:4d:01 > ff:ff:ff:ff:ff:ff, ethertype Reverse ARP (0x8035), length 60: Reverse Request who-is ...
 *   1796212338.674680 52:54:00:4c:4d:01 > ff:ff:ff:ff:ff:ff, ethertype 802.1Q (0x8100), length 60: vlan 100, p 0, ethertype ARP (0x0806), Request who-has ...
 */
import type { FrameKind } from './types.js';

export interface CapturedFrame {
  /** Wall-clock ms since the epoch, from the `-tt` stamp, sub-ms fraction kept. */
  atMs: number;
  sourceMac: string;
  destinationMac: string;
  /** The inner ethertype: the one after any VLAN tags. */
  ethertype: number;
  /** The outermost VLAN id; null for an untagged frame. */
  vlan: number | null;
  kind: FrameKind;
}

export type ParsedLine = { ok: true; frame: CapturedFrame } | { ok: false; reason: string };

const ETHERTYPE_RARP = 0x8035;
const ETHERTYPE_ARP = 0x0806;
const VLAN_ETHERTYPES = new Set([0x8100, 0x88a8, 0x9100]);
const BROADCAST = 'ff:ff:ff:ff:ff:ff';
// tcpdump prints these lines short; a longer one is not its output, and is not worth scanning.
const MAX_LINE = 4096;

const MAC_TEXT = /^[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$/i;
const HEADER =
  /^(\d{1,12})\.(\d{1,9}) ([0-9A-Fa-f:]{17}) > ([0-9A-Fa-f:]{17}), ethertype [^,]*?\(0x([0-9a-f]{4})\), length \d+: ?(.*)$/;
// After an 802.1Q tag: "vlan 100, p 0, ethertype IPv4 (0x0800), 198.19.0.10 > ..." (", DEI" when set).
const VLAN_TAG = /^vlan (\d{1,4}), p \d(?:, DEI)?, ethertype [^,]*?\(0x([0-9a-f]{4})\),? ?(.*)$/;
// "(ff:ff:ff:ff:ff:ff)" ("(Broadcast)" without -n) is the target MAC, printed when it is not all zeros.
const ARP_REQUEST = /^Request who-has (\S+)(?: \([^)]*\))? tell ([^,\s]+)/;
const ARP_REPLY = /^Reply \S+ is-at /;

export function parseTcpdumpLine(line: string): ParsedLine {
  if (line.length > MAX_LINE) return fail(`line of ${line.length} chars, longer than tcpdump prints`, line);
  if (/^\s+\S/.test(line)) return fail('a continuation line (tcpdump\'s hex dump of the frame before), not a frame', line);
  const header = HEADER.exec(line);
  if (!header) return fail('not a tcpdump -e -n -tt Ethernet frame line', line);
  const [, seconds = '', fraction = '', source = '', destination = '', outerType = '', outerRest = ''] = header;
  const sourceMac = normalizeMac(source);
  const destinationMac = normalizeMac(destination);
  if (sourceMac === null || destinationMac === null) return fail('bad MAC address', line);

  let ethertype = parseInt(outerType, 16);
  let rest = outerRest;
  let vlan: number | null = null;
  while (VLAN_ETHERTYPES.has(ethertype)) {
    const tag = VLAN_TAG.exec(rest);
    if (!tag) return fail('unreadable VLAN tag', rest);
    const [, id = '', inner = '', after = ''] = tag;
    vlan ??= Number(id);
    ethertype = parseInt(inner, 16);
    rest = after;
  }

  const atMs = Number(seconds) * 1000 + Number(fraction.padEnd(9, '0')) / 1e6;
  return { ok: true, frame: { atMs, sourceMac, destinationMac, ethertype, vlan, kind: kindOf(ethertype, rest, destinationMac) } };
}

function kindOf(ethertype: number, text: string, destinationMac: string): FrameKind {
  if (ethertype === ETHERTYPE_RARP) return 'rarp';
  if (ethertype !== ETHERTYPE_ARP) return 'guest';
  const request = ARP_REQUEST.exec(text);
  if (request) return request[1] === request[2] ? 'garp' : 'guest';
  // tcpdump does not print a reply's target IP, so sender == target cannot be seen. A reply to one
  // asker goes to its MAC; one broadcast answers nobody's request: gratuitous (arping -A, keepalived).
  if (ARP_REPLY.test(text)) return destinationMac === BROADCAST ? 'garp' : 'guest';
  return 'guest';
}

function fail(what: string, text: string): ParsedLine {
  const cut = text.length > 80 ? `${text.slice(0, 80)}…` : text;
  return { ok: false, reason: `${what}: ${JSON.stringify(cut)}` };
}

/** `aa:bb:cc:dd:ee:ff` for `AA:BB:CC:DD:EE:FF` or `aa-bb-cc-dd-ee-ff`; null when the text is not a MAC. */
export function normalizeMac(text: string): string | null {
  return MAC_TEXT.test(text) ? text.toLowerCase().replaceAll('-', ':') : null;
}

const DEVICE_NAME = /^[A-Za-z0-9_.:][A-Za-z0-9_.:-]{0,14}$/;

/** tcpdump's argv (after `tcpdump`) to print at most maxFrames frames from or to `mac` on `device`, as parseTcpdumpLine reads them. */
export function tcpdumpArgs(device: string, mac: string, maxFrames: number): string[] {
  if (!DEVICE_NAME.test(device)) throw new RangeError(`device: not a Linux interface name: ${JSON.stringify(device)}`);
  const normalized = normalizeMac(mac);
  if (normalized === null) throw new RangeError(`mac: not a MAC address: ${JSON.stringify(mac)}`);
  if (!Number.isSafeInteger(maxFrames) || maxFrames < 1) throw new RangeError(`maxFrames: not a positive integer: ${maxFrames}`);
  return [
    '-i', device,
    '-l', '-n', '-e', '-tt',
    // The headers are all the parser reads; 128 bytes keeps a VLAN-tagged IPv6 header whole.
    '-s', '128',
    '-c', String(maxFrames),
    // Into a pipe, tcpdump would otherwise buffer frames in the kernel until its buffer fills.
    '--immediate-mode',
    // `vlan` last: it shifts the offsets of any primitive after it to the inner header.
    `ether host ${normalized} and (rarp or arp or ip or ip6 or vlan)`,
  ];
}
