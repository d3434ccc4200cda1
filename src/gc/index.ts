import type { Logger } from 'pino';
import { durationMs, type BerthConfig } from '../config/schema.js';
import type { PolicyHooks } from '../core/policies.js';
import type { BlobStore } from '../core/ports.js';
import type { LeaseStore } from '../jobs/leases.js';
import type { Job } from '../jobs/scheduler.js';
import { GarbageCollector, type GcOptions } from './collector.js';
import type { GcMetadata } from './ports.js';

export { GarbageCollector } from './collector.js';
export type { GcReport } from './report.js';

/** The `gc:` block of the configuration as collector options. */
export function gcOptions(config: BerthConfig): GcOptions {
  return {
    gracePeriodMs: durationMs(config.gc.graceperiod),
    untagged: config.gc.untagged,
    batchSize: config.gc.batchsize,
    leaseTtlMs: durationMs(config.gc.leasettl),
  };
}

export interface GcComponents {
  collector: GarbageCollector;
}

/** Builds the collector on the ports the composition root gives it (server, CLI and tests share this wiring). */
export function createGc(
  config: BerthConfig,
  blobs: BlobStore,
  store: GcMetadata,
  leases: LeaseStore,
  logger: Logger,
  prepare?: () => Promise<unknown>,
  policies?: Pick<PolicyHooks, 'removed'>,
): GcComponents {
  return { collector: new GarbageCollector(blobs, store, leases, gcOptions(config), logger, prepare, policies) };
}

/** The scheduled collection (gc.schedule). The collector takes the `gc` lease itself, shared with `berth gc` and the API. */
export function gcJob(collector: GarbageCollector, cron: string): Job {
  return {
    name: 'gc',
    schedule: { cron },
    scope: 'process',
    async run() {
      const report = await collector.run();
      if (!report.ran) return { idle: true, summary: { heldBy: report.heldBy } };
      if (!report.completed) throw new Error(report.error ?? 'gc stopped early');
      return { summary: { ...report.counts, durationMs: report.durationMs } };
    },
  };
}
