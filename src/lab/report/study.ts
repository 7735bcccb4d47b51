/**
 * The published study's figures (../shared/reference/hybrid-migration-figures.md), printed beside
 * the lab's measurements. Reference data, never used to compute a lab figure.
 */

export const STUDY_SOURCE = 'OpenStack Icehouse hybrid live migration study (QEMU 2.1.5 / libvirt 1.2.11 post-copy branches, 1 Gb/s)';

export interface StudyFlavor {
  flavor: 's' | 'm' | 'l' | 'xl';
  vcpu: number;
  ramGB: number;
  timeS: number;
  downtimeS: number;
  transferredMB: number;
}

/** Tables 1 and 2: unloaded VMs. */
export const STUDY_FLAVORS: readonly StudyFlavor[] = [
  { flavor: 's', vcpu: 1, ramGB: 2, timeS: 5.4, downtimeS: 0.2, transferredMB: 385 },
  { flavor: 'm', vcpu: 2, ramGB: 4, timeS: 7.0, downtimeS: 0.2, transferredMB: 435 },
  { flavor: 'l', vcpu: 4, ramGB: 8, timeS: 8.7, downtimeS: 0.2, transferredMB: 530 },
  { flavor: 'xl', vcpu: 8, ramGB: 16, timeS: 11.3, downtimeS: 0.3, transferredMB: 681 },
];

export interface StudyStressPoint {
  stressedMB: number;
  timeS: number;
  transferredMB: number;
}

/** Table 3: x-large VM, stressed memory in 256 MB steps. */
export const STUDY_TABLE3: readonly StudyStressPoint[] = [
  [256, 16.4, 1202], [512, 21.3, 1722], [768, 25.9, 2202], [1024, 30.0, 2649],
  [1280, 34.7, 3108], [1536, 39.7, 3696], [1792, 44.0, 4208], [2048, 48.7, 4713],
].map(([stressedMB, timeS, transferredMB]) => ({ stressedMB: stressedMB as number, timeS: timeS as number, transferredMB: transferredMB as number }));

/** Table 4: x-large VM, stressed memory in 1024 MB steps. */
export const STUDY_TABLE4: readonly StudyStressPoint[] = [
  [1024, 30.7, 2725], [2048, 49.5, 4773], [3072, 69.0, 6728], [4096, 86.1, 8760],
  [5120, 101.4, 10500], [6144, 120.1, 12550], [7168, 138.0, 14600], [8192, 157.2, 16125],
].map(([stressedMB, timeS, transferredMB]) => ({ stressedMB: stressedMB as number, timeS: timeS as number, transferredMB: transferredMB as number }));
