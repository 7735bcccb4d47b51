/**
 * Where each config key belongs, read from the schema itself: `polling` takes idle_interval…,
 * `vms[]` (an entry of vms) takes name, monitors…, `vms[].monitors[]` takes host and qmp. Used to
 * say where a misplaced key (a block left unindented) should go, and to suggest a key for a typo.
 */
import type { z } from 'zod';

/** A place is a key path with `[]` for "any entry": "" (the top level), "polling", "vms[].monitors[]". */
export type Place = string;

interface Def {
  type: string;
  shape?: Record<string, { def: Def }>;
  innerType?: { def: Def };
  in?: { def: Def };
  element?: { def: Def };
  options?: { def: Def }[];
}

/** Every mapping of the schema with the keys it takes. */
export function placesOf(schema: z.ZodType): Map<Place, string[]> {
  const places = new Map<Place, string[]>();
  const walk = (def: Def, place: Place, depth: number): void => {
    if (depth > 12) return;
    switch (def.type) {
      case 'object': {
        const shape = def.shape ?? {};
        const keys = Object.keys(shape);
        // Keys an entry may take in one union branch or another are merged (qmp: unix, tcp, virsh).
        places.set(place, [...new Set([...(places.get(place) ?? []), ...keys])]);
        for (const key of keys) walk((shape[key] as { def: Def }).def, place ? `${place}.${key}` : key, depth + 1);
        return;
      }
      case 'array':
        if (def.element) walk(def.element.def, `${place}[]`, depth + 1);
        return;
      case 'union':
        for (const option of def.options ?? []) walk(option.def, place, depth + 1);
        return;
      case 'pipe':
        if (def.in) walk(def.in.def, place, depth + 1);
        return;
      default:
        if (def.innerType) walk(def.innerType.def, place, depth + 1);
    }
  };
  walk((schema as unknown as { def: Def }).def, '', 0);
  return places;
}

/** The place of a concrete path: vms[0].monitors[1] -> vms[].monitors[]. */
export function placeOfPath(path: readonly PropertyKey[]): Place {
  return path.map((part, i) => (typeof part === 'number' ? '[]' : `${i === 0 ? '' : '.'}${String(part)}`)).join('');
}

/** How a place reads in a message: "the top level", "polling", "an entry of vms". */
export function describePlace(place: Place): string {
  if (place === '') return 'the top level';
  return place.endsWith('[]') ? `an entry of ${place.slice(0, -2)}` : place;
}

/** Levenshtein distance, for "did you mean". */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      row[j] = Math.min((row[j] as number) + 1, (row[j - 1] as number) + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length] as number;
}

/** The closest of `candidates` to `word` within a distance that still reads as a typo, or null. */
export function closest(word: string, candidates: readonly string[]): string | null {
  // One edit in four characters: idle_intervl is idle_interval, bogus is not logs.
  const limit = Math.max(1, Math.floor(word.length / 4));
  let best: string | null = null;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}
