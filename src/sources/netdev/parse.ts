/**
 * Pure parsers of Linux interface counters: /proc/net/dev (any layout: the column names are
 * taken from its header, so the current 16-column layout, the 2.2-era layout without
 * `compressed`/`multicast` and the 2.0 layout without bytes all read) and the one-number files of
 * /sys/class/net/IFACE/statistics/.
 */

export interface InterfaceCounters {
  interface: string;
  /** null when the layout has no bytes column (Linux 2.0). */
  receiveBytes: bigint | null;
  transmitBytes: bigint | null;
  receivePackets: bigint | null;
  transmitPackets: bigint | null;
}

export interface NetDevParse {
  interfaces: InterfaceCounters[];
  /** Lines skipped, each with the line and what is wrong with it. */
  errors: string[];
}

interface Layout {
  receive: string[];
  transmit: string[];
}

/** The layout of Linux >= 2.6 (and 2.4 with `compressed`), used when the header is missing. */
const CURRENT_LAYOUT: Layout = {
  receive: ['bytes', 'packets', 'errs', 'drop', 'fifo', 'frame', 'compressed', 'multicast'],
  transmit: ['bytes', 'packets', 'errs', 'drop', 'fifo', 'colls', 'carrier', 'compressed'],
};

const COUNTER = /^\d+$/;

export function parseProcNetDev(text: string): NetDevParse {
  const lines = text.split('\n');
  let layout = CURRENT_LAYOUT;
  const interfaces: InterfaceCounters[] = [];
  const errors: string[] = [];
  for (const raw of lines) {
    const line = raw.trimEnd();
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    if (colon === -1) {
      // Header: "Inter-|   Receive ...|  Transmit" then " face |bytes packets ...|bytes ...".
      const groups = line.split('|');
      if (groups.length === 3 && /\bpackets\b/.test(line)) {
        layout = { receive: words(groups[1] as string), transmit: words(groups[2] as string) };
      } else if (!/Receive|Transmit/.test(line)) {
        errors.push(`line ${JSON.stringify(line)}: no "IFACE:" and not a header`);
      }
      continue;
    }
    const name = line.slice(0, colon).trim();
    // Old kernels glued a large first counter to the colon ("eth0:123456789"), so split after it.
    const values = words(line.slice(colon + 1));
    const expected = layout.receive.length + layout.transmit.length;
    if (name === '' || /\s/.test(name)) {
      errors.push(`line ${JSON.stringify(line)}: no interface name before ":"`);
      continue;
    }
    if (values.length !== expected) {
      errors.push(`line ${JSON.stringify(line)}: ${values.length} counters, the header announces ${expected}`);
      continue;
    }
    const bad = values.find((v) => !COUNTER.test(v));
    if (bad !== undefined) {
      errors.push(`line ${JSON.stringify(line)}: "${bad}" is not a counter`);
      continue;
    }
    const pick = (group: string[], offset: number, column: string): bigint | null => {
      const at = group.indexOf(column);
      return at === -1 ? null : BigInt(values[offset + at] as string);
    };
    const tx = layout.receive.length;
    interfaces.push({
      interface: name,
      receiveBytes: pick(layout.receive, 0, 'bytes'),
      receivePackets: pick(layout.receive, 0, 'packets'),
      transmitBytes: pick(layout.transmit, tx, 'bytes'),
      transmitPackets: pick(layout.transmit, tx, 'packets'),
    });
  }
  return { interfaces, errors };
}

function words(text: string): string[] {
  return text.trim().split(/\s+/).filter((w) => w !== '');
}

/** One /sys/class/net/IFACE/statistics/* file: a decimal number and a newline. */
export function parseSysStatistic(text: string): bigint {
  const trimmed = text.trim();
  if (!COUNTER.test(trimmed)) throw new RangeError(`${JSON.stringify(text.slice(0, 40))} is not a counter`);
  return BigInt(trimmed);
}

/** True when `name` matches a configured interface name or glob (`*`, `?`, `[abc]`). */
export function interfaceMatches(patterns: readonly string[], name: string): boolean {
  return patterns.some((pattern) => globToRegExp(pattern).test(name));
}

const globCache = new Map<string, RegExp>();

function globToRegExp(pattern: string): RegExp {
  let cached = globCache.get(pattern);
  if (cached) return cached;
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') source += '.*';
    else if (c === '?') source += '.';
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 1);
      if (close > i + 1) {
        const body = pattern.slice(i + 1, close).replace(/\\/g, '\\\\');
        source += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
        i = close;
      } else source += '\\[';
    } else source += c.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  cached = new RegExp(`^${source}$`);
  globCache.set(pattern, cached);
  return cached;
}
