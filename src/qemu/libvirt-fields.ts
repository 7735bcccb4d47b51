/**
 * libvirt's names for QEMU's migration figures: virDomainGetJobStats fields
 * (VIR_DOMAIN_JOB_* in include/libvirt/libvirt-domain.h) beside query-migrate's. libvirt reads
 * them from QEMU's own query-migrate, so each is the same figure under another name; only
 * memory_bps differs in unit (bytes/s where QEMU's mbps is megabits/s).
 */
import type { RamField } from './types.js';

export const LIBVIRT_RAM_FIELDS: Partial<Record<RamField, string>> = {
  transferred: 'memory_processed',
  remaining: 'memory_remaining',
  total: 'memory_total',
  duplicate: 'memory_constant',
  normal: 'memory_normal',
  'normal-bytes': 'memory_normal_bytes',
  'dirty-pages-rate': 'memory_dirty_rate',
  mbps: 'memory_bps',
  'dirty-sync-count': 'memory_iteration',
  'postcopy-requests': 'memory_postcopy_requests',
  'page-size': 'memory_page_size',
};

/** query-migrate's top-level figures under libvirt's names. */
export const LIBVIRT_TIME_FIELDS = {
  'total-time': 'time_elapsed',
  'setup-time': 'setup_time',
  downtime: 'downtime',
  'expected-downtime': 'downtime',
} as const;

/** Evidence of one figure of a reply: QMP's field name, or libvirt's for libvirt's job statistics. */
export function figureEvidence(origin: 'libvirt' | undefined, field: string, ram: boolean): string {
  if (origin === 'libvirt') {
    const name = ram ? LIBVIRT_RAM_FIELDS[field as RamField] : LIBVIRT_TIME_FIELDS[field as keyof typeof LIBVIRT_TIME_FIELDS];
    return `libvirt:source job stats ${name ?? field}`;
  }
  return `qmp:source query-migrate ${ram ? 'ram.' : ''}${field}`;
}
