import { randomUUID } from 'node:crypto';
import { appendFile } from 'node:fs/promises';
import type { LabHostInfo, LabHostName } from './engine.js';
import { novaLine, type NovaMessage, type NovaRequestContext } from './nova-log-writer.js';

/**
 * The lab hosts' nova-compute log files, as both orchestrators write them: one request context
 * per live migration, lines appended in the order they are logged (./nova-log-writer.ts formats
 * them), none once closed.
 */
export class NovaLogs {
  private readonly context: NovaRequestContext;
  private writes: Promise<void> = Promise.resolve();
  private closed = false;

  /** `projectId`: the project of the request (nova's, without dashes); default a new one. */
  constructor(
    private readonly hosts: Record<LabHostName, LabHostInfo>,
    projectId: string = randomUUID().replace(/-/g, ''),
  ) {
    this.context = { requestId: `req-${randomUUID()}`, userId: randomUUID().replace(/-/g, ''), projectId };
  }

  /** A new live-migration request: the lines from now on carry its request id. */
  newRequest(): void {
    this.context.requestId = `req-${randomUUID()}`;
  }

  /** Appends one line, stamped now, to the host's log (after the lines before it). */
  log(host: LabHostName, instanceUuid: string, message: NovaMessage): void {
    if (this.closed) return;
    const info = this.hosts[host];
    const line = novaLine(message, { atMs: Date.now(), pid: info.novaPid, context: this.context, instanceUuid });
    this.writes = this.writes.then(() => appendFile(info.novaLog, `${line}\n`)).catch(() => undefined);
  }

  async flush(): Promise<void> {
    await this.writes;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.writes;
  }
}
