/** Names shared by the log source and the config schema (kept apart so config loading stays light). */
export const LOG_KINDS = ['nova-compute', 'libvirt-qemu'] as const;
export type LogKind = (typeof LOG_KINDS)[number];

export interface LogFileConfig {
  /** Host name as in `hosts` (an undeclared name is this machine; none configured: `local`). */
  host: string;
  path: string;
  kind: LogKind;
  /** IANA zone or offset of the log's wall-clock stamps (nova-compute only). */
  timezone: string;
}
