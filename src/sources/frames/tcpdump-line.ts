/**
 * tcpdump's `-e -n -tt` lines, one frame each, read into what the frame watcher tells apart
 * (test/fixtures/tcpdump/ holds real ones):
 *
 *   1796212338.653428 52:54:00:4c:4d:01 > ff:ff:ff:ff:ff:ff, ethertype Reverse ARP (0x8035), length 60: Reverse Request who-is ...
 *   1796212338.655546 52:54:00:4c:4d:01 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60: Request who-has 198.19.0.10 tell 198.19.0.10, length 46
 *   1796212338.672532 ... ethertype 802.1Q (0x8100), length 60: vlan 100, p 0, ethertype Reverse ARP (0x8035), ...
 *
 * A RARP (0x8035) is QEMU's self-announce; an ARP whose sender and target address are the same
 * (a request for itself, or a reply about itself) is a gratuitous ARP; any other frame from the
 * MAC is the guest's own. Also the argv of that capture, with its filter. Pure.
 */
import type { FrameKind } from './types.js';

export interface CapturedFrame {
  /** Wall ms of tcpdump's `-tt` stamp (its microseconds kept as a fraction). */
  atMs: number;
  sourceMac: string;
  destinationMac: string;
  /** The inner ethertype of a VLAN-tagged frame. */
  ethertype: number;
  vlan: number | null;
  kind: FrameKind;
}

export type ParsedLine = { ok: true; frame: CapturedFrame } | { ok: false; reason: string };

const MAC = '[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}';
const HEAD = new RegExp(`^(\\d{1,12})\\.(\\d{6}) (${MAC}) > (${MAC}), ethertype [^(]*\\(0x([0-9a-fA-F]{4})\\), length \\d+: ?(.*)$`);
const VLAN = /^vlan (\d{1,4}), p \d, ethertype [^(]*\(0x([0-9a-fA-F]{4})\),? ?(.*)$/;
const ARP_REQUEST = /^Request who-has (\S+)(?: \([^)]*\))? tell (\S+?),/;
const ARP_REPLY = /^Reply (\S+) is-at /;
const BROADCAST = 'ff:ff:ff:ff:ff:ff';
const ETHERTYPE = { vlan: 0x8100, arp: 0x0806, rarp: 0x8035 } as const;

export function parseTcpdumpLine(line: string): ParsedLine {
  const head = HEAD.exec(line);
  if (!head) return { ok: false, reason: `not a tcpdump -e -n -tt frame line: ${JSON.stringify(line.slice(0, 80))}` };
  const [, seconds, micros, source, destination, type, rest] = head as unknown as [string, string, string, string, string, string, string];
  let ethertype = parseInt(type, 16);
  let payload = rest;
  let vlan: number | null = null;
  if (ethertype === ETHERTYPE.vlan) {
    const tagged = VLAN.exec(rest);
    if (!tagged) return { ok: false, reason: `802.1Q frame without its vlan and inner ethertype: ${JSON.stringify(rest.slice(0, 80))}` };
    vlan = Number(tagged[1]);
    ethertype = parseInt(tagged[2] as string, 16);
    payload = tagged[3] as string;
  }
  return {
    ok: true,
    frame: {
      atMs: Number(seconds) * 1000 + Number(micros) / 1000,
      sourceMac: source.toLowerCase(),
      destinationMac: destination.toLowerCase(),
      ethertype,
      vlan,
      kind: kindOf(ethertype, payload, destination.toLowerCase()),
    },
  };
}

function kindOf(ethertype: number, payload: string, destination: string): FrameKind {
  if (ethertype === ETHERTYPE.rarp) return 'rarp';
  if (ethertype !== ETHERTYPE.arp) return 'guest';
  const request = ARP_REQUEST.exec(payload);
  if (request) return request[1] === request[2] ? 'garp' : 'guest';
  // tcpdump does not print a reply's target address: a reply broadcast about itself is an
  // announcement, one sent to a single asker an answer.
  return ARP_REPLY.test(payload) && destination === BROADCAST ? 'garp' : 'guest';
}

/** aa:bb:cc:dd:ee:ff from `AA:BB:...` or `aa-bb-...`; null when not a MAC. */
export function normalizeMac(text: string): string | null {
  const mac = text.trim().toLowerCase().replaceAll('-', ':');
  return new RegExp(`^${MAC}$`).test(mac) ? mac : null;
}

const DEVICE = /^[A-Za-z0-9_.:][A-Za-z0-9_.:-]{0,14}$/;

/** tcpdump's argv (after the program) for one VM's frames on a device, at most `maxFrames` of them. */
export function tcpdumpArgs(device: string, mac: string, maxFrames: number): string[] {
  if (!DEVICE.test(device)) throw new RangeError(`device ${JSON.stringify(device)} is not a network device name (1-15 letters, digits, "_", ".", ":" or "-")`);
  const normalized = normalizeMac(mac);
  if (!normalized) throw new RangeError(`mac ${JSON.stringify(mac)} is not a MAC address such as 52:54:00:12:34:56`);
  if (!Number.isSafeInteger(maxFrames) || maxFrames < 1) throw new RangeError(`maxFrames ${maxFrames} is not a positive whole number`);
  // Only the VM's frames, of the kinds that tell where it is; VLAN-tagged ones too (a trunk).
  const filter = `ether src ${normalized} and (rarp or arp or ip or ip6 or vlan)`;
  return ['-i', device, '-l', '-n', '-e', '-tt', '--immediate-mode', '-s', '128', '-c', String(maxFrames), filter];
}
