import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock } from '../clock.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { moveAsideCorrupt, readStateFile, StateFileCorruptError, type StateFileContent } from './state-file.js';
import type { MigrationStore } from './store.js';

/** Reads the state file into the store; returns what it holds for the tracker and the logs. A corrupt file is moved aside. */
export async function loadState(path: string | null, store: MigrationStore, clock: Clock, logger: Logger): Promise<StateFileContent | undefined> {
  if (!path) return undefined;
  try {
    await mkdir(dirname(path), { recursive: true });
    const content = await readStateFile(path);
    if (!content) {
      logger.info({ path }, 'no state file yet; starting empty');
      return undefined;
    }
    store.load(content.records);
    logger.info({ path, records: store.size, savedAt: new Date(content.savedAtMs).toISOString() }, 'state file loaded');
    return content;
  } catch (err) {
    if (err instanceof StateFileCorruptError) {
      const movedTo = await moveAsideCorrupt(path, clock.wallMs());
      logger.error({ path, movedTo, err: errorMessage(err) }, 'state file unusable; moved aside, starting empty');
      return undefined;
    }
    logger.error({ path, err: errorMessage(err) }, 'state file cannot be read; records will not survive a restart until this is fixed');
    return undefined;
  }
}
