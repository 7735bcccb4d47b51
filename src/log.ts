import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { logfmtStream } from './logfmt.js';

export type LogFormat = 'json' | 'logfmt' | 'pretty';
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'logfmt', 'pretty'];
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type { Logger };

/** Keys that may hold secrets anywhere in a logged object; pino replaces their values. */
const REDACT = ['password', 'passphrase', 'privateKey', '*.password', '*.passphrase', '*.privateKey', 'config.*.password'];

/**
 * json: one object a line, `"level":"info"` and `"time":"2026-…Z"` (ISO 8601, UTC), as log
 * shippers read them; logfmt: the same fields as `key=value`; pretty: pino-pretty, for a terminal.
 */
export function createLogger(level: LogLevel, format: LogFormat, destination?: NodeJS.WritableStream): Logger {
  const options: LoggerOptions = { level, redact: { paths: REDACT, censor: '[redacted]' } };
  if (format === 'pretty') {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { destination: 2, colorize: false } } });
  }
  const named: LoggerOptions = { ...options, formatters: { level: (label) => ({ level: label }) }, timestamp: pino.stdTimeFunctions.isoTime };
  const target = (destination ?? pino.destination(2)) as NodeJS.WritableStream;
  return pino(named, (format === 'logfmt' ? logfmtStream(target) : target) as DestinationStream);
}
