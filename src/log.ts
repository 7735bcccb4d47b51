import { pino, type Logger, type LoggerOptions } from 'pino';

export type LogFormat = 'json' | 'pretty';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type { Logger };

/** Keys that may hold secrets anywhere in a logged object; pino replaces their values. */
const REDACT = ['password', 'passphrase', 'privateKey', '*.password', '*.passphrase', '*.privateKey', 'config.*.password'];

export function createLogger(level: LogLevel, format: LogFormat, destination?: NodeJS.WritableStream): Logger {
  const options: LoggerOptions = { level, redact: { paths: REDACT, censor: '[redacted]' } };
  if (format === 'pretty') {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { destination: 2, colorize: false } } });
  }
  return destination ? pino(options, destination as pino.DestinationStream) : pino(options, pino.destination(2));
}
