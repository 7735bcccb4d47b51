/**
 * From a key path of the parsed config (zod's issue path) back to the YAML source: the node, the
 * line and the column. Aliases are followed; a path that does not exist (a missing key) ends at
 * the deepest node that does.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair } from 'yaml';

export interface SourcePosition {
  line: number;
  col: number;
}

export interface Located {
  /** The node at the path, or at its deepest existing part. */
  node: Node | null;
  /** The map entry whose value `node` is (null at the top and in sequences). */
  pair: Pair<unknown, unknown> | null;
  /** How many parts of the path exist. */
  depth: number;
}

export function locate(doc: Document, path: readonly PropertyKey[]): Located {
  let node = resolve(doc, doc.contents as Node | null);
  let pair: Pair<unknown, unknown> | null = null;
  let depth = 0;
  for (const part of path) {
    let next: { node: Node | null; pair: Pair<unknown, unknown> | null } | null = null;
    if (isMap(node)) {
      const found = node.items.find((item) => isPair(item) && keyText(item) === String(part));
      if (found) next = { node: resolve(doc, found.value as Node | null), pair: found as Pair<unknown, unknown> };
    } else if (isSeq(node) && typeof part === 'number' && part < node.items.length) {
      next = { node: resolve(doc, node.items[part] as Node | null), pair: null };
    }
    if (!next) break;
    ({ node, pair } = next);
    depth++;
  }
  return { node, pair, depth };
}

/** The key of a map entry as text (`monitors`, `5` for a number key). */
export function keyText(pair: Pair<unknown, unknown>): string {
  const key = pair.key;
  return isScalar(key) ? String(key.value) : String(key);
}

/** The map entry of `key` in the mapping at `path`, when there is one. */
export function pairAt(doc: Document, path: readonly PropertyKey[], key: string): Pair<unknown, unknown> | null {
  const { node, depth } = locate(doc, path);
  if (depth < path.length || !isMap(node)) return null;
  return (node.items.find((item) => keyText(item as Pair<unknown, unknown>) === key) as Pair<unknown, unknown> | undefined) ?? null;
}

/** Where a node starts (its first character), or null for a node that has no source range. */
export function startOf(node: unknown, lines: LineCounter): SourcePosition | null {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range ? lines.linePos(range[0]) : null;
}

/**
 * Where to point for the value at `path`: the value itself; for an empty value (`polling:` with
 * nothing after it) its key; for a missing key the mapping that lacks it.
 */
export function positionOf(doc: Document, lines: LineCounter, path: readonly PropertyKey[]): SourcePosition | null {
  const { node, pair, depth } = locate(doc, path);
  const empty = node === null || (isScalar(node) && node.value === null && (node.range?.[0] ?? 0) === (node.range?.[1] ?? 0));
  if (depth === path.length && empty && pair) return startOf(pair.key, lines);
  return startOf(node, lines) ?? (pair ? startOf(pair.key, lines) : null) ?? { line: 1, col: 1 };
}

function resolve(doc: Document, node: Node | null): Node | null {
  // An alias stands for its anchor's node; a cycle cannot occur in a parsed document.
  for (let hops = 0; isAlias(node) && hops < 100; hops++) node = (node.resolve(doc) ?? null) as Node | null;
  return node;
}
