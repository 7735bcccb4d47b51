import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, type LogFormat } from '../../src/log.js';
import { toLogfmt } from '../../src/logfmt.js';

function capture(format: LogFormat): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, log: createLogger('debug', format, sink) };
}

describe('log formats', () => {
  it('json: level names and ISO 8601 time stamps', () => {
    const { lines, log } = capture('json');
    log.child({ component: 'web' }).warn({ url: 'http://x' }, 'listening');
    const entry = JSON.parse(lines[0] as string) as Record<string, unknown>;
    expect(entry).toMatchObject({ level: 'warn', component: 'web', url: 'http://x', msg: 'listening' });
    expect(entry.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });

  it('json: secrets are still redacted', () => {
    const { lines, log } = capture('json');
    log.info({ password: 'hunter2', ssh: { passphrase: 'x' } }, 'login');
    expect(lines[0]).not.toContain('hunter2');
    expect(JSON.parse(lines[0] as string)).toMatchObject({ password: '[redacted]', ssh: { passphrase: '[redacted]' } });
  });

  it('logfmt: time, level and msg first, then the fields; nested objects flattened', () => {
    const { lines, log } = capture('logfmt');
    log.child({ component: 'tracker' }).error({ vm: 'web 1', detail: { message: 'a "b"\nc' }, hosts: ['hv1', 'hv2'], n: 3 }, 'migration failed');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^time=\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z level=error msg="migration failed" pid=\d+ hostname=\S+ component=tracker vm="web 1" detail\.message="a \\"b\\"\\nc" hosts="\[\\"hv1\\",\\"hv2\\"\]" n=3$/);
  });
});

describe('toLogfmt', () => {
  it.each([
    ['{"level":"info","time":"2026-01-02T03:04:05.678Z","msg":"ok","a":"plain","b":"","c":"x=y","d":null,"e":true}', 'time=2026-01-02T03:04:05.678Z level=info msg=ok a=plain b="" c="x=y" d=null e=true'],
    ['{"msg":"x","bad key":1,"k\\"q":2}', 'msg=x bad_key=1 k_q=2'],
    ['not json', 'msg="not json"'],
  ])('%s', (line, expected) => {
    expect(toLogfmt(line)).toBe(expected);
  });
});
