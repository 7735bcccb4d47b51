/**
 * Time zone of a log's time stamps. oslo.log writes local wall time without an offset, so the
 * config names the zone (an IANA name such as `Europe/Berlin`, `UTC`, or a fixed offset such as
 * `+02:00`), and this turns a wall-clock reading into ms since the epoch. Pure, no I/O.
 *
 * In the hour around a DST change a wall time is ambiguous (or does not exist); it resolves to one
 * of the candidate instants, so such stamps may be off by the DST step (an hour). Configure UTC
 * logging on the compute hosts to avoid this.
 */
import { LivemigError } from '../errors.js';

export interface TimeZone {
  readonly name: string;
  /** Wall-clock fields (month 1..12) in this zone to ms since the epoch. */
  toEpochMs(year: number, month: number, day: number, hour: number, minute: number, second: number, ms: number): number;
}

const OFFSET = /^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$/;

export function parseTimeZone(spec: string): TimeZone {
  const name = spec.trim();
  if (name === 'UTC' || name === 'Z' || name === 'GMT' || name === 'Etc/UTC') return fixedZone(name, 0);
  const m = OFFSET.exec(name);
  if (m) {
    const hours = Number(m[2]);
    const minutes = Number(m[3] ?? '0');
    if (hours > 14 || minutes > 59) throw new LivemigError('LME_LOG_TIMEZONE', [spec, 'the offset is out of range (at most ±14:00)']);
    return fixedZone(name, (m[1] === '-' ? -1 : 1) * (hours * 60 + minutes) * 60_000);
  }
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: name,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  } catch {
    throw new LivemigError('LME_LOG_TIMEZONE', [spec, 'not an IANA time zone name, UTC, or an offset such as +02:00']);
  }
  return ianaZone(name, format);
}

function fixedZone(name: string, offsetMs: number): TimeZone {
  return {
    name,
    toEpochMs: (y, mo, d, h, mi, s, ms) => Date.UTC(y, mo - 1, d, h, mi, s, ms) - offsetMs,
  };
}

function ianaZone(name: string, format: Intl.DateTimeFormat): TimeZone {
  // Intl is slow; the offset changes at most a few times a year, so cache it per wall-clock hour.
  const cache = new Map<number, number>();
  const offsetAt = (epochMs: number): number => {
    const parts = format.formatToParts(new Date(epochMs));
    const get = (type: string): number => Number(parts.find((p) => p.type === type)?.value ?? '0');
    const wall = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
    return wall - Math.floor(epochMs / 1000) * 1000;
  };
  return {
    name,
    toEpochMs(y, mo, d, h, mi, s, ms) {
      const wallHour = Date.UTC(y, mo - 1, d, h);
      let offset = cache.get(wallHour);
      if (offset === undefined) {
        // Two steps: the offset at the naive guess, then at the corrected instant.
        const first = offsetAt(wallHour);
        const second = offsetAt(wallHour - first);
        offset = first === second ? first : Math.max(first, second);
        if (cache.size > 10_000) cache.clear();
        cache.set(wallHour, offset);
      }
      return Date.UTC(y, mo - 1, d, h, mi, s, ms) - offset;
    },
  };
}
