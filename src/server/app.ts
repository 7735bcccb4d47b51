import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import express, { type NextFunction, type Request, type Response } from 'express';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { ActiveMigration, MigrationRecord } from '../records/record.js';
import { landingPage } from './landing.js';
import { migrationNotFoundPage, migrationPage, runningMigrationPage } from './migration-page.js';

export interface MigrationFilter {
  vm?: string;
  /** Wall ms: migrations that ended at or after (or still run). */
  from?: number;
  /** Wall ms: migrations that started at or before. */
  to?: number;
  limit: number;
}

/** What a config reload did: applied (with its warnings and the sections that wait for a restart), or not and why. */
export type ReloadOutcome =
  | { ok: true; file: string; vms: number; warnings: string[]; notApplied: string[] }
  | { ok: false; status: 400 | 500; errors: string[] };

/** The lab runs the exporter: which engine, and whether its migrations are SIMULATED. */
export interface LabInfo {
  engine: string;
  simulated: boolean;
}

export interface ServerDeps {
  telemetryPath: string;
  version: string;
  logger: Logger;
  renderMetrics(): Promise<string>;
  metricsContentType: string;
  /** Closed migrations, newest first. */
  listMigrations(filter: MigrationFilter): MigrationRecord[];
  /** Migrations under way now. */
  activeMigrations(): ActiveMigration[];
  getMigration(id: string): MigrationRecord | undefined;
  /** Ready once the state file is loaded and the sources are started. */
  isReady(): boolean;
  /** One line per source for the landing page. */
  describeSources(): string[];
  /** POST /-/reload: reloads the config file as SIGHUP does. */
  reload?(): Promise<ReloadOutcome>;
  /** Set in lab runs: the landing page says so (SIMULATED in bold when it is). */
  lab?: LabInfo;
}

const MAX_LIMIT = 10_000;
const gzipAsync = promisify(gzip);

export function createApp(deps: ServerDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get(deps.telemetryPath, async (req, res) => {
    try {
      const body = await deps.renderMetrics();
      res.set('Content-Type', deps.metricsContentType).vary('Accept-Encoding');
      // gzip when the scraper asks for it (Prometheus does): a large /metrics shrinks ~10x.
      if (req.headers['accept-encoding'] && req.acceptsEncodings('gzip', 'identity') === 'gzip') {
        res.set('Content-Encoding', 'gzip').send(await gzipAsync(body));
      } else {
        res.send(body);
      }
    } catch (err) {
      deps.logger.error({ err }, 'rendering /metrics failed');
      res.status(500).type('text/plain').send('error rendering metrics\n');
    }
  });

  app.get('/api/v1/migrations', (req, res) => {
    const filter = parseFilter(req, res);
    if (!filter) return;
    const data = deps.listMigrations(filter);
    const running = deps.activeMigrations().filter((m) => filter.vm === undefined || m.vm === filter.vm);
    res.json({ status: 'success', data, running });
  });

  app.get('/api/v1/migrations/:id', (req, res) => {
    const record = deps.getMigration(req.params.id);
    if (!record) {
      res.status(404).json({ status: 'error', error: `no migration with id "${req.params.id}"` });
      return;
    }
    res.json({ status: 'success', data: record });
  });

  // One migration's page: its timeline from the record, or (under way) a page that reloads until the record is written.
  app.get('/migrations/:id', async (req, res) => {
    const { id } = req.params;
    const record = deps.getMigration(id);
    if (record) {
      res.type('text/html').send(await migrationPage(record));
      return;
    }
    const running = deps.activeMigrations().find((m) => m.id === id);
    if (running) res.type('text/html').send(runningMigrationPage(running));
    else res.status(404).type('text/html').send(migrationNotFoundPage(id));
  });

  app.get('/-/healthy', (_req, res) => {
    res.type('text/plain').send('livemig-exporter is Healthy.\n');
  });

  app.get('/-/ready', (_req, res) => {
    if (deps.isReady()) res.type('text/plain').send('livemig-exporter is Ready.\n');
    else res.status(503).type('text/plain').send('livemig-exporter is not ready.\n');
  });

  // Prometheus' convention: POST (or PUT) reloads; a bad file keeps the running config and the
  // answer lists its problems.
  app.all('/-/reload', async (req, res) => {
    if (req.method !== 'POST' && req.method !== 'PUT') {
      res.status(405).set('Allow', 'POST, PUT').json({ status: 'error', error: 'only POST or PUT reloads the config' });
      return;
    }
    if (!deps.reload) {
      res.status(400).json({ status: 'error', error: 'this exporter cannot reload its config' });
      return;
    }
    const outcome = await deps.reload();
    if (outcome.ok) res.json({ status: 'success', data: { file: outcome.file, vms: outcome.vms, warnings: outcome.warnings, notApplied: outcome.notApplied } });
    else res.status(outcome.status).json({ status: 'error', error: outcome.errors.join('\n'), errors: outcome.errors });
  });

  app.get('/', (_req, res) => {
    const recent = deps.listMigrations({ limit: 20 });
    const running = deps.activeMigrations();
    res.type('text/html').send(landingPage({ version: deps.version, telemetryPath: deps.telemetryPath, recent, running, sources: deps.describeSources(), lab: deps.lab ?? null }));
  });

  app.use((_req: Request, res: Response) => {
    res.status(404).type('text/plain').send('not found\n');
  });

  // Whatever went wrong (a path that is not valid percent-encoding, a bug): JSON with the status
  // and a message, never Express's HTML page with a stack trace, and one log line.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = httpStatusOf(err);
    if (status >= 500) deps.logger.error({ err: errorMessage(err), path: req.path }, 'request failed');
    else deps.logger.debug({ err: errorMessage(err), url: req.originalUrl.slice(0, 200) }, 'bad request');
    if (res.headersSent) return;
    const error = err instanceof URIError ? 'bad request: the URL is not valid percent-encoding' : status < 500 ? 'bad request' : 'internal error';
    res.status(status).json({ status: 'error', error });
  });

  return app;
}

/** Query parameters: vm, from and to (RFC 3339 or Unix seconds), limit. Errors name the parameter. */
function parseFilter(req: Request, res: Response): MigrationFilter | null {
  const bad = (param: string, why: string) => {
    res.status(400).json({ status: 'error', error: `query parameter ${param}: ${why}` });
    return null;
  };
  const filter: MigrationFilter = { limit: 100 };
  const { vm, from, to, limit } = req.query;
  if (vm !== undefined) {
    if (typeof vm !== 'string' || vm.length === 0) return bad('vm', 'must be one non-empty VM name');
    filter.vm = vm;
  }
  for (const [name, value] of [['from', from], ['to', to]] as const) {
    if (value === undefined) continue;
    const ms = typeof value === 'string' ? parseTime(value) : null;
    if (ms === null) return bad(name, `"${String(value)}" is not a time (RFC 3339 or Unix seconds)`);
    filter[name] = ms;
  }
  if (limit !== undefined) {
    const n = typeof limit === 'string' && /^\d+$/.test(limit) ? Number(limit) : NaN;
    if (!(n >= 1 && n <= MAX_LIMIT)) return bad('limit', `"${String(limit)}" must be an integer from 1 to ${MAX_LIMIT}`);
    filter.limit = n;
  }
  return filter;
}

export function parseTime(text: string): number | null {
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text)) return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}

/** The HTTP status an error carries (Express sets `status` on a URIError of a path parameter), else 500. */
function httpStatusOf(err: unknown): number {
  const status = typeof err === 'object' && err !== null ? ((err as { status?: unknown; statusCode?: unknown }).status ?? (err as { statusCode?: unknown }).statusCode) : undefined;
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
}
