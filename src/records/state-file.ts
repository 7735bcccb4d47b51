/**
 * The state file: closed records and the tracker's migrations under way, as one versioned JSON
 * document, written atomically (temp file in the same directory, fsync, rename) so a crash leaves
 * either the old file or the new one, never half of one.
 */
import { randomBytes } from 'node:crypto';
import { open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { errorMessage, LivemigError } from '../errors.js';
import type { MigrationRecord, NovaMigration } from './record.js';
import { migrationRecordSchema, novaFiguresSchema } from './record-schema.js';
import { trackerSnapshotSchema, type TrackerSnapshot } from './tracker-snapshot.js';
import type { SavedLogPosition } from '../sources/logs/source.js';

export const STATE_FILE_VERSION = 1;

export interface StateFileContent {
  version: typeof STATE_FILE_VERSION;
  /** Wall ms when written. */
  savedAtMs: number;
  /** Closed records, oldest first. */
  records: MigrationRecord[];
  tracker: TrackerSnapshot;
  /** Where each followed log file was read up to (absent in files written before logs existed). */
  logs?: SavedLogPosition[];
  /** nova's migrations under way (or just ended) per VM, from the logs read so far. */
  nova?: NovaMigration[];
}

const novaMigrationSchema = z.object({
  vm: z.string(),
  figures: novaFiguresSchema,
  lastLineMs: z.number(),
  closed: z.boolean(),
  startRank: z.number(),
});

const logPositionSchema = z.object({
  host: z.string(),
  path: z.string(),
  dev: z.number(),
  ino: z.number(),
  offset: z.number().int().nonnegative(),
  head: z.string(),
});

const contentSchema = z.object({
  version: z.literal(STATE_FILE_VERSION),
  savedAtMs: z.number(),
  records: z.array(migrationRecordSchema),
  tracker: trackerSnapshotSchema,
  logs: z.array(logPositionSchema).optional(),
  nova: z.array(novaMigrationSchema).optional(),
});

/** The file is there but its content is unusable; the caller may move it aside (moveAsideCorrupt). */
export class StateFileCorruptError extends LivemigError {
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super('LME_STATE_FILE', [path, detail]);
  }
}

export function encodeState(content: StateFileContent): string {
  return `${JSON.stringify(content)}\n`;
}

/** @throws StateFileCorruptError (LME_STATE_FILE) naming the file and what is wrong with it. */
export function decodeState(text: string, path: string): StateFileContent {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new StateFileCorruptError(path, `not valid JSON: ${errorMessage(err)}`);
  }
  const version = typeof json === 'object' && json !== null ? (json as { version?: unknown }).version : undefined;
  if (version === undefined) throw new StateFileCorruptError(path, `no schema version (this exporter reads version ${STATE_FILE_VERSION})`);
  if (version !== STATE_FILE_VERSION) {
    throw new StateFileCorruptError(path, `schema version ${JSON.stringify(version)}, this exporter reads version ${STATE_FILE_VERSION}`);
  }
  const parsed = contentSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 3).map((issue) => `${issue.path.join('.') || '(top)'}: ${issue.message}`);
    throw new StateFileCorruptError(path, `unexpected content: ${issues.join('; ')}`);
  }
  return parsed.data;
}

/** What the atomic write needs of the file system; tests inject failures. */
export interface FileOps {
  open(path: string, flags: string, mode?: number): Promise<{ writeFile(data: string): Promise<void>; sync(): Promise<void>; close(): Promise<void> }>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
}

export const nodeFileOps: FileOps = { open, rename, unlink };

/**
 * A missing file is an empty state (null).
 * @throws StateFileCorruptError when the content is unusable; LivemigError LME_STATE_FILE when it cannot be read.
 */
export async function readStateFile(path: string): Promise<StateFileContent | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new LivemigError('LME_STATE_FILE', [path, `cannot read it: ${errorMessage(err)}`], { cause: err });
  }
  return decodeState(text, path);
}

/** @throws LivemigError LME_STATE_FILE; the previous file is then untouched and no temp file is left. */
export async function writeStateFile(path: string, content: StateFileContent, ops: FileOps = nodeFileOps): Promise<void> {
  await writeFileAtomic(path, encodeState(content), ops);
}

export async function writeFileAtomic(path: string, data: string, ops: FileOps = nodeFileOps): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let handle: Awaited<ReturnType<FileOps['open']>> | null = null;
  try {
    handle = await ops.open(temp, 'wx', 0o644);
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = null;
    await ops.rename(temp, path);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await ops.unlink(temp).catch(() => undefined);
    throw new LivemigError('LME_STATE_FILE', [path, `cannot write it: ${errorMessage(err)}`], { cause: err });
  }
  // The rename is durable once the directory is synced; not every file system allows that.
  try {
    const dirHandle = await ops.open(dir, 'r');
    await dirHandle.sync().finally(() => dirHandle.close());
  } catch {
    // best effort
  }
}

/**
 * Removes the temp files a killed writer left beside `path` (`.<file>.<pid>.<random>.tmp`) whose
 * process is gone; a temp file of a live process (another exporter writing now) is left alone.
 * Returns the names removed.
 */
export async function removeStaleTempFiles(path: string, isAlive: (pid: number) => boolean): Promise<string[]> {
  const dir = dirname(path);
  const prefix = `.${basename(path)}.`;
  const removed: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = name.startsWith(prefix) ? /^(\d+)\.[0-9a-f]+\.tmp$/.exec(name.slice(prefix.length)) : null;
    if (!m || isAlive(Number(m[1]))) continue;
    await unlink(join(dir, name)).then(() => removed.push(name), () => undefined);
  }
  return removed;
}

/** Moves an unusable state file to `<file>.corrupt-<time>` and returns that name. */
export async function moveAsideCorrupt(path: string, wallMs: number, why: 'corrupt' | 'unreadable' = 'corrupt'): Promise<string> {
  const target = `${path}.${why}-${new Date(wallMs).toISOString().replace(/[:.]/g, '-')}`;
  try {
    await rename(path, target);
  } catch (err) {
    throw new LivemigError('LME_STATE_FILE', [path, `cannot move it aside to ${target}: ${errorMessage(err)}`], { cause: err });
  }
  return target;
}
