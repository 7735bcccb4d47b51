/** The shape of a MigrationRecord, checked when records are read back from the state file. */
import { z } from 'zod';
import { FRAME_KINDS, MIGRATION_MODES, OUTAGE_CAUSES, type MigrationRecord } from './record.js';
import { MIGRATION_RESULTS } from '../qemu/status.js';

const figure = z.object({ value: z.number(), evidence: z.string() });
const endpoint = z.object({ host: z.string(), monitor: z.string() });
const cause = z.object({
  cause: z.enum(OUTAGE_CAUSES),
  reason: z.string(),
  announcementAfterResumeMs: z.number().nullable(),
  announcementRounds: z.number(),
  firstFrameAt: z.number().nullable(),
  firstFrameKind: z.enum(FRAME_KINDS).nullable(),
  secondsAfterFirstFrame: z.number().nullable(),
  postcopyBlocktimeMs: z.number().nullable(),
  rttRise: z.number().nullable(),
  evidence: z.string(),
});
const outage = z.object({ startAt: z.number(), endAt: z.number().nullable(), seconds: z.number(), lostProbes: z.number(), cause: cause.optional() });
const frames = z.object({
  host: z.string(),
  device: z.string(),
  mac: z.string(),
  startedAt: z.number(),
  stoppedAt: z.number().nullable(),
  announcements: z.array(z.object({ at: z.number(), kind: z.enum(['rarp', 'garp']) })),
  announcementRounds: z.number(),
  firstGuestFrameAt: z.number().nullable(),
  firstDeliveredAt: z.number().nullable().optional(),
  deliveries: z.array(z.object({ from: z.number(), to: z.number() })).optional(),
  framesSeen: z.number(),
  truncated: z.boolean(),
  error: z.string().nullable(),
  evidence: z.string(),
});
const phase = z.object({
  sent: z.number(),
  lost: z.number(),
  rttMeanMs: z.number().nullable(),
  rttP99Ms: z.number().nullable(),
  rttMaxMs: z.number().nullable(),
});
const ping = z.object({
  target: z.string(),
  periodMs: z.number(),
  switchoverBlackout: outage.nullable(),
  postcopyOutages: z.array(outage),
  postcopyOutageLongestSeconds: z.number(),
  postcopyOutageTotalSeconds: z.number(),
  phases: z.object({ before: phase, precopy: phase, postcopy: phase.nullable(), after: phase }),
  evidence: z.string(),
});

export const novaFiguresSchema = z.object({
  instanceUuid: z.string(),
  requestId: z.string().nullable(),
  sourceHost: z.string().nullable(),
  destinationHost: z.string().nullable(),
  destinationName: z.string().nullable(),
  startedAt: figure.nullable(),
  preLiveMigrationSeconds: figure.nullable(),
  postcopyAt: figure.nullable(),
  completedAt: figure.nullable(),
  resumedAt: figure.nullable(),
  endedAt: figure.nullable(),
  result: z.enum(MIGRATION_RESULTS).nullable(),
  resultEvidence: z.string().nullable(),
  failure: z.string().nullable(),
  progress: z
    .object({
      at: figure,
      memoryProcessed: z.number(),
      memoryRemaining: z.number(),
      memoryTotal: z.number(),
      diskProcessed: z.number().nullable(),
      diskRemaining: z.number().nullable(),
      diskTotal: z.number().nullable(),
    })
    .nullable(),
  memoryProcessedBeforePostcopy: z.number().nullable(),
  downtimeSteps: z.array(z.object({ downtimeMs: z.number(), afterSeconds: z.number(), at: z.number() })),
  completionTimeoutAt: figure.nullable(),
  destinationQemuStartedAt: figure.nullable(),
  sourceQemuStoppedAt: figure.nullable(),
});

const interfaceFigures = z.object({
  sourceTransmitBytes: figure.nullable(),
  destinationReceiveBytes: figure.nullable(),
  destinationTransmitBytes: figure.nullable(),
  sourceReceiveBytes: figure.nullable(),
  throughputBytesPerSecond: figure.nullable(),
  postcopyInferredAt: figure.nullable(),
});

export const migrationRecordSchema: z.ZodType<MigrationRecord> = z.object({
  id: z.string().min(1),
  vm: z.string().min(1),
  labels: z.record(z.string(), z.string()),
  source: endpoint,
  destination: endpoint.nullable(),
  result: z.enum(MIGRATION_RESULTS).nullable(),
  resultEvidence: z.string().optional(),
  mode: z.enum(MIGRATION_MODES),
  startedAt: figure,
  postcopyAt: figure.nullable(),
  stoppedAt: figure.nullable(),
  resumedAt: figure.nullable(),
  endedAt: figure.nullable(),
  durationSeconds: figure.nullable(),
  bytes: z.object({
    transferred: figure.nullable(),
    precopy: figure.nullable(),
    postcopy: figure.nullable(),
    downtime: figure.nullable(),
    // Records written before block migration figures existed have none.
    disk: figure.nullable().default(null),
  }),
  qemu: z.object({
    downtimeMs: figure.nullable(),
    setupTimeMs: figure.nullable(),
    totalTimeMs: figure.nullable(),
    postcopyRequests: figure.nullable(),
    passes: figure.nullable(),
    passesBeforePostcopy: figure.nullable(),
    postcopyBlocktimeMs: figure.nullable().optional(),
    errorDesc: z.string().nullable(),
  }),
  statuses: z.array(z.object({ status: z.string(), at: z.number(), side: z.enum(['source', 'destination']) })),
  resumedAfterRestart: z.boolean(),
  ping: ping.nullable().optional(),
  nova: novaFiguresSchema.nullable().optional(),
  interfaces: interfaceFigures.nullable().optional(),
  frames: frames.nullable().optional(),
});
