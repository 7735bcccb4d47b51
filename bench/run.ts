/**
 * `npm run bench`: every benchmark with its defaults, one after the other, each in its own
 * process (a benchmark's heap and JIT state never colour the next one's figures).
 * Exits non-zero only when a benchmark broke; a missed target is a FAIL line, not an error.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './common.js';

const BENCHMARKS = ['qmp-poll.ts', 'scrape.ts', 'ping.ts', 'logs.ts'];

function run(file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', file)], { cwd: ROOT, stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

let broken = 0;
for (const file of BENCHMARKS) {
  const code = await run(file);
  if (code !== 0) {
    console.log(`bench/${file} exited with ${code}`);
    broken++;
  }
  console.log('');
}
process.exitCode = broken > 0 ? 1 : 0;
