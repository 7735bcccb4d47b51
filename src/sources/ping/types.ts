/** A ping target: an address fping is given, optionally tied to a VM of the config. */
export interface PingTarget {
  /** IP address (or host name) as fping is given it; unique among the targets. */
  address: string;
  vm?: string;
  labels: Readonly<Record<string, string>>;
}

/** Counters of one target since it was added; they survive fping restarts and shard moves. */
export interface PingCounters {
  /** Probes whose fate is known (answered or lost); in-flight probes are not counted yet. */
  sent: number;
  received: number;
  /** Extra replies to a probe already answered. */
  duplicates: number;
  /** ICMP errors (host unreachable, prohibited ...) about the target's probes. */
  icmpErrors: number;
}

export interface PingTargetState {
  target: PingTarget;
  counters: PingCounters;
  /** Seconds since the send of the first lost probe of the current run of losses; 0 while answering. */
  currentOutageSeconds: number;
  /** Whether the fping process that probes this target is running. */
  processUp: boolean;
}

export interface PingProcessState {
  shard: number;
  pid: number | null;
  up: boolean;
  restarts: number;
  targets: readonly string[];
}

export interface PingHealth {
  /** Every fping process is running (true when there are no targets). */
  up: boolean;
  processes: number;
  processesUp: number;
  /** Unexpected fping exits since the source started. */
  restarts: number;
}
