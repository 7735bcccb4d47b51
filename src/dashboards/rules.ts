/**
 * Names of the recording rules in prometheus/rules/livemig-recording.yml that the dashboards
 * query (a unit test checks that the rules file records each of them).
 */
export const RECORDING_RULES_FILE = 'prometheus/rules/livemig-recording.yml';

export const RULES = {
  /** sum by (job, le, flavor, result, mode) of the migration histograms' bucket rates over 5m. */
  durationRate: 'flavor:livemig_migration_duration_seconds_bucket:rate5m',
  qemuDowntimeRate: 'flavor:livemig_migration_qemu_downtime_seconds_bucket:rate5m',
  blackoutRate: 'flavor:livemig_migration_blackout_seconds_bucket:rate5m',
  postcopyOutageRate: 'flavor:livemig_migration_postcopy_outage_seconds_bucket:rate5m',
  /** One series per VM: max by (vm, flavor, stressed_mib, stress_step_mib) of livemig_vm_info across exporters. */
  vmInfo: 'vm:livemig_vm_info:max',
  /**
   * The VM's last migration's figure, one series per VM, with the VM's flavor, stressed_mib and stress_step_mib
   * (from livemig_vm_info) and the migration's result and mode (from livemig_last_migration_info).
   */
  lastDuration: 'vm:livemig_last_migration_duration_seconds:with_info',
  lastTransferred: 'vm:livemig_last_migration_transferred_bytes:with_info',
  lastQemuDowntime: 'vm:livemig_last_migration_qemu_downtime_seconds:with_info',
  lastBlackout: 'vm:livemig_last_migration_blackout_seconds:with_info',
  lastPostcopyOutage: 'vm:livemig_last_migration_postcopy_outage_seconds:with_info',
  /**
   * Tables 3-4 as points, labelled origin ("measured": a VM of a stress sweep whose last migration
   * completed; "study": a published step, from livemig-study-reference.yml), flavor,
   * stressed_mib, stress_step_mib (and study_table for the study): x (stressed bytes) and the two ys.
   */
  stressedPoint: 'point:livemig_stressed_bytes:sweep',
  durationPoint: 'point:livemig_migration_duration_seconds:sweep',
  transferredPoint: 'point:livemig_migration_transferred_bytes:sweep',
  /** The sweep's least-squares line at each point's x. */
  durationFitted: 'point:livemig_migration_duration_seconds:fitted',
  transferredFitted: 'point:livemig_migration_transferred_bytes:fitted',
  /** Per sweep (origin, flavor, stress_step_mib, study_table): its points, and each fit's slope, intercept and R². */
  sweepPoints: 'sweep:livemig_stressed_bytes:count',
  durationSlope: 'sweep:livemig_migration_duration_seconds:slope',
  durationIntercept: 'sweep:livemig_migration_duration_seconds:intercept',
  durationRSquared: 'sweep:livemig_migration_duration_seconds:r_squared',
  transferredSlope: 'sweep:livemig_migration_transferred_bytes:slope',
  transferredIntercept: 'sweep:livemig_migration_transferred_bytes:intercept',
  transferredRSquared: 'sweep:livemig_migration_transferred_bytes:r_squared',
} as const;

/** The free label (on livemig_vm_info) that carries the memory the guest dirtied, in MiB. */
export const STRESSED_LABEL = 'stressed_mib';
/**
 * The free label that carries the step of the VM's stress sweep, in MiB: what tells the study's
 * Table 3 (256 MB steps) from its Table 4 (1024 MB steps), which share 1024 and 2048 MB.
 */
export const STEP_LABEL = 'stress_step_mib';
/** The labels a sweep's fit is grouped by. */
export const SWEEP_LABELS = ['origin', 'flavor', STEP_LABEL, 'study_table'] as const;
