import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock } from '../clock.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { moveAsideCorrupt, readStateFile, removeStaleTempFiles, StateFileCorruptError, type StateFileContent } from './state-file.js';
import type { MigrationStore } from './store.js';

export interface LoadedState {
  /** What the file held; undefined for none, or for one that could not be used. */
  content: StateFileContent | undefined;
  /** False when a file that could not be read is still in place: writing would destroy it. */
  writable: boolean;
}

/**
 * Reads the state file into the store; returns what it holds for the tracker and the logs. A
 * file that is corrupt, or that cannot be read (EACCES, too large for a string), is moved aside
 * so that nothing in it is lost; when even that fails, the file is left alone and not written.
 */
export async function loadState(path: string | null, store: MigrationStore, clock: Clock, logger: Logger): Promise<LoadedState> {
  if (!path) return { content: undefined, writable: false };
  let readError: unknown;
  try {
    await mkdir(dirname(path), { recursive: true });
    const removed = await removeStaleTempFiles(path, isAlive);
    if (removed.length > 0) logger.info({ path, removed }, 'removed temp files of a state write that did not finish (a killed exporter)');
    const content = await readStateFile(path);
    if (!content) {
      logger.info({ path }, 'no state file yet; starting empty');
      return { content: undefined, writable: true };
    }
    store.load(content.records);
    logger.info({ path, records: store.size, savedAt: new Date(content.savedAtMs).toISOString() }, 'state file loaded');
    return { content, writable: true };
  } catch (err) {
    readError = err;
  }
  const why = readError instanceof StateFileCorruptError ? 'corrupt' : 'unreadable';
  try {
    const movedTo = await moveAsideCorrupt(path, clock.wallMs(), why);
    logger.error({ path, movedTo, err: errorMessage(readError) }, `state file ${why === 'corrupt' ? 'unusable' : 'cannot be read'}; moved aside, starting empty`);
    return { content: undefined, writable: true };
  } catch (moveError) {
    logger.error(
      { path, err: errorMessage(readError), moveErr: errorMessage(moveError) },
      'state file cannot be read nor moved aside: left as it is and not written (records are kept in memory only until this is fixed)',
    );
    return { content: undefined, writable: false };
  }
}

/** Whether a process of that PID runs (signal 0: EPERM means it runs as another user). */
function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
