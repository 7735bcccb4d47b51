/**
 * The compute-host artifact (scripts/package) and its systemd unit (packaging/):
 * - the unit passes `systemd-analyze verify` without a word of warning, pointed at the installed
 *   bin, and a broken copy does not; `systemd-analyze security --offline` rates it; the sysusers.d
 *   file makes the user;
 * - the tarball, installed with `npm install -g --offline` into a clean prefix (no checkout, no
 *   node_modules of ours, an empty npm cache): --version, a short run (/metrics, pretty logs through
 *   the bundled pino-pretty worker, SIGHUP reload, an SSH host through the bundled ssh2), and the
 *   SIMULATED lab;
 * - the installed exporter as the unit's user with only CAP_NET_RAW, through setpriv as the unit
 *   sets it up (User=, SupplementaryGroups=adm, CapabilityBoundingSet=, AmbientCapabilities=,
 *   NoNewPrivileges=): it serves /metrics, pings 127.0.0.1 with an fping that has no file
 *   capability, reads a nova log through group adm, and writes its state directory only. Without
 *   the ambient capability fping cannot ping. ProtectSystem=, PrivateTmp= and the other namespace
 *   settings need systemd as PID 1, which this machine does not run: here plain permissions keep
 *   it out of its config directory.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { missingTools, needsRoot, requireCapability, requireEnvironment } from '../helpers/env.js';
import { metricValue } from '../helpers/exporter-process.js';
import { TestSshd } from '../helpers/sshd.js';

const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const UNIT = join(ROOT, 'packaging/livemig-exporter.service');
const SYSUSERS = join(ROOT, 'packaging/livemig-exporter.sysusers.conf');
const USER = 'livemig-exporter';
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const run = promisify(execFile);

/** A command to its end: exit code and output, never a throw. */
function runToEnd(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { ...options, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** The installed exporter as a process: started by its bin (through `prefix`, a command that execs it), stopped by its PID. */
class Installed {
  stderr = '';
  private constructor(readonly child: ChildProcess) {}

  static async start(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; prefix?: string[] }): Promise<{ exporter: Installed; url: string }> {
    const [program, ...rest] = [...(options.prefix ?? []), command, ...args] as [string, ...string[]];
    const exporter = new Installed(spawn(program, rest, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'ignore', 'pipe'] }));
    exporter.child.stderr?.on('data', (chunk: Buffer) => (exporter.stderr += chunk.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        exporter.child.kill('SIGTERM');
        reject(new Error(`the installed exporter did not listen within 15 s:\n${exporter.stderr}`));
      }, 15_000);
      const look = () => {
        // JSON ("url":"http://...") or pretty (url: "http://...") logs.
        const m = /"?url"?: ?"(http:\/\/[^"]+)"/.exec(exporter.stderr);
        if (m) {
          clearTimeout(timer);
          exporter.child.stderr?.off('data', look);
          resolve(m[1] as string);
        }
      };
      exporter.child.stderr?.on('data', look);
      exporter.child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the installed exporter exited with ${code} before listening:\n${exporter.stderr}`));
      });
    });
    return { exporter, url };
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** JSON log lines so far. */
  logs(): Record<string, unknown>[] {
    return this.stderr.split('\n').flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((resolve) => this.child.once('exit', (code) => resolve(code)));
    process.kill(this.pid, signal);
    return exited;
  }
}

async function until<T>(what: string, read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what} not within ${timeoutMs} ms; last:\n${String(value).slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const scrape = (url: string) => fetch(`${url}/metrics`).then((r) => r.text());

/** The fields of /proc/PID/status that say who a process is and what it may do. */
function credentials(pid: number): Record<string, string> {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1]?.trim() ?? '';
  return Object.fromEntries(['Uid', 'Gid', 'Groups', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs'].map((f) => [f, field(f)]));
}

function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** CAP_NET_RAW alone, as /proc/PID/status prints a capability set. */
const NET_RAW_ONLY = (1n << 13n).toString(16).padStart(16, '0');
const NO_CAPS = '0'.repeat(16);

const RUN = requireEnvironment(missingTools('npm', 'tar', 'git', 'systemd-analyze', 'systemd-sysusers', 'fping'));

describe.runIf(RUN)('the compute-host artifact: scripts/package, npm install -g --offline, the systemd unit', () => {
  let tmp = '';
  let tarball = '';
  let prefix = '';
  let bin = '';
  let packageDir = '';
  let clean = '';
  /** What a host's shell has: node and npm on PATH; nothing of the checkout. */
  let hostEnv: NodeJS.ProcessEnv = {};
  const running: Installed[] = [];

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'lme-package-'));
    // The unprivileged user of the last suite runs the installed bin from here.
    chmodSync(tmp, 0o755);
    const started = Date.now();
    const { stdout } = await run(join(ROOT, 'scripts/package'), [join(tmp, 'out')], { cwd: ROOT });
    tarball = stdout.trim().split('\n').pop() as string;
    clean = join(tmp, 'clean');
    mkdirSync(clean);
    mkdirSync(join(tmp, 'home'));
    hostEnv = { PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`, HOME: join(tmp, 'home'), LANG: 'C.UTF-8' };
    prefix = join(tmp, 'prefix');
    // From an empty directory, with an empty npm cache, offline: nothing can come from the
    // checkout or the registry.
    await run('npm', ['install', '-g', '--prefix', prefix, '--offline', '--ignore-scripts', '--no-audit', '--no-fund', tarball], {
      cwd: clean,
      env: { ...hostEnv, npm_config_cache: join(tmp, 'npm-cache'), npm_config_update_notifier: 'false' },
    });
    bin = join(prefix, 'bin/livemig-exporter');
    packageDir = join(prefix, 'lib/node_modules/livemig-exporter');
    console.log(`packaged and installed in ${Date.now() - started} ms: ${tarball} (${(statSync(tarball).size / 1e6).toFixed(2)} MB)`);
  });

  afterAll(async () => {
    await Promise.all(running.splice(0).map((e) => e.stop('SIGKILL')));
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('scripts/package: a tarball of the bundle, its two pino files, the lab\'s files, the unit and the notices; no dependencies', async () => {
    expect(tarball).toBe(join(tmp, 'out', `livemig-exporter-${VERSION}.tgz`));
    const { stdout } = await run('tar', ['tzf', tarball]);
    expect(stdout.trim().split('\n').sort()).toEqual(
      [
        'package/README.md',
        'package/dist/THIRD-PARTY-NOTICES.txt',
        'package/dist/dirty.asm',
        'package/dist/init/dirty.c',
        'package/dist/init/init.sh',
        'package/dist/lab-sim-fping.js',
        'package/dist/livemig-exporter.js',
        'package/dist/pino-pretty.cjs',
        'package/dist/thread-stream-worker.cjs',
        'package/package.json',
        'package/packaging/livemig-exporter.service',
        'package/packaging/livemig-exporter.sysusers.conf',
      ].sort(),
    );
    expect(statSync(tarball).size).toBeLessThan(3_000_000);
    const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ name: 'livemig-exporter', version: VERSION, type: 'module', bin: { 'livemig-exporter': 'dist/livemig-exporter.js' }, engines: { node: '>=20.0.0' } });
    expect(manifest).not.toHaveProperty('dependencies');
    expect(manifest).not.toHaveProperty('optionalDependencies');
    // Installed: the package alone, and the bin a symlink to it.
    expect(readdirSync(packageDir).sort()).toEqual(['README.md', 'dist', 'package.json', 'packaging']);
    expect(readdirSync(join(prefix, 'lib/node_modules'))).toEqual(['livemig-exporter']);
    expect(lstatSync(bin).isSymbolicLink()).toBe(true);
    expect(readlinkSync(bin)).toBe('../lib/node_modules/livemig-exporter/dist/livemig-exporter.js');
    expect(readFileSync(bin, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
    // The lab looks for its guest sources beside its module, here the bundle.
    const bundle = readFileSync(bin, 'utf8');
    // (Tested as booleans: a failed toContain would print the 4 MB bundle.)
    expect(bundle.includes('new URL("./dirty.asm", import.meta.url)'), 'dirty.asm beside the module').toBe(true);
    expect(/new URL\(`\.\/init\/\$\{\w+\}`, import\.meta\.url\)/.test(bundle), 'init/ beside the module').toBe(true);
    expect(readFileSync(join(packageDir, 'dist/dirty.asm'), 'utf8')).toBe(readFileSync(join(ROOT, 'src/lab/guest/dirty.asm'), 'utf8'));
    // ssh2's native parts are not in it (their require fails, ssh2 falls back to JavaScript).
    expect(bundle.includes('__require("./crypto/build/Release/sshcrypto.node")'), 'the native binding left to a require').toBe(true);
    expect(readdirSync(join(packageDir, 'dist')).filter((f) => f.endsWith('.node'))).toEqual([]);
    const notices = readFileSync(join(packageDir, 'dist/THIRD-PARTY-NOTICES.txt'), 'utf8');
    for (const dep of ['express@', 'prom-client@', 'pino@', 'pino-pretty@', 'ssh2@', 'zod@', 'thread-stream@']) expect(notices).toContain(`\n${dep}`);
  });

  it('--version from the installed bin, run from a directory with no checkout', async () => {
    const { stdout } = await run(bin, ['--version'], { cwd: clean, env: hostEnv });
    expect(stdout.trim()).toMatch(new RegExp(`^livemig-exporter, version ${VERSION.replace(/\./g, '\\.')} \\(revision: [0-9a-f]{7,}(-dirty)?\\)\\n  nodejs: v\\d+`));
  });

  it('a short run: /metrics with the built-in revision, pretty logs through the bundled worker, SIGHUP reloads, SIGTERM stops with 0', async () => {
    const state = join(tmp, 'run-state');
    mkdirSync(state);
    const config = join(tmp, 'run.yml');
    writeFileSync(config, stringify({ libvirt: { discover: 'off' }, state_file: join(state, 'state.json') }));
    const { exporter, url } = await Installed.start(bin, ['--config', config, '--web.listen-address', '127.0.0.1:0', '--log.format', 'pretty'], { cwd: clean, env: hostEnv });
    running.push(exporter);
    const text = await scrape(url);
    const head = (await run('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: ROOT })).stdout.trim();
    expect(text).toMatch(new RegExp(`^livemig_build_info\\{version="${VERSION}",revision="${head}(-dirty)?",nodejs="${process.version}"\\} 1$`, 'm'));
    // prom-client's process metrics, read from /proc by the bundled copy.
    expect(metricValue(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(exporter.pid).toBeGreaterThan(0);
    process.kill(exporter.pid, 'SIGHUP');
    await until('the reload logged', async () => exporter.stderr, (s) => s.includes('config reloaded'));
    expect(await exporter.stop()).toBe(0);
    // pino-pretty's layout, from the worker thread the bundle starts from dist/thread-stream-worker.cjs.
    expect(exporter.stderr).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(\d+\): listening$/m);
    expect(exporter.stderr).toMatch(/INFO \(\d+\): shutting down\n\s+signal: "SIGTERM"/);
  });

  it('an SSH host through the bundled ssh2 (no native crypto): its counters over a real sshd', async (ctx) => {
    requireCapability(ctx, missingTools('/usr/sbin/sshd', 'ssh-keygen') ?? needsRoot());
    const sshd = await TestSshd.start();
    try {
      const knownHosts = sshd.writeKnownHosts('known_hosts', [sshd.hashedKnownHostsLine()]);
      const config = join(tmp, 'ssh.yml');
      writeFileSync(
        config,
        stringify({
          libvirt: { discover: 'off' },
          state_file: null,
          hosts: [{ name: 'remote', ssh: { address: '127.0.0.1', port: sshd.port, user: 'root', identity_file: sshd.userKey, known_hosts: knownHosts }, interfaces: ['lo'] }],
          netdev: { period: '500ms' },
        }),
      );
      const { exporter, url } = await Installed.start(bin, ['--config', config, '--web.listen-address', '127.0.0.1:0'], { cwd: clean, env: hostEnv });
      running.push(exporter);
      const text = await until('the remote counters', () => scrape(url), (t) => metricValue(t, 'livemig_interface_receive_bytes_total{host="remote",interface="lo"}') !== undefined);
      expect(metricValue(text, 'livemig_source_up{source="host",host="remote"}')).toBe(1);
      expect(metricValue(text, 'livemig_source_up{source="netdev",host="remote"}')).toBe(1);
      expect(exporter.logs().some((l) => l.msg === 'SSH connection up' && l.host === 'remote')).toBe(true);
      expect(await exporter.stop()).toBe(0);
    } finally {
      await sshd.cleanup();
    }
  });

  it('lab --engine sim from the install: the SIMULATED outage, measured through the bundled SIMULATED fping', async () => {
    const out = join(tmp, 'lab');
    const result = await runToEnd(bin, ['lab', '--engine', 'sim', '--scenario', 'outage', '--out', out, '--web.listen-address', '127.0.0.1:0'], { cwd: clean, env: hostEnv });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('SIMULATED');
    const json = readdirSync(out).find((f) => f.endsWith('.json')) as string;
    const report = JSON.parse(readFileSync(join(out, json), 'utf8')) as { simulated: boolean; measurements: { result: string; postcopyOutageSeconds: number | null }[] };
    expect(report.simulated).toBe(true);
    expect(report.measurements).toHaveLength(1);
    expect(report.measurements[0]?.result).toBe('completed');
    // Only ping sees the outage: the bundled SIMULATED fping ran.
    expect(report.measurements[0]?.postcopyOutageSeconds).toBeGreaterThan(1);
  }, 60_000);

  it('the Dockerfile\'s build stage: what it copies (past .dockerignore) is enough for scripts/package', async () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const build = dockerfile.split(/^FROM /m)[1] as string;
    const sources = [...build.matchAll(/^COPY (?!--)(.+) \S+$/gm)].flatMap((m) => (m[1] as string).split(' '));
    expect(sources).toEqual(['package.json', 'package-lock.json', 'tsconfig.json', 'README.md', 'src', 'scripts/package', 'packaging']);
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    const context = join(tmp, 'docker-context');
    for (const source of sources) {
      const excluded = ignore.includes(source) || ignore.includes(source.split('/')[0] as string);
      expect(excluded && !ignore.includes(`!${source}`), `${source} is in the build context`).toBe(false);
      cpSync(join(ROOT, source), join(context, source), { recursive: true });
    }
    // `RUN npm ci` there; the checkout's node_modules here.
    symlinkSync(join(ROOT, 'node_modules'), join(context, 'node_modules'));
    const step = /^RUN (LIVEMIG_REVISION="\$LIVEMIG_REVISION" \.\/scripts\/package \/pkg)$/m.exec(build);
    expect(step, 'the build stage packages into /pkg').not.toBeNull();
    const { stdout } = await run(join(context, 'scripts/package'), [join(tmp, 'docker-pkg')], { cwd: context, env: { ...process.env, LIVEMIG_REVISION: 'unknown' } });
    const built = stdout.trim().split('\n').pop() as string;
    const list = async (file: string) => (await run('tar', ['tzf', file])).stdout.split('\n').sort();
    expect(await list(built)).toEqual(await list(tarball));
    // The runtime stage installs it as a compute host does (the install above).
    const runtime = dockerfile.split(/^FROM /m)[2] as string;
    expect(runtime).toMatch(/^COPY --from=build \/pkg\/ \/tmp\/pkg\/$/m);
    expect(runtime).toMatch(/^RUN npm install -g --offline --ignore-scripts --no-audit --no-fund \/tmp\/pkg\/livemig-exporter-\*\.tgz /m);
  });

  describe('packaging/livemig-exporter.service', () => {
    let unitDir = '';
    /** The unit as installed here: ExecStart= is the bin of the prefix. */
    let unit = '';
    beforeAll(() => {
      unitDir = join(tmp, 'units');
      mkdirSync(unitDir);
      const text = readFileSync(UNIT, 'utf8');
      expect(text.match(/^ExecStart=\/usr\/local\/bin\/livemig-exporter /gm)).toHaveLength(1);
      unit = join(unitDir, 'livemig-exporter.service');
      writeFileSync(unit, text.replace(/^ExecStart=\/usr\/local\/bin\/livemig-exporter /m, `ExecStart=${bin} `));
    });
    /** systemd-analyze verify: its exit code, and what it said (a setting it cannot parse is only a warning, with exit 0). */
    const verify = (file: string) => runToEnd('systemd-analyze', ['verify', '--man=no', file]).then((r) => ({ code: r.code, said: (r.stdout + r.stderr).trim() }));

    it('systemd-analyze verify passes and says nothing', async () => {
      expect(await verify(unit)).toEqual({ code: 0, said: '' });
    });

    it('a broken copy fails it: a missing ExecStart binary exits 1; a misspelt value is a warning', async () => {
      const text = readFileSync(unit, 'utf8');
      const missing = join(unitDir, 'missing-bin.service');
      writeFileSync(missing, text.replace(bin, join(tmp, 'nowhere/livemig-exporter')));
      const m = await verify(missing);
      expect(m.code).toBe(1);
      expect(m.said).toContain(`Command ${join(tmp, 'nowhere/livemig-exporter')} is not executable: No such file or directory`);
      const misspelt = join(unitDir, 'misspelt.service');
      writeFileSync(misspelt, text.replace(/^ProtectSystem=strict$/m, 'ProtectSystem=stric'));
      const s = await verify(misspelt);
      expect(s.said).toMatch(/misspelt\.service:\d+: Failed to parse protect system value, ignoring: stric/);
      expect(s).not.toEqual({ code: 0, said: '' });
      // As installed (/usr/local/bin), on a machine without the bin there: refused too.
      if (!existsSync('/usr/local/bin/livemig-exporter')) expect((await verify(UNIT)).code).toBe(1);
    });

    it('systemd-analyze security --offline: exposure at most 2.0, with what the unit is meant to do', async () => {
      const { code, stdout, stderr } = await runToEnd('systemd-analyze', ['security', '--offline=yes', '--threshold=20', '--no-pager', unit]);
      expect(code, stdout + stderr).toBe(0);
      const overall = /Overall exposure level for livemig-exporter\.service: (\d+\.\d)/.exec(stdout);
      console.log(`systemd-analyze security --offline: exposure ${overall?.[1]}`);
      expect(Number(overall?.[1])).toBeLessThanOrEqual(2);
      const line = (setting: string) => stdout.split('\n').find((l) => l.slice(2).startsWith(`${setting} `))?.trim() ?? `${setting}: no line`;
      for (const [setting, what] of [
        ['User=/DynamicUser=', '✓ User=/DynamicUser= Service runs under a static non-root user identity'],
        ['NoNewPrivileges=', '✓ NoNewPrivileges= Service processes cannot acquire new privileges'],
        ['ProtectSystem=', '✓ ProtectSystem= Service has strict read-only access to the OS file hierarchy'],
        ['ProtectHome=', '✓ ProtectHome= Service has no access to home directories'],
        ['PrivateTmp=', "✓ PrivateTmp= Service has no access to other software's temporary files"],
        ['CapabilityBoundingSet=~CAP_SYS_ADMIN', '✓ CapabilityBoundingSet=~CAP_SYS_ADMIN Service has no administrator privileges'],
        ['CapabilityBoundingSet=~CAP_(DAC_*|FOWNER|IPC_OWNER)', '✓ CapabilityBoundingSet=~CAP_(DAC_*|FOWNER|IPC_OWNER) Service cannot override UNIX file/IPC permission checks'],
        // The one capability it holds: CAP_NET_RAW, ambient.
        ['CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE|BROADCAST|RAW)', '✗ CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE|BROADCAST|RAW) Service has elevated networking privileges'],
        ['AmbientCapabilities=', '✗ AmbientCapabilities= Service process receives ambient capabilities'],
        ['RestrictAddressFamilies=~AF_PACKET', '✓ RestrictAddressFamilies=~AF_PACKET Service cannot allocate packet sockets'],
        ['SystemCallFilter=~@privileged', '✓ SystemCallFilter=~@privileged System call allow list defined for service, and @privileged is not included'],
      ] as const) {
        expect(line(setting).replace(/\s+\d+\.\d$/, '').replace(/\s+/g, ' ')).toBe(what);
      }
    });

    it('the sysusers.d file makes a system user and group of the name User= gives, with no login shell', async () => {
      const root = join(tmp, 'sysroot');
      mkdirSync(join(root, 'etc'), { recursive: true });
      await run('systemd-sysusers', [`--root=${root}`, SYSUSERS]);
      const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8').trim().split(':');
      expect(passwd[0]).toBe(USER);
      expect(Number(passwd[2])).toBeLessThan(1000);
      expect(passwd.slice(4)).toEqual(['livemig-exporter (Prometheus exporter of live VM migrations)', '/var/lib/livemig-exporter', '/usr/sbin/nologin']);
      expect(readFileSync(join(root, 'etc/group'), 'utf8').trim()).toBe(`${USER}:x:${passwd[3]}:`);
      expect(readFileSync(UNIT, 'utf8')).toMatch(new RegExp(`^User=${USER}$[\\s\\S]*^Group=${USER}$`, 'm'));
    });
  });

  describe.runIf(RUN && requireEnvironment(missingTools('setpriv', 'useradd', 'userdel'), needsRoot()))('as the unit runs it: its own user, CAP_NET_RAW only, no new privileges', () => {
    let created = false;
    let uid = 0;
    let gid = 0;
    let adm = 0;
    let fs = '';
    const paths = { conf: '', config: '', state: '', novaDir: '', novaLog: '', fping: '' };

    /** setpriv as the unit sets the process up; `ambient: false` leaves out AmbientCapabilities=. */
    const setpriv = (ambient: boolean) => [
      'setpriv',
      `--reuid=${uid}`,
      `--regid=${gid}`,
      // SupplementaryGroups=adm. The system user has no groups of its own in /etc/group, so this
      // is what systemd's initgroups() plus that setting give (setpriv takes one or the other).
      '--groups=adm',
      ...(ambient ? ['--inh-caps=-all,+net_raw', '--ambient-caps=-all,+net_raw'] : ['--inh-caps=-all']),
      '--bounding-set=-all,+net_raw',
      '--no-new-privs',
    ];

    beforeAll(async () => {
      if (!existsSync(bin)) throw new Error('the install of the suite above failed');
      if (!(await runToEnd('getent', ['passwd', USER])).stdout) {
        await run('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/var/lib/livemig-exporter', '--shell', '/usr/sbin/nologin', USER]);
        created = true;
      }
      uid = Number((await run('id', ['-u', USER])).stdout);
      gid = Number((await run('id', ['-g', USER])).stdout);
      adm = Number((await run('getent', ['group', 'adm'])).stdout.split(':')[2]);
      // The host's layout under a root of its own.
      fs = join(tmp, 'host');
      paths.conf = join(fs, 'etc/livemig-exporter');
      paths.config = join(paths.conf, 'livemig.yml');
      paths.state = join(fs, 'var/lib/livemig-exporter');
      paths.novaDir = join(fs, 'var/log/nova');
      paths.novaLog = join(paths.novaDir, 'nova-compute.log');
      for (const dir of [paths.conf, paths.state, paths.novaDir]) mkdirSync(dir, { recursive: true, mode: 0o755 });
      for (const dir of [fs, join(fs, 'etc'), join(fs, 'var'), join(fs, 'var/lib'), join(fs, 'var/log'), paths.conf]) chmodSync(dir, 0o755);
      // StateDirectory=: the user's, 0750.
      chownSync(paths.state, uid, gid);
      chmodSync(paths.state, 0o750);
      // Debian's nova-common: /var/log/nova nova:adm 0750, the log 0644 (nova's umask).
      chownSync(paths.novaDir, 0, adm);
      chmodSync(paths.novaDir, 0o750);
      copyFileSync(join(ROOT, 'test/fixtures/logs/nova-compute.20.0-train.src.log'), paths.novaLog);
      chmodSync(paths.novaLog, 0o644);
      // A copy of fping loses the file capability Debian's package gives /usr/bin/fping: it can
      // only ping with the capability the service hands down.
      paths.fping = join(fs, 'fping');
      copyFileSync(execFileSync('sh', ['-c', 'command -v fping'], { encoding: 'utf8' }).trim(), paths.fping);
      chmodSync(paths.fping, 0o755);
      writeFileSync(
        paths.config,
        stringify({
          state_file: join(paths.state, 'state.json'),
          libvirt: { discover: 'off' },
          ping: { fping_path: paths.fping, period: '100ms', timeout: '500ms' },
          // A VM needs a monitor; this one's socket never exists. Its ping address is this machine.
          vms: [{ name: 'loopback', ping_address: '127.0.0.1', monitors: [{ host: hostname(), qmp: { unix: join(fs, 'run/loopback.qmp') } }] }],
          logs: [{ path: paths.novaLog }],
          logs_options: { start_at: 'start', save_interval: '1s' },
        }),
      );
      // `install -m 640 -g livemig-exporter`: root's file, readable by the service's group.
      chownSync(paths.config, 0, gid);
      chmodSync(paths.config, 0o640);
    });

    afterAll(async () => {
      await Promise.all(running.splice(0).map((e) => e.stop('SIGKILL')));
      if (created) await run('userdel', [USER]);
    });

    it('serves /metrics, pings with the ambient CAP_NET_RAW only, reads nova\'s log through adm, writes its state directory', async () => {
      const { exporter, url } = await Installed.start(bin, ['--config', paths.config, '--web.listen-address', '127.0.0.1:0'], { cwd: '/', env: hostEnv, prefix: setpriv(true) });
      running.push(exporter);
      const text = await until('answered pings', () => scrape(url), (t) => (metricValue(t, 'livemig_ping_replies_received_total{vm="loopback"}') ?? 0) > 3);
      expect(metricValue(text, `livemig_source_up{source="ping",host="${hostname()}"}`)).toBe(1);
      const lines = readFileSync(paths.novaLog, 'utf8').trimEnd().split('\n').length;
      expect(metricValue(await until('the nova log read', () => scrape(url), (t) => metricValue(t, 'livemig_log_lines_read_total{host="local",kind="nova-compute"}') === lines), 'livemig_log_lines_read_total{host="local",kind="nova-compute"}')).toBe(lines);

      // The exporter: the user, group adm besides, CAP_NET_RAW and nothing else, no new privileges.
      const self = credentials(exporter.pid);
      expect(self).toEqual({ Uid: `${uid}\t${uid}\t${uid}\t${uid}`, Gid: `${gid}\t${gid}\t${gid}\t${gid}`, Groups: String(adm), CapInh: NET_RAW_ONLY, CapPrm: NET_RAW_ONLY, CapEff: NET_RAW_ONLY, CapBnd: NET_RAW_ONLY, CapAmb: NET_RAW_ONLY, NoNewPrivs: '1' });
      // Its fping, the copy without a file capability, holds CAP_NET_RAW from the ambient set.
      const fpings = childrenOf(exporter.pid).filter((pid) => readlinkSync(`/proc/${pid}/exe`) === paths.fping);
      expect(fpings).toHaveLength(1);
      expect(credentials(fpings[0] as number)).toMatchObject({ Uid: `${uid}\t${uid}\t${uid}\t${uid}`, CapEff: NET_RAW_ONLY, CapAmb: NET_RAW_ONLY, NoNewPrivs: '1' });

      expect(await exporter.stop()).toBe(0);
      // The state file (the log's position among it), the user's, in its directory.
      const state = join(paths.state, 'state.json');
      expect(statSync(state).uid).toBe(uid);
      expect(readFileSync(state, 'utf8')).toContain(paths.novaLog);
      expect(readdirSync(paths.state)).toEqual(['state.json']);
      expect(exporter.logs().filter((l) => (l.level as number) >= 50)).toEqual([]);
    });

    it('as that user, with those rights: its state directory is writable; its config, nova\'s log and the install are not', async () => {
      const targets = {
        state: join(paths.state, 'probe'),
        configDir: join(paths.conf, 'probe'),
        config: paths.config,
        novaLog: paths.novaLog,
        install: join(packageDir, 'dist/probe'),
        bundle: join(packageDir, 'dist/livemig-exporter.js'),
      };
      // Appends (>>), so that a file it could write is not truncated; in a subshell, as a failed
      // redirection of `:` ends the shell.
      const script = 'for p in "$@"; do if (: >> "$p") 2>/dev/null; then echo writable; else echo refused; fi; done';
      const [command, ...args] = [...setpriv(true), 'sh', '-c', script, 'sh', ...Object.values(targets)] as [string, ...string[]];
      const { stdout } = await run(command, args, { env: hostEnv, cwd: '/' });
      expect(Object.fromEntries(Object.keys(targets).map((k, i) => [k, stdout.trim().split('\n')[i]]))).toEqual({
        state: 'writable',
        configDir: 'refused',
        config: 'refused',
        novaLog: 'refused',
        install: 'refused',
        bundle: 'refused',
      });
      rmSync(targets.state);
    });

    it('without AmbientCapabilities= its fping cannot ping, and the exporter says how to fix it', async () => {
      const { exporter, url } = await Installed.start(bin, ['--config', paths.config, '--web.listen-address', '127.0.0.1:0'], { cwd: '/', env: hostEnv, prefix: setpriv(false) });
      running.push(exporter);
      expect(credentials(exporter.pid)).toMatchObject({ CapEff: NO_CAPS, CapAmb: NO_CAPS, CapBnd: NET_RAW_ONLY, NoNewPrivs: '1' });
      await until('the ping error', async () => exporter.stderr, (s) => s.includes('ping source error'));
      const error = exporter.logs().find((l) => l.msg === 'ping source error');
      expect(error?.err).toBe(`fping ${paths.fping} cannot open an ICMP socket (${paths.fping}: can't create socket (must run as root?)): grant it CAP_NET_RAW with \`setcap cap_net_raw+ep ${paths.fping}\`, or run the exporter as root`);
      const text = await scrape(url);
      expect(metricValue(text, `livemig_source_up{source="ping",host="${hostname()}"}`)).toBe(0);
      expect(metricValue(text, 'livemig_ping_replies_received_total{vm="loopback"}') ?? 0).toBe(0);
      expect(await exporter.stop()).toBe(0);
    });
  });
});
