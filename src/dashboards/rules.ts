/**
 * Names of the recording rules in prometheus/rules/livemig-recording.yml that the dashboards
 * query (a unit test checks that the rules file records each of them).
 */
export const RULES = {
  /** sum by (job, le, flavor, result, mode) of the migration histograms' bucket rates over 5m. */
  durationRate: 'flavor:livemig_migration_duration_seconds_bucket:rate5m',
  qemuDowntimeRate: 'flavor:livemig_migration_qemu_downtime_seconds_bucket:rate5m',
  blackoutRate: 'flavor:livemig_migration_blackout_seconds_bucket:rate5m',
  postcopyOutageRate: 'flavor:livemig_migration_postcopy_outage_seconds_bucket:rate5m',
  /** One series per VM: max by (vm, flavor, stressed_mib) of livemig_vm_info across exporters. */
  vmInfo: 'vm:livemig_vm_info:max',
  /**
   * The VM's last migration's figure, one series per VM, with the VM's flavor and stressed_mib
   * (from livemig_vm_info) and the migration's result and mode (from livemig_last_migration_info).
   */
  lastDuration: 'vm:livemig_last_migration_duration_seconds:with_info',
  lastTransferred: 'vm:livemig_last_migration_transferred_bytes:with_info',
  lastQemuDowntime: 'vm:livemig_last_migration_qemu_downtime_seconds:with_info',
  lastBlackout: 'vm:livemig_last_migration_blackout_seconds:with_info',
  lastPostcopyOutage: 'vm:livemig_last_migration_postcopy_outage_seconds:with_info',
} as const;

/** The free label (on livemig_vm_info) that carries the memory the guest dirtied, in MiB. */
export const STRESSED_LABEL = 'stressed_mib';
