import { describe, expect, it } from 'vitest';
import { defaultConfig, parseConfigText } from '../../src/config/load.js';
import { LivemigError } from '../../src/errors.js';

const VM = `
vms:
  - name: web-1
    instance_uuid: 0B5C7D3E-4F1A-4C2B-9E8D-7A6B5C4D3E2F
    monitors: [{ host: hv1, qmp: { unix: /run/qemu/web-1.qmp } }]
`;

function errorOf(text: string): string {
  try {
    parseConfigText(text, 'livemig.yml');
  } catch (err) {
    expect(err).toBeInstanceOf(LivemigError);
    return (err as Error).message;
  }
  throw new Error('config was accepted');
}

describe('logs config', () => {
  it('defaults: no logs, 64 KiB lines, start at the end', () => {
    const c = defaultConfig();
    expect(c.logs).toEqual([]);
    expect(c.logsOptions).toEqual({ maxLineLength: 65536, pollIntervalMs: 500, startAt: 'end', saveIntervalMs: 10_000 });
  });

  it('reads files, kinds, zones, sizes and the instance UUID (lower-cased)', () => {
    const c = parseConfigText(
      `${VM}
logs:
  - { host: hv1, path: /var/log/nova/nova-compute.log, timezone: Europe/Berlin }
  - { path: /var/log/libvirt/qemu/instance-0000002a.log, kind: libvirt-qemu }
logs_options: { max_line_length: 1MiB, poll_interval: 200ms, start_at: start, save_interval: 30s }
`,
      'livemig.yml',
    );
    expect(c.vms[0]?.instanceUuid).toBe('0b5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f');
    expect(c.logs).toEqual([
      { host: 'hv1', path: '/var/log/nova/nova-compute.log', kind: 'nova-compute', timezone: 'Europe/Berlin' },
      { host: 'local', path: '/var/log/libvirt/qemu/instance-0000002a.log', kind: 'libvirt-qemu', timezone: 'UTC' },
    ]);
    expect(c.logsOptions).toEqual({ maxLineLength: 1048576, pollIntervalMs: 200, startAt: 'start', saveIntervalMs: 30_000 });
  });

  it.each([
    ['logs: [{ path: /x.log, timezone: Mars/Olympus }]', /logs\[0\]\.timezone.*Mars\/Olympus/],
    ['logs: [{ path: relative.log }]', /logs\[0\]\.path.*absolute/],
    ['logs: [{ path: /x.log, kind: syslog }]', /logs\[0\]\.kind/],
    ['logs: [{ path: /x.log }, { path: /x.log }]', /logs\[1\]\.path.*already followed/],
    ['logs_options: { max_line_length: 12 }', /max_line_length.*out of range/],
    ['logs_options: { max_line_length: lots }', /max_line_length.*not a size/],
    ['logs_options: { start_at: middle }', /start_at/],
  ])('refuses %s, naming the key', (text, message) => {
    expect(errorOf(text)).toMatch(message);
  });

  it('refuses an instance UUID that is not one, and the same one twice', () => {
    expect(errorOf(VM.replace('0B5C7D3E-4F1A-4C2B-9E8D-7A6B5C4D3E2F', 'not-a-uuid'))).toMatch(/vms\[0\]\.instance_uuid.*UUID/);
    const twice = `${VM}  - name: web-2
    instance_uuid: 0b5c7d3e-4f1a-4c2b-9e8d-7a6b5c4d3e2f
    monitors: [{ host: hv1, qmp: { unix: /run/qemu/web-2.qmp } }]
`;
    expect(errorOf(twice)).toMatch(/vms\[1\]\.instance_uuid.*already the instance of vms\[0\]/);
  });
});
