/**
 * Config errors an operator can act on (issue 14, part 3): each names the file, line and column
 * and key path, says what to write, and all of them are listed, not only the first.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig, validateConfig } from '../../src/config/load.js';
import { notADuration } from '../../src/config/schema.js';
import { LivemigError } from '../../src/errors.js';

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, 'cfg.yml', { localNames: ['this-host'] });
  } catch (err) {
    expect(err).toBeInstanceOf(LivemigError);
    const e = err as LivemigError;
    // The message is the problems, one a line.
    expect(e.message).toBe(e.problems.map((p) => p.message).join('\n'));
    return e.problems.map((p) => p.message);
  }
  throw new Error('expected the config to be refused');
}

const warningsOf = (text: string, localNames = ['this-host']) => parseConfig(text, 'cfg.yml', { localNames }).warnings.map((w) => w.message);

describe('a number where a duration belongs', () => {
  it('gets the unit: `idle_interval: 5` says write 5s', () => {
    expect(problemsOf('polling:\n  idle_interval: 5\n')).toEqual(['config file cfg.yml:2:18: polling.idle_interval: 5 is a number without a unit: write 5s']);
  });

  it('gets a unit that fits the key when seconds do not', () => {
    expect(problemsOf('polling:\n  migrating_interval: 100\nrecords:\n  max_age: 30\n')).toEqual([
      'config file cfg.yml:2:23: polling.migrating_interval: 100 is a number without a unit: write 100ms (between 10ms and 10s)',
      'config file cfg.yml:4:12: records.max_age: 30 is a number without a unit: write 30m, 30h or 30d (between 1m and 3650d)',
    ]);
  });

  it.each([
    [0.5, 'polling.idle_interval', '0.5 is a number without a unit: write 0.5s'],
    [-1, 'polling.idle_interval', '-1 is a number without a unit: write a duration between 100ms and 10m'],
  ])('%s', (value, key, message) => {
    expect(problemsOf(`polling: {idle_interval: ${value}}`)).toEqual([`config file cfg.yml:1:26: ${key}: ${message}`]);
  });

  it('says what to write for an empty value or another type', () => {
    expect(notADuration(null, '1s', '1m')).toBe('is empty: write e.g. 100ms, 10s, 5m, 30d');
    expect(notADuration(true, '1s', '1m')).toBe('true is not a duration (write e.g. 100ms, 10s, 5m, 30d)');
    expect(problemsOf('ping:\n  period:\n')).toEqual(['config file cfg.yml:2:3: ping.period: is empty: write e.g. 100ms, 10s, 5m, 30d']);
  });
});

describe('a missing monitors, a block left unindented', () => {
  it('names what to write for a VM without monitors, at the VM', () => {
    expect(problemsOf('vms:\n  - name: web-1\n    flavor: m\n')).toEqual([
      'config file cfg.yml:2:5: vms[0].monitors: missing: write "monitors:" in the VM with one entry per host it runs on, e.g. "monitors: [{host: hv1, qmp: {unix: /run/qemu/NAME.qmp}}]" (qmp may also be {tcp: HOST:PORT} or {virsh: {domain: NAME}})',
    ]);
  });

  it('says where monitors belongs when it ended up at the top level', () => {
    expect(problemsOf('vms:\n- name: web-1\nmonitors:\n- host: hv1\n  qmp: {unix: /run/qemu/web-1.qmp}\n')).toEqual([
      'config file cfg.yml:2:3: vms[0].monitors: missing: write "monitors:" in the VM with one entry per host it runs on, e.g. "monitors: [{host: hv1, qmp: {unix: /run/qemu/NAME.qmp}}]" (qmp may also be {tcp: HOST:PORT} or {virsh: {domain: NAME}})',
      'config file cfg.yml:3:1: (top level): unknown key "monitors": it belongs in the vms entry at line 2: indent it to line up with "name:"',
    ]);
  });

  it('says where the keys of an emptied section belong', () => {
    expect(problemsOf('polling:\nidle_interval: 5s\nmigrating_interval: 50ms\n')).toEqual([
      'config file cfg.yml:1:1: polling: is empty: nothing is indented below "polling:"; indent its keys below it, or remove the line',
      'config file cfg.yml:2:1: (top level): unknown key "idle_interval": it belongs under "polling:" (line 1): indent it below that line',
      'config file cfg.yml:3:1: (top level): unknown key "migrating_interval": it belongs under "polling:" (line 1): indent it below that line',
    ]);
  });

  it('says to write an entry when `vms:` is followed by unindented keys without a dash', () => {
    expect(problemsOf('vms:\nname: web-1\nmonitors: [{host: hv1, qmp: {unix: /s}}]\n')).toEqual([
      'config file cfg.yml:1:1: vms: is empty: nothing is indented below "vms:"; write its entries below it, each starting with "- ", or remove the line',
      'config file cfg.yml:2:1: (top level): unknown key "name": it belongs in an entry of "vms:" (line 1): indent the entry below that line, its first key after "- "',
      'config file cfg.yml:3:1: (top level): unknown key "monitors": it belongs in an entry of "vms:" (line 1): indent the entry below that line, its first key after "- "',
    ]);
  });

  it('follows the last entry down: a monitor\'s qmp left at the top level', () => {
    expect(problemsOf('vms:\n  - name: a\n    monitors:\n      - host: hv1\nqmp: {unix: /s}\n')).toEqual([
      'config file cfg.yml:4:9: vms[0].monitors[0].qmp: missing: write one of {unix: PATH}, {tcp: HOST:PORT}, {virsh: {domain, uri}}',
      'config file cfg.yml:5:1: (top level): unknown key "qmp": it belongs in the monitors entry at line 4: indent it to line up with "host:"',
    ]);
  });

  it('says which section takes a key found elsewhere, and which key a typo is of', () => {
    expect(problemsOf('state_file: /x\nidle_interval: 5s\npolling: {idle_intervl: 5s}\nbogus: 1\n')).toEqual([
      'config file cfg.yml:2:1: (top level): unknown key "idle_interval": it belongs in polling, not at the top level',
      'config file cfg.yml:3:11: polling: unknown key "idle_intervl" (did you mean "idle_interval"?)',
      'config file cfg.yml:4:1: (top level): unknown key "bogus"',
    ]);
  });

  it('points a badly indented key at its own column', () => {
    expect(problemsOf('vms:\n  - name: a\n  monitors:\n    - host: h\n')).toEqual(['config file cfg.yml:3:3 is not valid YAML: All mapping items must start at the same column']);
  });
});

describe('every problem, in the order of the file', () => {
  it('lists all of them, each with its line and column', () => {
    const text = [
      'vms:',
      '  - name: web-1',
      '    monitors: [{host: hv1, qmp: {tcp: "a:99999"}}]',
      '  - name: web-2',
      'polling:',
      '  idle_interval: 5',
      'records: {max_count: many}',
      '',
    ].join('\n');
    expect(problemsOf(text)).toEqual([
      'config file cfg.yml:3:39: vms[0].monitors[0].qmp.tcp: "a:99999" is not host:port',
      expect.stringMatching(/^config file cfg\.yml:4:5: vms\[1\]\.monitors: missing: /),
      'config file cfg.yml:6:18: polling.idle_interval: 5 is a number without a unit: write 5s',
      'config file cfg.yml:7:22: records.max_count: Invalid input: expected number, received string',
    ]);
  });

  it('keeps the first code and lists every problem without positions for a config built in code', () => {
    try {
      validateConfig({ polling: { idle_interval: 5 }, bogus: 1 }, '(generated)');
      throw new Error('accepted');
    } catch (err) {
      expect((err as LivemigError).code).toBe('LME_CONFIG_INVALID');
      expect((err as Error).message).toBe('config file (generated): polling.idle_interval: 5 is a number without a unit: write 5s\nconfig file (generated): (top level): unknown key "bogus"');
    }
  });

  it('follows aliases to the node they name', () => {
    expect(problemsOf('base: &b {idle_interval: 5}\npolling: *b\n').at(-1)).toBe('config file cfg.yml:1:26: polling.idle_interval: 5 is a number without a unit: write 5s');
  });
});

describe('hosts that no hosts entry declares', () => {
  const HOSTS = 'hosts:\n  - name: hv1\n    ssh: {address: 10.0.0.1, user: livemig}\n';

  it('warns for a monitor and a log on an undeclared host, with the declared name it is close to', () => {
    const text = `${HOSTS}vms:\n  - name: a\n    monitors:\n      - host: hv2\n        qmp: {unix: /s}\n      - host: hv1\n        qmp: {unix: /t}\nlogs:\n  - {host: nova-3, path: /x.log}\n`;
    expect(warningsOf(text)).toEqual([
      'config file cfg.yml:7:15: vms[0].monitors[0].host: host "hv2" is not declared in hosts, so it is this machine (did you mean "hv1"?)',
      'config file cfg.yml:12:12: logs[0].host: host "nova-3" is not declared in hosts, so it is this machine (hosts declares hv1)',
    ]);
  });

  it('says to declare it when there is no hosts section', () => {
    expect(warningsOf('vms: [{name: a, monitors: [{host: hv7, qmp: {unix: /s}}]}]')).toEqual([
      'config file cfg.yml:1:35: vms[0].monitors[0].host: host "hv7" is not declared in hosts, so it is this machine; declare it in hosts if it is another machine',
    ]);
  });

  it('does not warn for declared hosts, this machine\'s names, local and libvirt.host', () => {
    const text = `${HOSTS}libvirt: {host: compute-7}\nvms: [{name: a, monitors: [{host: hv1, qmp: {unix: /s}}, {host: this-host, qmp: {unix: /t}}, {host: local, qmp: {unix: /u}}, {host: compute-7, qmp: {unix: /v}}]}]\nlogs: [{path: /var/log/nova/nova-compute.log}]\n`;
    expect(warningsOf(text)).toEqual([]);
  });

  it('is a warning: the config is valid and used', () => {
    const loaded = parseConfig('vms: [{name: a, monitors: [{host: typo, qmp: {unix: /s}}]}]', 'cfg.yml', { localNames: [] });
    expect(loaded.config.vms[0]?.monitors[0]?.host).toBe('typo');
    expect(loaded.warnings.map((w) => w.code)).toEqual(['LME_CONFIG_HOST_UNDECLARED']);
  });
});
