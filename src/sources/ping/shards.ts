/**
 * Which fping process probes which target. Pure.
 *
 * One fping 5.1 process keeps 65,536 sequence numbers for a 10 s expiry and dies with `not enough
 * sequence numbers available!` above about 6,500 probes/s (lab-notes: 1,000 targets at 100 ms died
 * after 6 to 9 s). So a process gets at most `maxTargets` targets and at most `maxProbesPerSecond`
 * probes/s: at 100 ms that is 500 targets, at 10 ms 50.
 */

export function targetsPerProcess(periodMs: number, maxTargets: number, maxProbesPerSecond: number): number {
  return Math.max(1, Math.min(maxTargets, Math.floor((maxProbesPerSecond * periodMs) / 1000)));
}

/**
 * fping's -i: the least time between two sends of one process. fping 5.1's default of 10 ms cannot
 * serve 500 targets at 100 ms (one round would take 5 s), so the first sends of a round are
 * spread over half a period, never closer than 10 us nor further apart than fping's default.
 */
export function sendIntervalMs(periodMs: number, targets: number): number {
  const spread = periodMs / (2 * Math.max(1, targets));
  return Math.min(10, Math.max(0.01, Math.floor(spread * 100) / 100));
}

export interface ShardPlan {
  /** Address -> shard id, for every wanted address. */
  assignment: Map<string, number>;
  /** Shards whose target list changed (including shards left empty, to be stopped). */
  changed: Set<number>;
}

/**
 * Keeps every remaining target in its shard; new targets fill the lowest shards with room, then
 * new shards. Only shards that gain or lose a target are in `changed`, so the others keep their
 * fping process and their targets' state.
 */
export function planShards(current: ReadonlyMap<string, number>, wanted: readonly string[], capacity: number): ShardPlan {
  const wantedSet = new Set(wanted);
  const assignment = new Map<string, number>();
  const changed = new Set<number>();
  const load = new Map<number, number>();
  for (const [address, shard] of current) {
    if (wantedSet.has(address)) {
      assignment.set(address, shard);
      load.set(shard, (load.get(shard) ?? 0) + 1);
    } else {
      changed.add(shard);
    }
  }
  let candidate = 0;
  for (const address of wanted) {
    if (assignment.has(address)) continue;
    while ((load.get(candidate) ?? 0) >= capacity) candidate++;
    assignment.set(address, candidate);
    load.set(candidate, (load.get(candidate) ?? 0) + 1);
    changed.add(candidate);
  }
  return { assignment, changed };
}
