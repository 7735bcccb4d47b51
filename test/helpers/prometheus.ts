import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { closedPort } from './qemu-lab.js';

export const PROMETHEUS_BIN = '/usr/bin/prometheus';

export interface PromSample {
  metric: Record<string, string>;
  value?: [number, string];
  values?: [number, string][];
}

/**
 * A real Prometheus (the Debian package's binary) on a loopback port with a temporary TSDB and
 * the config given; stopped by PID and its directory removed by stop().
 */
export class PrometheusProcess {
  stderr = '';
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    readonly dir: string,
  ) {
    child.stderr?.on('data', (c: Buffer) => (this.stderr = (this.stderr + c.toString()).slice(-20_000)));
  }

  /**
   * `config` is Prometheus's YAML as an object; `files` are written beside it (rule files).
   * `mode`: `agent` runs Prometheus in agent mode (scrape and remote-write only); `receiver` also
   * accepts remote writes on /api/v1/write.
   */
  static async start(config: object, files: Record<string, string> = {}, mode: 'server' | 'agent' | 'receiver' = 'server'): Promise<PrometheusProcess> {
    const dir = await mkdtemp(join(tmpdir(), 'lme-prom-'));
    for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
    await writeFile(join(dir, 'prometheus.yml'), stringify(config));
    const port = await closedPort();
    const storage = mode === 'agent' ? ['--enable-feature=agent', `--storage.agent.path=${join(dir, 'wal')}`] : [`--storage.tsdb.path=${join(dir, 'data')}`];
    const child = spawn(
      PROMETHEUS_BIN,
      [`--config.file=${join(dir, 'prometheus.yml')}`, ...storage, ...(mode === 'receiver' ? ['--web.enable-remote-write-receiver'] : []), `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
      { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const prom = new PrometheusProcess(child, `http://127.0.0.1:${port}`, dir);
    await prom.waitReady();
    return prom;
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`prometheus exited with ${this.child.exitCode}:\n${this.stderr}`);
      const ok = await fetch(`${this.url}/-/ready`).then((r) => r.ok, () => false);
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`prometheus not ready within 20 s:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async api<T>(path: string, params: Record<string, string | string[]>): Promise<T> {
    const body = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) for (const v of Array.isArray(value) ? value : [value]) body.append(key, v);
    const res = await fetch(`${this.url}/api/v1/${path}`, { method: 'POST', body });
    const json = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
    if (json.status !== 'success') throw new Error(`prometheus ${path} ${JSON.stringify(params)}: ${json.errorType ?? ''} ${json.error ?? res.status}`);
    return json.data;
  }

  async query(expr: string, timeSeconds: number): Promise<PromSample[]> {
    const data = await this.api<{ resultType: string; result: PromSample[] | [number, string] }>('query', { query: expr, time: String(timeSeconds) });
    // A scalar (e.g. `vector(0)` folded) comes back as one sample without labels.
    return data.resultType === 'scalar' ? [{ metric: {}, value: data.result as [number, string] }] : (data.result as PromSample[]);
  }

  async queryRange(expr: string, start: number, end: number, stepSeconds: number): Promise<PromSample[]> {
    const data = await this.api<{ result: PromSample[] }>('query_range', { query: expr, start: String(start), end: String(end), step: String(stepSeconds) });
    return data.result;
  }

  /** Prometheus 2.42 serves label values on GET only. */
  async labelValues(label: string, match: string, start: number, end: number): Promise<string[]> {
    const params = new URLSearchParams({ 'match[]': match, start: String(start), end: String(end) });
    const res = await fetch(`${this.url}/api/v1/label/${encodeURIComponent(label)}/values?${params}`);
    const json = (await res.json()) as { status: string; data: string[]; error?: string };
    if (json.status !== 'success') throw new Error(`prometheus label ${label} values of ${match}: ${json.error ?? res.status}`);
    return json.data;
  }

  async alerts(): Promise<{ labels: Record<string, string>; state: string; value: string }[]> {
    const res = await fetch(`${this.url}/api/v1/alerts`);
    return ((await res.json()) as { data: { alerts: { labels: Record<string, string>; state: string; value: string }[] } }).data.alerts;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      await exited;
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
