import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { isMap, isSeq, LineCounter, parseDocument, type Document, type Pair, type YAMLError } from 'yaml';
import type { z } from 'zod';
import { errorMessage, livemigError, LivemigError } from '../errors.js';
import { keyText, locate, pairAt, positionOf, startOf, type SourcePosition } from './locate.js';
import { closest, describePlace, placeOfPath, placesOf } from './places.js';
import { configSchema, toConfig, type Config } from './schema.js';
import { undeclaredHosts } from './warnings.js';

/** A config and what in it is allowed but probably not meant (LME_CONFIG_HOST_UNDECLARED). */
export interface LoadedConfig {
  config: Config;
  warnings: LivemigError[];
}

export interface ParseOptions {
  /** Names of this machine that need no `hosts` entry (default: os.hostname(), short and full). */
  localNames?: readonly string[];
}

/** Reads, parses and validates a config file; every failure names the file, the line and column, and the key path. */
export async function readConfigFile(file: string, options: ParseOptions = {}): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw livemigError('LME_CONFIG_READ', file, (err as NodeJS.ErrnoException).code ?? err);
  }
  return parseConfig(text, file, options);
}

export async function loadConfigFile(file: string): Promise<Config> {
  return (await readConfigFile(file)).config;
}

export function parseConfigText(text: string, file: string): Config {
  return parseConfig(text, file).config;
}

/**
 * Parses and validates config text. Throws one LivemigError listing every problem (its
 * `problems`, one a line), each as `FILE:LINE:COLUMN: key.path: what to write`.
 */
export function parseConfig(text: string, file: string, options: ParseOptions = {}): LoadedConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  if (doc.errors.length > 0) throw LivemigError.all(doc.errors.map((err) => yamlProblem(err, text, file, lines)));
  let raw: unknown;
  try {
    // The yaml library refuses documents whose aliases would expand without bound (an alias bomb).
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    throw livemigError('LME_CONFIG_YAML', file, errorMessage(err));
  }
  const config = validate(raw, file, { doc, lines });
  const where = (path: readonly PropertyKey[]) => at(file, positionOf(doc, lines, path));
  const localNames = options.localNames ?? defaultLocalNames();
  return { config, warnings: undeclaredHosts(config, localNames).map((w) => livemigError('LME_CONFIG_HOST_UNDECLARED', where(w.path), keyPath(w.path), w.name, w.hint)) };
}

/** Validates an already parsed config (the lab's generated one): every problem, without positions. */
export function validateConfig(raw: unknown, file: string): Config {
  return validate(raw, file, null);
}

/** The default config: serves a compute host, watching local libvirt domains when virsh is there. */
export function defaultConfig(): Config {
  return validateConfig({}, '(built-in defaults)');
}

interface Source {
  doc: Document;
  lines: LineCounter;
}

interface Problem {
  path: readonly PropertyKey[];
  message: string;
  position: SourcePosition | null;
}

const PLACES = placesOf(configSchema);

function validate(raw: unknown, file: string, source: Source | null): Config {
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (result.success) return toConfig(result.data);
  const problems = result.error.issues.flatMap((issue) => describe(innermost(issue), source));
  problems.sort((a, b) => (a.position?.line ?? 0) - (b.position?.line ?? 0) || (a.position?.col ?? 0) - (b.position?.col ?? 0));
  throw LivemigError.all(problems.map((p) => livemigError('LME_CONFIG_INVALID', at(file, p.position), keyPath(p.path), p.message)));
}

function yamlProblem(err: YAMLError, text: string, file: string, lines: LineCounter): LivemigError {
  // Without prettyErrors the message is the problem alone; the position comes from the offset,
  // past the indentation of a badly indented line (the column of its key, not 1).
  let offset = err.pos[0];
  while (text[offset] === ' ') offset++;
  return livemigError('LME_CONFIG_YAML', at(file, lines.linePos(offset)), err.message.split('\n')[0]);
}

/** FILE:LINE:COLUMN, the form editors and terminals jump to. */
function at(file: string, position: SourcePosition | null): string {
  return position ? `${file}:${position.line}:${position.col}` : file;
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

function describe(issue: z.core.$ZodIssue, source: Source | null): Problem[] {
  const position = (path: readonly PropertyKey[]) => (source ? positionOf(source.doc, source.lines, path) : null);
  if (issue.code === 'unrecognized_keys') {
    // One problem per key, each at its own line.
    return issue.keys.map((key) => {
      const pair = source ? pairAt(source.doc, issue.path, key) : null;
      return { path: issue.path, message: unknownKey(issue.path, key, source), position: pair && source ? startOf(pair.key, source.lines) : position(issue.path) };
    });
  }
  return [{ path: issue.path, message: describeIssue(issue), position: position(issue.path) }];
}

function describeIssue(issue: z.core.$ZodIssue): string {
  // A QMP endpoint is the one union whose branches are shapes to name; others say what they take.
  if (issue.code === 'invalid_union' && issue.path.at(-1) === 'qmp') {
    return `${'input' in issue && issue.input !== undefined ? 'expected' : 'missing: write'} one of {unix: PATH}, {tcp: HOST:PORT}, {virsh: {domain, uri}}`;
  }
  if (issue.code === 'invalid_type' && issue.message.startsWith('Invalid input')) {
    const key = String(issue.path.at(-1) ?? '');
    if (!('input' in issue) || issue.input === undefined) return 'missing (required)';
    if (issue.input === null && issue.expected === 'object') return `is empty: nothing is indented below "${key}:"; indent its keys below it, or remove the line`;
    if (issue.input === null && issue.expected === 'array') return `is empty: nothing is indented below "${key}:"; write its entries below it, each starting with "- ", or remove the line`;
  }
  return issue.message;
}

/**
 * An unknown key: where it belongs when it is another section's key (a block left unindented:
 * `polling:` then `idle_interval: 5s` at the top level), else the known key it is a typo of.
 */
function unknownKey(path: readonly PropertyKey[], key: string, source: Source | null): string {
  const homes = [...PLACES].filter(([, keys]) => keys.includes(key)).map(([place]) => place);
  if (homes.length === 0) {
    const typo = closest(key, PLACES.get(placeOfPath(path)) ?? []);
    return `unknown key "${key}"${typo ? ` (did you mean "${typo}"?)` : ''}`;
  }
  const anchor = source ? anchorOf(source, path, key, homes) : null;
  if (anchor) return `unknown key "${key}": ${anchor}`;
  const here = placeOfPath(path);
  return `unknown key "${key}": it belongs in ${homes.map(describePlace).join(' or ')}, not ${here === '' ? 'at' : 'in'} ${describePlace(here)}`;
}

/**
 * The block above an unknown key that takes it: the previous entries of the same mapping, each
 * followed down its last child (vms -> its last entry -> that entry's last monitor).
 */
function anchorOf(source: Source, path: readonly PropertyKey[], key: string, homes: string[]): string | null {
  const { node, depth } = locate(source.doc, path);
  if (depth < path.length || !isMap(node)) return null;
  const items = node.items as Pair<unknown, unknown>[];
  const index = items.findIndex((item) => keyText(item) === key);
  for (let i = index - 1; i >= 0; i--) {
    const previous = keyText(items[i] as Pair<unknown, unknown>);
    let containerPath: PropertyKey[] = [...path, previous];
    for (let level = 0; level < 8; level++) {
      const { node: container, pair } = locate(source.doc, containerPath);
      const place = placeOfPath(containerPath);
      if (homes.includes(place)) {
        const keyPos = pair ? startOf(pair.key, source.lines) : null;
        if (typeof containerPath.at(-1) !== 'number') return `it belongs under "${String(containerPath.at(-1))}:"${keyPos ? ` (line ${keyPos.line})` : ''}: indent it below that line`;
        const firstKey = isMap(container) && container.items[0] ? keyText(container.items[0] as Pair<unknown, unknown>) : null;
        const entryPos = startOf(container, source.lines);
        return `it belongs in the ${String(containerPath.at(-2))} entry${entryPos ? ` at line ${entryPos.line}` : ''}: indent it to line up with ${firstKey ? `"${firstKey}:"` : 'its keys'}`;
      }
      const empty = container === null || (!isMap(container) && !isSeq(container) && (container as { value?: unknown }).value === null);
      if (empty && homes.includes(`${place}[]`)) {
        const keyPos = pair ? startOf(pair.key, source.lines) : null;
        return `it belongs in an entry of "${String(containerPath.at(-1))}:"${keyPos ? ` (line ${keyPos.line})` : ''}: indent the entry below that line, its first key after "- "`;
      }
      if (isSeq(container) && container.items.length > 0) containerPath = [...containerPath, container.items.length - 1];
      else if (isMap(container) && container.items.length > 0) containerPath = [...containerPath, keyText(container.items.at(-1) as Pair<unknown, unknown>)];
      else break;
    }
    // Keys above that are misplaced too (a whole block left unindented) do not stop the search.
    const previousHomes = [...PLACES].some(([place, keys]) => place !== placeOfPath(path) && keys.includes(previous));
    if ((PLACES.get(placeOfPath(path)) ?? []).includes(previous) || !previousHomes) return null;
  }
  return null;
}

function defaultLocalNames(): string[] {
  const name = hostname();
  return [...new Set([name, name.split('.')[0] as string])];
}
