/**
 * Exporter conventions (issue 14, part 4), on the CLI as a user starts it: --version with the git
 * revision, JSON and logfmt logs, gzip on /metrics, POST /-/reload, and a SIMULATED lab run
 * telling Prometheus and the landing page so.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { stringify } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ExporterProcess, runCli } from '../helpers/exporter-process.js';
import { LabRun } from '../helpers/lab-cli.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const run = promisify(execFile);

let dir: string;
const running: ExporterProcess[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lme-conventions-'));
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop()));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A config of QMP monitors on sockets nobody serves: the VMs are watched (and in /metrics) all the same. */
function config(vms: string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    state_file: null,
    libvirt: { discover: 'off' },
    vms: vms.map((name) => ({ name, monitors: [{ host: 'hv1', qmp: { unix: join(dir, `${name}.qmp`) } }] })),
    ...extra,
  };
}

async function start(file: string | null, args: string[] = []): Promise<ExporterProcess> {
  const proc = await ExporterProcess.start(file, args);
  running.push(proc);
  return proc;
}

describe('--version', () => {
  it('prints the version and the git revision of the checkout', async () => {
    const revision = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const { code, stdout } = await runCli(['--version']);
    expect(code).toBe(0);
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(stdout).toBe(`livemig-exporter, version ${version} (revision: ${revision})\n  nodejs: ${process.version}\n`);
  });

  it('says the same revision in livemig_build_info', async () => {
    const revision = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const file = join(dir, 'build.yml');
    await writeFile(file, stringify(config([])));
    const proc = await start(file);
    expect(await proc.metrics()).toMatch(new RegExp(`^livemig_build_info\\{version="[^"]+",revision="${revision}",nodejs="${process.version}"\\} 1$`, 'm'));
  });
});

describe('logs', () => {
  it('json: level names and ISO time stamps on every line; config warnings logged at start', async () => {
    const file = join(dir, 'json.yml');
    await writeFile(file, stringify(config(['json-1'])));
    const proc = await start(file, ['--log.format', 'json']);
    await proc.stop();
    expect(proc.logs.length).toBeGreaterThan(2);
    for (const entry of proc.logs) {
      expect(['debug', 'info', 'warn', 'error']).toContain(entry.level);
      expect(entry.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    }
    expect(proc.logs.find((e) => e.msg === 'listening')).toMatchObject({ level: 'info', url: proc.url });
    // hv1 is in no hosts entry: a warning, and the exporter runs.
    expect(proc.logs.find((e) => e.code === 'LME_CONFIG_HOST_UNDECLARED')).toMatchObject({ level: 'warn', msg: expect.stringContaining(`${file}:7:15: vms[0].monitors[0].host: host "hv1" is not declared in hosts`) });
  });

  it('logfmt: time, level and msg first on every line', async () => {
    const file = join(dir, 'logfmt.yml');
    await writeFile(file, stringify(config([])));
    const proc = await start(file, ['--log.format', 'logfmt']);
    await proc.stop();
    const lines = proc.stderr.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(2);
    for (const line of lines) expect(line).toMatch(/^time=\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z level=(debug|info|warn|error) msg=/);
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^time=\\S+ level=info msg=listening pid=\\d+ hostname=\\S+ url=${proc.url.replace(/[.]/g, '\\.')} telemetryPath=/metrics version=`)));
  });
});

describe('gzip on /metrics', () => {
  it('is gzip when asked for (curl --compressed), plain when not', async () => {
    const file = join(dir, 'gzip.yml');
    await writeFile(file, stringify(config(['gz-1'])));
    const proc = await start(file);
    const url = `${proc.url}/metrics`;
    const compressed = await run('curl', ['-sS', '--compressed', '-D', '-', url], { encoding: 'utf8' });
    const [head, body] = compressed.stdout.split('\r\n\r\n') as [string, string];
    expect(head).toMatch(/^content-encoding: gzip$/im);
    expect(head).toMatch(/^vary: .*Accept-Encoding/im);
    expect(body).toContain('livemig_vm_info{vm="gz-1"');
    // Without curl undoing it: the bytes are gzip when asked for, the text when not.
    const raw = await run('curl', ['-sS', '-H', 'Accept-Encoding: gzip', url], { encoding: 'buffer' });
    expect([...raw.stdout.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
    const plain = await run('curl', ['-sS', '-D', '-', url], { encoding: 'utf8' });
    expect(plain.stdout).not.toMatch(/^content-encoding:/im);
    expect(plain.stdout).toContain('# HELP livemig_build_info');
  });
});

describe('POST /-/reload', () => {
  it('applies a good file (a new VM appears in /metrics); a bad one is answered with its problems and the running config kept', async () => {
    const file = join(dir, 'reload.yml');
    await writeFile(file, stringify(config(['rl-1'])));
    const proc = await start(file);
    expect(await proc.metrics()).not.toContain('vm="rl-2"');

    await writeFile(file, stringify(config(['rl-1', 'rl-2'], { polling: { idle_interval: '2s' } })));
    const good = await fetch(`${proc.url}/-/reload`, { method: 'POST' });
    expect(good.status).toBe(200);
    expect(await good.json()).toEqual({
      status: 'success',
      data: { file, vms: 2, warnings: [expect.stringContaining('host "hv1" is not declared in hosts'), expect.stringContaining('host "hv1" is not declared in hosts')], notApplied: ['polling'] },
    });
    expect(await proc.metrics()).toMatch(/^livemig_vm_info\{vm="rl-2",flavor=""\} 1$/m);

    await writeFile(file, 'polling:\n  idle_interval: 5\nvms:\n  - name: rl-3\n');
    const bad = await fetch(`${proc.url}/-/reload`, { method: 'POST' });
    expect(bad.status).toBe(500);
    const body = (await bad.json()) as { status: string; error: string; errors: string[] };
    expect(body.status).toBe('error');
    expect(body.errors).toEqual([
      `config file ${file}:2:18: polling.idle_interval: 5 is a number without a unit: write 5s`,
      expect.stringMatching(new RegExp(`^config file ${file}:4:5: vms\\[0\\]\\.monitors: missing: `)),
    ]);
    expect(body.error).toBe(body.errors.join('\n'));
    const metrics = await proc.metrics();
    expect(metrics).toContain('livemig_vm_info{vm="rl-1"');
    expect(metrics).toContain('livemig_vm_info{vm="rl-2"');
    expect(metrics).not.toContain('vm="rl-3"');
    expect(proc.logs.find((e) => e.msg === 'config reload failed; keeping the running config')).toMatchObject({ level: 'error', by: 'POST /-/reload' });
    expect((await fetch(`${proc.url}/-/reload`)).status).toBe(405);
  });

  it('needs the web config\'s credentials like every endpoint', async () => {
    const file = join(dir, 'auth.yml');
    await writeFile(file, stringify(config(['au-1'])));
    const webFile = join(dir, 'web.yml');
    await writeFile(webFile, stringify({ basic_auth_users: { alice: bcrypt.hashSync('s3cret', 4) } }));
    const proc = await start(file, ['--web.config.file', webFile]);
    expect((await fetch(`${proc.url}/-/reload`, { method: 'POST' })).status).toBe(401);
    const auth = { Authorization: `Basic ${Buffer.from('alice:s3cret').toString('base64')}` };
    expect((await fetch(`${proc.url}/-/reload`, { method: 'POST', headers: { Authorization: `Basic ${Buffer.from('alice:wrong').toString('base64')}` } })).status).toBe(401);
    expect((await fetch(`${proc.url}/-/reload`, { method: 'POST', headers: auth })).status).toBe(200);
  });
});

describe('a SIMULATED lab run', () => {
  it('says so in /metrics (livemig_lab_info) and on the landing page', async () => {
    const out = join(dir, 'lab');
    const lab = LabRun.start(['--scenario', 'demo', '--engine', 'sim', '--count', '1', '--out', out]);
    try {
      const url = await lab.url();
      expect(await (await fetch(`${url}/metrics`)).text()).toMatch(/^livemig_lab_info\{engine="sim",simulated="true"\} 1$/m);
      const html = await (await fetch(`${url}/`)).text();
      expect(html).toContain('<strong>SIMULATED</strong> lab run (engine sim)');
      await lab.finished();
    } finally {
      await lab.stop();
    }
  });

  it('is absent outside the lab', async () => {
    const file = join(dir, 'nolab.yml');
    await writeFile(file, stringify(config([])));
    const proc = await start(file);
    expect(await proc.metrics()).not.toContain('livemig_lab_info');
    expect(await (await proc.get('/')).text()).not.toContain('SIMULATED');
  });
});
