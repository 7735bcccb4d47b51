import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BatchedOutput } from '../../src/sources/ping/batched-output.js';

/** A real child (`seq`) writing into the FIFO; the test drains it like FpingProcess does. */
async function readAll(lines: number, intervalMs: number): Promise<{ text: string; chunks: number }> {
  const parts: Buffer[] = [];
  const output = new BatchedOutput(intervalMs, (chunk) => parts.push(chunk));
  let child;
  try {
    child = spawn('seq', ['1', String(lines)], { stdio: ['ignore', output.writerFd, 'inherit'] });
  } finally {
    output.closeWriter();
  }
  output.start();
  await once(child, 'close');
  output.finish();
  return { text: Buffer.concat(parts).toString('utf8'), chunks: parts.length };
}

describe('BatchedOutput (a child writing into a FIFO drained on a timer)', () => {
  it('loses nothing when the child writes far more than the FIFO holds between two drains: the child waits', async () => {
    const lines = 300_000; // about 2 MB, 30 times a pipe's 64 KiB
    const { text } = await readAll(lines, 50);
    const got = text.trimEnd().split('\n');
    expect(got).toHaveLength(lines);
    expect(got[0]).toBe('1');
    expect(got.at(-1)).toBe(String(lines));
    expect(got.every((line, i) => line === String(i + 1))).toBe(true);
  });

  it('reads in batches, not a read per line', async () => {
    const { text, chunks } = await readAll(20_000, 20);
    expect(text.split('\n').length - 1).toBe(20_000);
    expect(chunks).toBeLessThan(20_000 / 10);
  });

  it('leaves no FIFO behind in the temp directory, and reads end of file once no writer is left', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lme-test-'));
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = dir; // os.tmpdir() reads it on every call
    try {
      const output = new BatchedOutput(20, () => undefined);
      expect(readdirSync(dir)).toEqual([]);
      output.closeWriter();
      expect(output.drain()).toBe(true);
      output.finish();
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
