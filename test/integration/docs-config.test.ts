/**
 * Every YAML block in README.md and docs/ is an exporter config, and `check-config` accepts it
 * as written, so the docs cannot drift from the schema. A block of another kind of YAML must say
 * so in its fence (```yaml prometheus) and be given a check of its own here: `web-config` blocks go
 * through the web config parser, `prometheus` blocks (a prometheus.yml, or its scrape_configs)
 * through `promtool check config`.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWebConfigText } from '../../src/server/web-config.js';
import { missingTools, requireEnvironment } from '../helpers/env.js';
import { runCli } from '../helpers/exporter-process.js';

const ROOT = new URL('../..', import.meta.url).pathname;

interface YamlBlock {
  file: string;
  line: number;
  kind: string;
  text: string;
}

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? markdownFiles(join(dir, entry.name)) : entry.name.endsWith('.md') ? [join(dir, entry.name)] : [],
  );
}

/** Fenced blocks whose info string starts with yaml (or yml); kind is the info string's second word. */
export function yamlBlocks(file: string, markdown: string): YamlBlock[] {
  const blocks: YamlBlock[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(```+|~~~+)\s*(yaml|yml)\b\s*(\S*)/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[2]!;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !lines[end]!.trimStart().startsWith(fence)) end++;
    blocks.push({ file: relative(ROOT, file), line: start, kind: open[4] || 'livemig-exporter', text: lines.slice(start, end).join('\n') + '\n' });
    i = end;
  }
  return blocks;
}

const blocks = [join(ROOT, 'README.md'), ...markdownFiles(join(ROOT, 'docs'))].flatMap((file) => yamlBlocks(file, readFileSync(file, 'utf8')));

describe('YAML in README.md and docs/', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lme-docs-yaml-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('has the config reference among its blocks', () => {
    expect(blocks.some((b) => b.file === 'README.md' && b.kind === 'livemig-exporter' && b.text.includes('polling:'))).toBe(true);
  });

  const webConfigs = blocks.filter((b) => b.kind === 'web-config');
  it.each(webConfigs.map((b) => [`${b.file}:${b.line}`, b] as const))('%s is a valid web config file (--web.config.file)', (where, block) => {
    expect(() => parseWebConfigText(block.text, where)).not.toThrow();
  });

  const prometheusConfigs = blocks.filter((b) => b.kind === 'prometheus');
  it('has the scrape_config example among its blocks', () => {
    expect(prometheusConfigs.some((b) => b.file === 'README.md' && b.text.includes('scrape_configs:'))).toBe(true);
  });
  describe.runIf(prometheusConfigs.length > 0 && requireEnvironment(missingTools('promtool')))('promtool', () => {
    it.each(prometheusConfigs.map((b) => [`${b.file}:${b.line}`, b] as const))('%s passes promtool check config', async (where, block) => {
      const file = join(dir, `${where.replace(/[/:]/g, '_')}.prometheus.yml`);
      await writeFile(file, block.text);
      const { code, output } = await new Promise<{ code: number; output: string }>((resolve) => {
        execFile('promtool', ['check', 'config', file], (error, stdout, stderr) => {
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, output: stdout + stderr });
        });
      });
      expect(output).toContain('is valid prometheus config file syntax');
      expect(code, output).toBe(0);
    });
  });

  it.each(blocks.filter((b) => b.kind !== 'web-config' && b.kind !== 'prometheus').map((b) => [`${b.file}:${b.line}`, b] as const))('%s passes check-config', async (where, block) => {
    expect(block.kind, `${where}: no check for YAML of kind "${block.kind}"`).toBe('livemig-exporter');
    const file = join(dir, `${where.replace(/[/:]/g, '_')}.yml`);
    await writeFile(file, block.text);
    const { code, stdout, stderr } = await runCli(['check-config', file]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toContain('valid');
  });
});

describe('yamlBlocks', () => {
  it('finds yaml and yml fences with their kinds and skips others', () => {
    const md = ['# t', '```yaml', 'a: 1', '```', '```sh', 'x', '```', '~~~yml prometheus', 'b: 2', '~~~', ''].join('\n');
    expect(yamlBlocks(join(ROOT, 'x.md'), md)).toEqual([
      { file: 'x.md', line: 2, kind: 'livemig-exporter', text: 'a: 1\n' },
      { file: 'x.md', line: 8, kind: 'prometheus', text: 'b: 2\n' },
    ]);
  });
});
