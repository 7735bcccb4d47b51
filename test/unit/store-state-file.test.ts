import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LivemigError } from '../../src/errors.js';
import { StatePersistence, type Scheduler } from '../../src/records/persistence.js';
import {
  decodeState,
  encodeState,
  moveAsideCorrupt,
  nodeFileOps,
  readStateFile,
  removeStaleTempFiles,
  STATE_FILE_VERSION,
  StateFileCorruptError,
  writeStateFile,
  type FileOps,
  type StateFileContent,
} from '../../src/records/state-file.js';
import { captureLogger, recordEnded } from './tracker-scenarios.js';

const NOW = 1_800_000_000_000;

function content(records = [recordEnded('vm1', NOW - 5000, NOW - 1000)]): StateFileContent {
  return { version: STATE_FILE_VERSION, savedAtMs: NOW, records, tracker: { vms: {} } };
}

let dir: string;
let path: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'livemig-state-'));
  path = join(dir, 'state.json');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The real file system, except that one step of the atomic write fails. */
function failingAt(step: 'write' | 'sync' | 'rename'): FileOps {
  const boom = (): Promise<never> => Promise.reject(Object.assign(new Error(`${step} failed: ENOSPC`), { code: 'ENOSPC' }));
  return {
    async open(p, flags, mode) {
      const handle = await nodeFileOps.open(p, flags, mode);
      return {
        writeFile: (data) => (step === 'write' ? boom() : handle.writeFile(data)),
        sync: () => (step === 'sync' ? boom() : handle.sync()),
        close: () => handle.close(),
      };
    },
    rename: (from, to) => (step === 'rename' ? boom() : nodeFileOps.rename(from, to)),
    unlink: (p) => nodeFileOps.unlink(p),
  };
}

async function rejection(promise: Promise<unknown>): Promise<LivemigError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LivemigError);
  return err as LivemigError;
}

describe('state file', () => {
  it('a missing file is an empty state', async () => {
    expect(await readStateFile(path)).toBeNull();
  });

  it('round-trips records and tracker state, leaving no temp file', async () => {
    const saved = content();
    await writeStateFile(path, saved);
    expect(await readStateFile(path)).toEqual(saved);
    expect(await readdir(dir)).toEqual(['state.json']);
  });

  for (const step of ['write', 'sync', 'rename'] as const) {
    it(`a failed ${step} leaves the previous file intact and no temp file`, async () => {
      await writeStateFile(path, content());
      const before = await readFile(path, 'utf8');
      const err = await rejection(writeStateFile(path, content([]), failingAt(step)));
      expect(err.code).toBe('LME_STATE_FILE');
      expect(err.message).toBe(`state file ${path} cannot be used: cannot write it: ${step} failed: ENOSPC`);
      expect(await readFile(path, 'utf8')).toBe(before);
      expect(await readdir(dir)).toEqual(['state.json']);
    });
  }

  it('writing into a directory that does not exist fails with the file named, creating nothing', async () => {
    const missing = join(dir, 'no-such-dir', 'state.json');
    const err = await rejection(writeStateFile(missing, content()));
    expect(err.code).toBe('LME_STATE_FILE');
    expect(err.message).toContain(missing);
    expect(await readdir(dir)).toEqual([]);
  });

  const corrupt: [string, string, string][] = [
    ['truncated JSON', '{"version":1,"records":[', 'not valid JSON'],
    ['no version', '{"records":[]}', 'no schema version (this exporter reads version 1)'],
    ['another version', JSON.stringify({ ...content(), version: 2 }), 'schema version 2, this exporter reads version 1'],
    ['a record without an id', JSON.stringify({ ...content(), records: [{ ...recordEnded('vm1', 1, 2), id: 5 }] }), 'unexpected content: records.0.id'],
    ['tracker state of the wrong shape', JSON.stringify({ ...content(), tracker: { vms: { vm1: { open: 'yes' } } } }), 'unexpected content: tracker.vms.vm1'],
  ];
  for (const [what, text, detail] of corrupt) {
    it(`refuses ${what} with an LME_STATE_FILE error naming the file`, async () => {
      await writeFile(path, text);
      const err = await rejection(readStateFile(path));
      expect(err).toBeInstanceOf(StateFileCorruptError);
      expect(err.code).toBe('LME_STATE_FILE');
      expect(err.message).toContain(`state file ${path} cannot be used: ${detail}`);
    });
  }

  it('an unreadable path is an LME_STATE_FILE error, not corruption', async () => {
    const err = await rejection(readStateFile(dir));
    expect(err).not.toBeInstanceOf(StateFileCorruptError);
    expect(err.message).toContain(`state file ${dir} cannot be used: cannot read it`);
  });

  it('moves a corrupt file aside to <file>.corrupt-<time>', async () => {
    await writeFile(path, 'garbage');
    const moved = await moveAsideCorrupt(path, Date.UTC(2026, 2, 10, 12, 34, 56, 789));
    expect(moved).toBe(`${path}.corrupt-2026-03-10T12-34-56-789Z`);
    expect(await readFile(moved, 'utf8')).toBe('garbage');
    expect(await readStateFile(path)).toBeNull();
  });

  it('decodeState and encodeState are each other’s inverse', () => {
    const saved = content();
    expect(decodeState(encodeState(saved), 'x')).toEqual(saved);
  });
});

class ManualScheduler implements Scheduler {
  readonly pending = new Map<number, () => void>();
  private next = 0;
  setTimeout(fn: () => void): unknown {
    this.pending.set(++this.next, fn);
    return this.next;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  fire(): void {
    const due = [...this.pending.values()];
    this.pending.clear();
    for (const fn of due) fn();
  }
}

describe('StatePersistence (debounced writes)', () => {
  function setup(write: (p: string, c: StateFileContent) => Promise<void>) {
    const scheduler = new ManualScheduler();
    const { logger, lines } = captureLogger();
    const outcomes: boolean[] = [];
    let version = 0;
    const persistence = new StatePersistence({
      path,
      debounceMs: 2000,
      scheduler,
      logger,
      write,
      onWrite: (ok) => outcomes.push(ok),
      snapshot: () => ({ ...content([]), savedAtMs: ++version }),
    });
    return { persistence, scheduler, lines, outcomes };
  }

  it('changes within the debounce interval make one write', async () => {
    const writes: number[] = [];
    const { persistence, scheduler } = setup(async (_p, c) => void writes.push(c.savedAtMs));
    persistence.schedule();
    persistence.schedule();
    persistence.schedule();
    expect(scheduler.pending.size).toBe(1);
    scheduler.fire();
    await persistence.flush();
    expect(writes).toEqual([1]);
  });

  it('flush() writes pending changes at once and cancels the timer; nothing pending, nothing written', async () => {
    const writes: number[] = [];
    const { persistence, scheduler } = setup(async (_p, c) => void writes.push(c.savedAtMs));
    persistence.schedule();
    await persistence.flush();
    expect(scheduler.pending.size).toBe(0);
    await persistence.flush();
    expect(writes).toEqual([1]);
  });

  it('a failed write is reported, retried at the next interval, and flush() rejects', async () => {
    let fail = true;
    const { persistence, scheduler, lines, outcomes } = setup(async () => {
      if (fail) throw new Error('disk full');
    });
    persistence.schedule();
    await expect(persistence.flush()).rejects.toThrow('disk full');
    expect(outcomes).toEqual([false]);
    expect(lines.filter((l) => l.msg === 'state file not written; will retry')).toHaveLength(1);
    expect(scheduler.pending.size).toBe(1);
    fail = false;
    scheduler.fire();
    await persistence.flush();
    expect(outcomes).toEqual([false, true]);
  });

  it('writes the real file atomically through writeStateFile by default', async () => {
    const scheduler = new ManualScheduler();
    const { logger } = captureLogger();
    const persistence = new StatePersistence({ path, debounceMs: 10, scheduler, logger, snapshot: () => content() });
    persistence.schedule();
    await persistence.flush();
    expect((await readStateFile(path))?.records).toHaveLength(1);
    expect(await readdir(dir)).toEqual(['state.json']);
  });
});

describe('temp files of a state write that did not finish (issue 13, item 10)', () => {
  it("removes a killed writer's temp files, keeps a live one's and every other file", async () => {
    const dead = 999_999_999;
    const names = [`.state.json.${dead}.0a1b2c3d.tmp`, `.state.json.${process.pid}.deadbeef.tmp`, 'state.json', '.other.json.1.aa.tmp', '.state.json.x.tmp'];
    for (const name of names) await writeFile(join(dir, name), 'x');
    const removed = await removeStaleTempFiles(path, (pid) => pid === process.pid);
    expect(removed).toEqual([`.state.json.${dead}.0a1b2c3d.tmp`]);
    expect((await readdir(dir)).sort()).toEqual(names.slice(1).sort());
  });
});
