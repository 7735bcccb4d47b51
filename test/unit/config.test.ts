import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDurationMs } from '../../src/config/duration.js';
import { defaultConfig, loadConfigFile, parseConfigText } from '../../src/config/load.js';
import { LivemigError } from '../../src/errors.js';

const GOOD = `
polling:
  idle_interval: 2s
  migrating_interval: 50ms
records:
  max_count: 50
  max_age: 7d
state_file: /tmp/state.json
vms:
  - name: web-1
    flavor: m
    labels: { team: storage, az: nova-1 }
    monitors:
      - host: hv1
        qmp: { unix: /run/qemu/web-1.qmp }
      - host: hv2
        qmp: { tcp: "10.0.0.2:4445" }
      - host: hv3
        qmp: { virsh: { domain: instance-0000000a, uri: "qemu+ssh://hv3/system" } }
`;

function errorOf(text: string): LivemigError {
  try {
    parseConfigText(text, 'cfg.yml');
  } catch (err) {
    if (err instanceof LivemigError) return err;
    throw err;
  }
  throw new Error('expected the config to be refused');
}

describe('config', () => {
  it('takes null for the keys whose absence means none, as the reference writes them', () => {
    const config = parseConfigText(
      'ping: { source_address: null, netns: null }\nlibvirt: { host: null }\nhosts: [{ name: hv1, netns: null }]\n',
      'cfg.yml',
    );
    expect(config.ping.sourceAddress).toBeNull();
    expect(config.ping.netns).toBeNull();
    expect(config.libvirt.host).toBeNull();
    expect(config.hosts[0]?.netns).toBeNull();
  });

  it('parses a full config into typed values in base units', () => {
    const config = parseConfigText(GOOD, 'cfg.yml');
    expect(config.polling).toMatchObject({ idleIntervalMs: 2000, migratingIntervalMs: 50, commandTimeoutMs: 2000 });
    expect(config.records).toMatchObject({ maxCount: 50, maxAgeMs: 7 * 86_400_000 });
    expect(config.stateFile).toBe('/tmp/state.json');
    const vm = config.vms[0];
    expect(vm?.flavor).toBe('m');
    expect(vm?.labels).toEqual({ team: 'storage', az: 'nova-1' });
    expect(vm?.monitors.map((m) => m.endpoint)).toEqual([
      { kind: 'unix', path: '/run/qemu/web-1.qmp' },
      { kind: 'tcp', host: '10.0.0.2', port: 4445 },
      { kind: 'virsh', domain: 'instance-0000000a', uri: 'qemu+ssh://hv3/system', virshPath: 'virsh' },
    ]);
    expect(new Set(vm?.monitors.map((m) => m.id)).size).toBe(3);
  });

  it('has defaults that serve a compute host through libvirt', () => {
    const config = defaultConfig();
    expect(config.vms).toEqual([]);
    expect(config.libvirt).toMatchObject({ discover: 'auto', uri: 'qemu:///system' });
    expect(config.polling.migratingIntervalMs).toBe(100);
  });

  it.each([
    ['unknown top-level key', 'bogus: 1', '(top level): unknown key "bogus"'],
    ['bad duration', 'polling: {idle_interval: 5x}', 'polling.idle_interval: "5x" is not a duration'],
    ['duration out of range', 'polling: {migrating_interval: 1ms}', 'polling.migrating_interval: 1ms is out of range'],
    ['unknown transport', 'vms: [{name: a, monitors: [{host: h, qmp: {ftp: x}}]}]', 'vms[0].monitors[0].qmp: expected one of'],
    ['bad tcp port', 'vms: [{name: a, monitors: [{host: h, qmp: {tcp: "a:99999"}}]}]', 'vms[0].monitors[0].qmp.tcp: "a:99999" is not host:port'],
    ['no monitors', 'vms: [{name: a, monitors: []}]', 'vms[0].monitors: a VM needs at least one monitor'],
    ['reserved label', 'vms: [{name: a, labels: {host: x}, monitors: [{host: h, qmp: {unix: /s}}]}]', 'vms[0].labels.host: "host" is set by the exporter'],
    ['invalid label name', 'vms: [{name: a, labels: {"a-b": x}, monitors: [{host: h, qmp: {unix: /s}}]}]', '"a-b" is not a valid Prometheus label name'],
    ['duplicate VM', 'vms: [{name: a, monitors: [{host: h, qmp: {unix: /s}}]}, {name: a, monitors: [{host: h, qmp: {unix: /t}}]}]', 'vms[1].name: duplicate VM name "a"'],
    ['wrong type', 'records: {max_count: many}', 'records.max_count:'],
    ['host with a shell metacharacter', 'vms: [{name: a, monitors: [{host: "h;rm", qmp: {unix: /s}}]}]', 'vms[0].monitors[0].host:'],
  ])('refuses %s, naming the file, line, column and the key path', (_name, text, expected) => {
    const err = errorOf(text);
    expect(err.code).toBe('LME_CONFIG_INVALID');
    expect(err.message).toMatch(/^config file cfg\.yml:1:\d+: /);
    expect(err.message).toContain(expected);
  });

  it('refuses YAML syntax errors with the line and column, every one of them', () => {
    const err = errorOf('vms: [\n  - a');
    expect(err.code).toBe('LME_CONFIG_YAML');
    expect(err.message).toBe(
      [
        'config file cfg.yml:2:3 is not valid YAML: Block collections are not allowed within flow collections',
        'config file cfg.yml:2:6 is not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
      ].join('\n'),
    );
  });

  it('refuses a YAML alias bomb as bad YAML, naming the file (issue 13, item 8)', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]', ...'bcdefgh'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(', ')}]`)].join('\n');
    const err = errorOf(bomb);
    expect(err.code).toBe('LME_CONFIG_YAML');
    expect(err.message).toBe('config file cfg.yml is not valid YAML: Excessive alias count indicates a resource exhaustion attack');
  });

  it('says what a size takes for a fraction, not what a QMP monitor takes', () => {
    const err = errorOf('logs_options: {max_line_length: 2048.5}');
    expect(err.message).toBe('config file cfg.yml:1:33: logs_options.max_line_length: "2048.5" is not a size (write e.g. 65536, 64KiB, 1MiB)');
    expect(errorOf('logs_options: {max_line_length: [1]}').message).toBe('config file cfg.yml:1:33: logs_options.max_line_length: a size: a whole number of bytes, or e.g. "64KiB", "1MiB"');
  });

  it.each([
    ['a relative QMP socket path', 'vms: [{name: a, monitors: [{host: h, qmp: {unix: run/qmp.sock}}]}]', 'vms[0].monitors[0].qmp.unix: an absolute socket path'],
    ['a relative identity_file', 'hosts: [{name: h, ssh: {address: 10.0.0.1, user: u, identity_file: keys/id}}]', 'hosts[0].ssh.identity_file: an absolute path to the private key'],
  ])('refuses %s (issue 13, item 10)', (_name, text, expected) => {
    expect(errorOf(text).message).toContain(expected);
  });

  it('refuses too many free labels (bounded cardinality)', () => {
    const labels = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`l${i}`, 'x']));
    const err = errorOf(JSON.stringify({ vms: [{ name: 'a', labels, monitors: [{ host: 'h', qmp: { unix: '/s' } }] }] }));
    expect(err.message).toContain('at most 8 labels per VM');
  });

  it('names a missing file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'livemig-cfg-'));
    await expect(loadConfigFile(join(dir, 'nope.yml'))).rejects.toThrow(/cannot read config file .*nope\.yml: ENOENT/);
    await writeFile(join(dir, 'ok.yml'), GOOD);
    await expect(loadConfigFile(join(dir, 'ok.yml'))).resolves.toMatchObject({ stateFile: '/tmp/state.json' });
    await rm(dir, { recursive: true });
  });
});

describe('durations', () => {
  it.each([
    ['100ms', 100],
    ['10s', 10_000],
    ['1m30s', 90_000],
    ['1.5s', 1500],
    ['30d', 30 * 86_400_000],
    ['', null],
    ['10', null],
    ['s', null],
    ['10s ', null],
  ])('%s -> %s', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });
});
