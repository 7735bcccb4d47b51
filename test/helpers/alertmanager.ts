import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { closedPort } from './qemu-lab.js';

export const ALERTMANAGER_BIN = '/usr/bin/prometheus-alertmanager';

/** One POST Alertmanager made to the webhook (its version 4 payload). */
export interface WebhookNotification {
  receivedAtMs: number;
  status: string;
  receiver: string;
  alerts: { status: string; labels: Record<string, string>; annotations: Record<string, string>; startsAt: string }[];
}

/** An HTTP server on loopback that records what Alertmanager's webhook receiver posts. */
export class WebhookReceiver {
  readonly notifications: WebhookNotification[] = [];
  private readonly server: Server;
  url = '';

  private constructor() {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        try {
          this.notifications.push({ ...(JSON.parse(body) as Omit<WebhookNotification, 'receivedAtMs'>), receivedAtMs: Date.now() });
        } catch {
          // not JSON: nothing Alertmanager sends
        }
        res.writeHead(200).end();
      });
    });
  }

  static async start(): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver();
    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
    const address = receiver.server.address();
    receiver.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/alerts`;
    return receiver;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A real Alertmanager (Debian's prometheus-alertmanager) on a loopback port, clustering off,
 * sending every alert to `webhookUrl` with short group waits; stopped by PID.
 */
export class AlertmanagerProcess {
  stderr = '';
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    readonly dir: string,
  ) {
    child.stderr?.on('data', (c: Buffer) => (this.stderr = (this.stderr + c.toString()).slice(-20_000)));
  }

  static async start(webhookUrl: string): Promise<AlertmanagerProcess> {
    const dir = await mkdtemp(join(tmpdir(), 'lme-am-'));
    const config = {
      route: { receiver: 'test-webhook', group_by: ['alertname', 'vm'], group_wait: '0s', group_interval: '1s', repeat_interval: '1h' },
      receivers: [{ name: 'test-webhook', webhook_configs: [{ url: webhookUrl, send_resolved: true }] }],
    };
    await writeFile(join(dir, 'alertmanager.yml'), stringify(config));
    const port = await closedPort();
    const child = spawn(
      ALERTMANAGER_BIN,
      [`--config.file=${join(dir, 'alertmanager.yml')}`, `--storage.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address=', '--log.level=warn'],
      { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const am = new AlertmanagerProcess(child, `http://127.0.0.1:${port}`, dir);
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`alertmanager exited with ${child.exitCode}:\n${am.stderr}`);
      if (await fetch(`${am.url}/-/ready`).then((r) => r.ok, () => false)) break;
      if (Date.now() > deadline) throw new Error(`alertmanager not ready within 20 s:\n${am.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return am;
  }

  get address(): string {
    return this.url.replace(/^http:\/\//, '');
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
