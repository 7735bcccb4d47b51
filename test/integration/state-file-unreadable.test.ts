/**
 * A state file that cannot be read is never overwritten (issue 13, item 1): the exporter moves it
 * aside and starts empty, or, when it cannot even do that, leaves it alone and writes nothing.
 * Both cases for real: a 600 MB file (more than a JavaScript string holds) and, as user nobody,
 * a root-owned file in a directory it cannot write.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { missingTools, needsRoot, requireEnvironment } from '../helpers/env.js';
import { ExporterProcess, writeConfig } from '../helpers/exporter-process.js';

const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

describe.runIf(requireEnvironment(missingTools('runuser'), needsRoot()))('a state file the exporter cannot read', () => {
  let dir: string;
  const exporters: ExporterProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lme-state-unreadable-'));
    chmodSync(dir, 0o755);
  });
  afterEach(async () => {
    await Promise.all(exporters.splice(0).map((e) => e.stop()));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('too large to read (600 MB): moved aside whole, and the exporter starts empty', async () => {
    const stateDir = join(dir, 'large');
    const path = join(stateDir, 'state.json');
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(path, '');
    truncateSync(path, 600 * 1024 * 1024);
    const exporter = await ExporterProcess.start(await writeConfig(dir, { state_file: path, libvirt: { discover: 'off' } }));
    exporters.push(exporter);
    await expect.poll(() => exporter.logs.some((l) => l.msg === 'state file cannot be read; moved aside, starting empty'), { timeout: 15_000 }).toBe(true);
    const aside = readdirSync(stateDir).filter((f) => f.startsWith('state.json.unreadable-'));
    expect(aside).toHaveLength(1);
    expect(statSync(join(stateDir, aside[0]!)).size).toBe(600 * 1024 * 1024);
    expect((await exporter.migrations()).length).toBe(0);
  }, 60_000);

  it('unreadable and not movable (as user nobody): left untouched and never written', async () => {
    const stateDir = join(dir, 'foreign');
    mkdirSync(stateDir, { recursive: true, mode: 0o755 });
    chmodSync(stateDir, 0o755);
    const path = join(stateDir, 'state.json');
    writeFileSync(path, '{"version":1,"savedAtMs":0,"records":[],"tracker":{"vms":{}}}\n', { mode: 0o600 });
    const before = sha(path);
    const config = await writeConfig(dir, { state_file: path, libvirt: { discover: 'off' } });
    chmodSync(config, 0o644);
    const exporter = await ExporterProcess.start(config, [], { HOME: tmpdir() }, ['runuser', '-u', 'nobody', '--']);
    exporters.push(exporter);
    await expect
      .poll(() => exporter.logs.some((l) => l.msg === 'state file cannot be read nor moved aside: left as it is and not written (records are kept in memory only until this is fixed)'), { timeout: 15_000 })
      .toBe(true);
    await new Promise((r) => setTimeout(r, 2_000));
    await exporter.stop();
    expect(sha(path)).toBe(before);
    expect(readdirSync(stateDir)).toEqual(['state.json']);
  }, 60_000);
});
