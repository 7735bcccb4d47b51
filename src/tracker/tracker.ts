/**
 * The migration tracker: feeds each VM's observations to its state machine (vm-machine.ts),
 * hands closed migrations to the record store, and tells listeners what started, changed phase
 * and closed. The metrics layer reads `activeMigrations()`; the state file keeps `snapshot()`.
 *
 * Deadlines (a final reply that does not come, a source that vanished, post-copy paused for too
 * long) are checked on every observation of the VM and by `tick()`: call it every second or so,
 * or use `start()`.
 */
import { EventEmitter } from 'node:events';
import { every, type Clock } from '../clock.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { Observation } from '../observations.js';
import { buildRecord } from './build-record.js';
import type { ActiveMigration, MigrationRecord } from '../records/record.js';
import type { MigrationStore } from '../records/store.js';
import { emptyVmState, type OpenMigration, type TrackerSnapshot, type VmState } from '../records/tracker-snapshot.js';
import { VmMachine, type MachineEffect, type MachineTimeouts } from './vm-machine.js';
import type { MigrationPhase } from '../qemu/status.js';

export type TrackerTimeouts = MachineTimeouts;

export const DEFAULT_TIMEOUTS: TrackerTimeouts = {
  finalReplyMs: 15_000,
  undecidedMs: 60 * 60_000,
  pausedMs: 24 * 60 * 60_000,
};

/** What the tracker needs to know of a configured VM. */
export interface VmMeta {
  name: string;
  /** Flavor and free labels, copied into each record. */
  labels: Record<string, string>;
}

export interface MigrationTrackerOptions {
  clock: Clock;
  logger: Logger;
  store: MigrationStore;
  vms?: Iterable<VmMeta>;
  timeouts?: Partial<TrackerTimeouts>;
  /** State from the state file: migrations under way when the exporter stopped continue. */
  restore?: TrackerSnapshot;
}

export interface TrackerEvents {
  started: [ActiveMigration];
  phase: [ActiveMigration];
  closed: [MigrationRecord];
  /**
   * The persisted state changed (the state file should be written). Urgent: a migration opened or
   * closed, or a monitor was seen idle for the first time, which a restart must know even after a
   * kill -9 right away (else it cannot tell a migration it missed from an old one).
   */
  changed: [urgent: boolean];
}

export class MigrationTracker extends EventEmitter<TrackerEvents> {
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly store: MigrationStore;
  private readonly timeouts: TrackerTimeouts;
  private readonly machines = new Map<string, VmMachine>();
  private labels = new Map<string, Record<string, string>>();
  /** Unknown statuses already logged, per VM: warn once, not on every poll. */
  private readonly unknownLogged = new Map<string, Set<string>>();
  private stopTicking: (() => void) | null = null;

  constructor(options: MigrationTrackerOptions) {
    super();
    this.clock = options.clock;
    this.logger = options.logger;
    this.store = options.store;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    if (options.vms) this.setVms(options.vms);
    if (options.restore) this.restore(options.restore);
  }

  setVms(vms: Iterable<VmMeta>): void {
    this.labels = new Map([...vms].map((vm) => [vm.name, { ...vm.labels }]));
  }

  observe(observation: Observation): void {
    const machine = this.machineOf(observation.ref.vm);
    this.run(machine, () => machine.observe(observation, this.clock.wallMs()), observation);
  }

  /** Closes migrations whose deadline has passed. */
  tick(): void {
    const now = this.clock.wallMs();
    for (const machine of this.machines.values()) this.run(machine, () => machine.tick(now));
  }

  /** Calls tick() every `intervalMs` until stop(); the timer does not keep the process alive. */
  start(intervalMs = 1000): void {
    this.stop();
    this.stopTicking = every(intervalMs, () => this.tick());
  }

  stop(): void {
    this.stopTicking?.();
    this.stopTicking = null;
  }

  activeMigrations(): ActiveMigration[] {
    const active: ActiveMigration[] = [];
    for (const machine of this.machines.values()) {
      const open = machine.state.open;
      if (open) active.push(this.toActive(machine.vm, open));
    }
    return active;
  }

  /** The tracker's state as plain data, for the state file. */
  snapshot(): TrackerSnapshot {
    const vms: TrackerSnapshot['vms'] = {};
    for (const [vm, machine] of this.machines) vms[vm] = structuredClone(machine.state);
    return { vms };
  }

  private restore(snapshot: TrackerSnapshot): void {
    for (const [vm, saved] of Object.entries(snapshot.vms)) {
      const state = forgetMonotonic(structuredClone(saved));
      if (state.open) {
        state.open.resumedAfterRestart = true;
        this.logger.info({ vm, id: state.open.id, phase: state.open.phase }, 'continuing a migration that was under way before the restart');
      }
      this.machines.set(vm, new VmMachine(vm, state, this.timeouts));
    }
  }

  private machineOf(vm: string): VmMachine {
    let machine = this.machines.get(vm);
    if (!machine) {
      machine = new VmMachine(vm, emptyVmState(), this.timeouts);
      this.machines.set(vm, machine);
    }
    return machine;
  }

  /**
   * Runs one step of a VM's machine and acts on its effects. A bug in the machine must not stop
   * the exporter: it is logged with the observation and the VM's state is left as it was.
   */
  private run(machine: VmMachine, step: () => MachineEffect[], observation?: Observation): void {
    // The state is small; comparing its JSON tells whether the state file needs writing.
    const before = JSON.stringify(machine.state);
    let effects: MachineEffect[];
    try {
      effects = step();
    } catch (err) {
      this.logger.error({ vm: machine.vm, err: errorMessage(err), observation }, 'migration tracker failed on an observation');
      Object.assign(machine.state, JSON.parse(before) as VmState);
      return;
    }
    for (const effect of effects) this.apply(machine.vm, effect);
    if (JSON.stringify(machine.state) !== before) this.emit('changed', isUrgent(JSON.parse(before) as VmState, machine.state));
  }

  private apply(vm: string, effect: MachineEffect): void {
    switch (effect.kind) {
      case 'started': {
        const active = this.toActive(vm, effect.migration);
        this.logger.info({ vm, id: active.id, source: active.source.host, destination: active.destination?.host ?? null }, 'migration started');
        this.emit('started', active);
        return;
      }
      case 'phase':
        this.emit('phase', this.toActive(vm, effect.migration, effect.phase));
        return;
      case 'closed': {
        const record = buildRecord(vm, this.labelsOf(vm), effect.migration, effect.closing);
        if (!this.store.add(record)) {
          this.logger.warn({ vm, id: record.id }, 'migration record already stored; not counted again');
          return;
        }
        this.logger.info(
          { vm, id: record.id, result: record.result, mode: record.mode, seconds: record.durationSeconds?.value ?? null, errorDesc: record.qemu.errorDesc },
          'migration ended',
        );
        this.emit('closed', record);
        return;
      }
      case 'unknown-status': {
        let seen = this.unknownLogged.get(vm);
        if (!seen) this.unknownLogged.set(vm, (seen = new Set()));
        if (seen.has(effect.status)) return;
        seen.add(effect.status);
        this.logger.warn({ vm, monitor: effect.monitor, status: effect.status }, 'unknown QEMU migration status; recorded, not interpreted');
        return;
      }
      case 'notice':
        this.logger.warn({ vm, id: effect.id }, effect.message);
        return;
    }
  }

  private labelsOf(vm: string): Record<string, string> {
    return this.labels.get(vm) ?? {};
  }

  private toActive(vm: string, m: OpenMigration, phase: MigrationPhase = m.phase): ActiveMigration {
    return {
      id: m.id,
      vm,
      labels: { ...this.labelsOf(vm) },
      phase,
      status: m.source.status,
      source: { host: m.source.host, monitor: m.source.monitor },
      destination: m.destination ? { host: m.destination.host, monitor: m.destination.monitor } : null,
      startedAtMs: m.startedAt.value,
      postcopyAtMs: m.postcopyAt?.at ?? null,
      ram: m.latestFull?.info.ram ? { ...m.latestFull.info.ram } : null,
      ramAtMs: m.latestFull?.at ?? null,
      resumedAfterRestart: m.resumedAfterRestart,
    };
  }
}

/** Monotonic readings of another process are meaningless here; durations fall back to the wall clock. */
function forgetMonotonic(state: VmState): VmState {
  for (const view of Object.values(state.monitors)) {
    if (!view.pending) continue;
    view.pending.start.mono = null;
    if (view.pending.timed) view.pending.timed.mono = null;
  }
  const m = state.open;
  if (m) {
    m.startMono = null;
    for (const o of [m.outcome, m.destinationOutcome]) if (o) o.mono = null;
    for (const t of [m.source, m.destination]) if (t?.gone) t.gone.mono = null;
  }
  return state;
}

/** A change a restart must not miss: the open migration came or went, or a monitor's idle reply was first seen. */
function isUrgent(before: VmState, after: VmState): boolean {
  if ((before.open?.id ?? null) !== (after.open?.id ?? null)) return true;
  return Object.values(after.monitors).some((view) => view.idleFingerprint !== null && (before.monitors[view.monitor]?.idleFingerprint ?? null) === null);
}
