import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { errorMessage, livemigError } from '../errors.js';
import { configSchema, toConfig, type Config } from './schema.js';

/** Reads, parses and validates a config file; every failure names the file and the key path. */
export async function loadConfigFile(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw livemigError('LME_CONFIG_READ', file, (err as NodeJS.ErrnoException).code ?? err);
  }
  return parseConfigText(text, file);
}

export function parseConfigText(text: string, file: string): Config {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0];
    throw livemigError('LME_CONFIG_YAML', file, first?.message.split('\n')[0]);
  }
  let raw: unknown;
  try {
    // The yaml library refuses documents whose aliases would expand without bound (an alias bomb).
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    throw livemigError('LME_CONFIG_YAML', file, errorMessage(err));
  }
  return validateConfig(raw, file);
}

export function validateConfig(raw: unknown, file: string): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const issue = innermost(result.error.issues[0] as z.core.$ZodIssue);
    throw livemigError('LME_CONFIG_INVALID', file, keyPath(issue.path), describeIssue(issue));
  }
  return toConfig(result.data);
}

/** The default config: serves a compute host, watching local libvirt domains when virsh is there. */
export function defaultConfig(): Config {
  return validateConfig({}, '(built-in defaults)');
}

function keyPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${String(part)}`)).join('');
}

/** In a union, the branch that got furthest names the real problem (a bad port, not "no branch matched"). */
function innermost(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== 'invalid_union') return issue;
  const deeper = issue.errors.flat().find((inner) => inner.path.length > 0 && inner.code !== 'unrecognized_keys' && !inner.message.endsWith('received undefined'));
  return deeper ? { ...deeper, path: [...issue.path, ...deeper.path] } : issue;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  // A QMP endpoint is the one union whose branches are shapes to name; others say what they take.
  if (issue.code === 'invalid_union' && issue.path.at(-1) === 'qmp') return 'expected one of {unix: PATH}, {tcp: HOST:PORT}, {virsh: {domain, uri}}';
  return issue.message;
}
