import type { MigrationRecord } from '../../records/record.js';
import type { LabVmSpec } from '../engine.js';
import type { LabMeasurement } from '../report/results.js';

/**
 * The lab's only source of figures: the exporter's records, read from its API
 * (/api/v1/migrations) as any client would.
 */

export interface ExporterRecords {
  readonly url: string;
  /** The first closed record of `vm` that started at or after `sinceMs` (and has its ping figures, when `withPing`). */
  waitForRecord(vm: string, sinceMs: number, options: { withPing: boolean; withNova: boolean; timeoutMs: number; signal?: AbortSignal }): Promise<MigrationRecord>;
  /** Scrapes /metrics every 100 ms for one series until stop(); resolves with the largest value seen (null: never there). */
  watchSeries(series: string): { stop(): Promise<number | null> };
}

const NOVA_WAIT_MS = 10_000;

export function httpRecords(url: string): ExporterRecords {
  return {
    url,
    async waitForRecord(vm, sinceMs, { withPing, withNova, timeoutMs, signal }) {
      const deadline = Date.now() + timeoutMs;
      let closedAt: number | undefined;
      for (;;) {
        const response = await fetch(`${url}/api/v1/migrations?vm=${encodeURIComponent(vm)}&limit=50`);
        if (response.ok) {
          const body = (await response.json()) as { data: MigrationRecord[] };
          const found = body.data.find((r) => r.startedAt.value >= sinceMs - 1000 && r.result !== null && (!withPing || r.ping));
          // nova's figures join the record once nova's last line is read; not waited for forever.
          if (found && (!withNova || found.nova || Date.now() - (closedAt ??= Date.now()) > NOVA_WAIT_MS)) return found;
        }
        if (Date.now() > deadline) throw new Error(`the exporter has no closed record of ${vm} since ${new Date(sinceMs).toISOString()} after ${timeoutMs} ms`);
        if (signal?.aborted) throw new Error(`stopped while waiting for the record of ${vm}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    },
    watchSeries(series) {
      let max: number | null = null;
      let stopped = false;
      const loop = (async () => {
        while (!stopped) {
          const text = await fetch(`${url}/metrics`).then((r) => r.text()).catch(() => '');
          const value = seriesValue(text, series);
          if (value !== undefined) max = max === null ? value : Math.max(max, value);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      })();
      return {
        stop: async () => {
          stopped = true;
          await loop;
          return max;
        },
      };
    },
  };
}

/** The value of one series (name and labels as the exporter writes them) in a scrape. Pure. */
export function seriesValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** A record (plus what the lab set up) as one row of the report. Pure. */
export function toMeasurement(record: MigrationRecord, spec: LabVmSpec, step: string, baseMiB: number, livePostcopyOutageMaxSeconds: number | null = null): LabMeasurement {
  const nova = record.nova ?? null;
  return {
    step,
    vm: record.vm,
    flavor: spec.flavor,
    memoryMiB: spec.memoryMiB,
    allocatedMiB: baseMiB + spec.fillMiB + spec.stressedMiB,
    stressedMiB: spec.stressedMiB,
    recordId: record.id,
    result: record.result,
    mode: record.mode,
    durationSeconds: record.durationSeconds?.value ?? null,
    transferredBytes: record.bytes.transferred?.value ?? null,
    precopyBytes: record.bytes.precopy?.value ?? null,
    postcopyBytes: record.bytes.postcopy?.value ?? null,
    qemuDowntimeMs: record.qemu.downtimeMs?.value ?? null,
    blackoutSeconds: record.ping ? (record.ping.switchoverBlackout?.seconds ?? 0) : null,
    postcopyOutageSeconds: record.ping ? record.ping.postcopyOutageTotalSeconds : null,
    livePostcopyOutageMaxSeconds,
    interfaceBytes: record.interfaces?.sourceTransmitBytes?.value ?? null,
    novaSeconds: nova?.startedAt && nova.endedAt ? (nova.endedAt.value - nova.startedAt.value) / 1000 : null,
    novaResult: nova?.result ?? null,
    durationEvidence: record.durationSeconds?.evidence ?? null,
    transferredEvidence: record.bytes.transferred?.evidence ?? null,
    ...(record.ping
      ? {
          blackoutCause: record.ping.switchoverBlackout?.cause?.cause ?? null,
          postcopyOutageCauses: record.ping.postcopyOutages.map((o) => ({ cause: o.cause?.cause ?? 'none', seconds: o.seconds })),
        }
      : {}),
  };
}
