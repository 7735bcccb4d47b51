import { mkdtemp as makeTempDir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/exporter-process.js';

const tempDirs: string[] = [];
/** A temporary directory, removed after the file's tests. */
async function mkdtemp(prefix: string): Promise<string> {
  const dir = await makeTempDir(prefix);
  tempDirs.push(dir);
  return dir;
}

describe('livemig-exporter CLI', () => {
  afterAll(() => Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true }))));

  it('check-config accepts a valid file with exit 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lme-cli-'));
    const file = join(dir, 'ok.yml');
    await writeFile(file, 'vms:\n  - name: a\n    monitors: [{host: h1, qmp: {unix: /run/a.qmp}}, {host: h2, qmp: {tcp: "10.0.0.2:4444"}}]\n');
    const { code, stdout } = await runCli(['check-config', file]);
    expect(code).toBe(0);
    expect(stdout).toContain('valid (1 VMs, 2 QEMU monitors');
  });

  it('check-config refuses a bad file with exit 2, naming the file, key path and problem', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lme-cli-'));
    const file = join(dir, 'bad.yml');
    await writeFile(file, 'polling:\n  migrating_interval: fast\n');
    const { code, stderr } = await runCli(['check-config', file]);
    expect(code).toBe(2);
    expect(stderr).toBe(`livemig-exporter: config file ${file}:2:23: polling.migrating_interval: "fast" is not a duration (write e.g. 100ms, 10s, 5m, 30d)\n`);
  });

  it('check-config lists every problem, one a line, each with the file, line and column', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lme-cli-'));
    const file = join(dir, 'bad.yml');
    await writeFile(file, 'polling:\n  idle_interval: 5\nvms:\n  - name: a\nmonitors: [{host: h, qmp: {unix: /s}}]\n');
    const { code, stderr } = await runCli(['check-config', file]);
    expect(code).toBe(2);
    expect(stderr.split('\n')).toEqual([
      `livemig-exporter: config file ${file}:2:18: polling.idle_interval: 5 is a number without a unit: write 5s`,
      expect.stringMatching(new RegExp(`^livemig-exporter: config file ${file}:4:5: vms\\[0\\]\\.monitors: missing: write "monitors:" in the VM`)),
      `livemig-exporter: config file ${file}:5:1: (top level): unknown key "monitors": it belongs in the vms entry at line 4: indent it to line up with "name:"`,
      '',
    ]);
  });

  it('check-config warns about a host that no hosts entry declares, and exits 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lme-cli-'));
    const file = join(dir, 'typo.yml');
    await writeFile(file, 'hosts: [{name: hv1, netns: lab-hv1}]\nvms:\n  - name: a\n    monitors: [{host: hv2, qmp: {unix: /run/a.qmp}}]\n');
    const { code, stdout, stderr } = await runCli(['check-config', file]);
    expect(code).toBe(0);
    expect(stdout).toContain('valid (1 VMs, 1 QEMU monitors, libvirt rpc, discover auto, 1 warning)');
    expect(stderr).toBe(`livemig-exporter: warning: config file ${file}:4:23: vms[0].monitors[0].host: host "hv2" is not declared in hosts, so it is this machine (did you mean "hv1"?)\n`);
  });

  it('check-config refuses a YAML alias bomb with exit 2, naming the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lme-cli-'));
    const file = join(dir, 'bomb.yml');
    const levels = 'abcdefgh'.split('');
    await writeFile(file, ['a: &a [x, x, x, x, x, x, x, x, x]', ...levels.slice(1).map((k, i) => `${k}: &${k} [${Array(9).fill(`*${levels[i]}`).join(', ')}]`)].join('\n'));
    const { code, stderr } = await runCli(['check-config', file]);
    expect(code).toBe(2);
    expect(stderr).toBe(`livemig-exporter: config file ${file} is not valid YAML: Excessive alias count indicates a resource exhaustion attack\n`);
  });

  it('run refuses a bad config with exit 2 before it starts anything', async () => {
    const { code, stderr } = await runCli(['--config', '/nonexistent/livemig.yml']);
    expect(code).toBe(2);
    expect(stderr).toContain('cannot read config file /nonexistent/livemig.yml: ENOENT');
  });

  it.each([
    [['--web.listen-address', 'nonsense'], 'flag --web.listen-address: "nonsense" is not [host]:port'],
    [['--web.telemetry-path', 'metrics'], 'flag --web.telemetry-path: "metrics" must start with /'],
    [['--log.level', 'loud'], "argument 'loud' is invalid"],
    [['--no-such-flag'], "unknown option '--no-such-flag'"],
  ])('refuses bad flags %j with exit 2', async (args, message) => {
    const { code, stderr } = await runCli(args);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
  });

  it('prints its version', async () => {
    const { code, stdout } = await runCli(['--version']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^livemig-exporter, version \d+\.\d+\.\d+ \(revision: ([0-9a-f]{7,40}|unknown)\)\n {2}nodejs: v\d+\.\d+\.\d+\n$/);
  });
});
