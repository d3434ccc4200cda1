import type { Logger } from 'pino';
import { durationMs, type BerthConfig } from '../config/schema.js';
import type { BlobStore } from '../core/ports.js';
import type { LeaseStore } from '../jobs/leases.js';
import { GarbageCollector, type GcOptions } from './collector.js';
import type { GcMetadata, StorageUsageQueries } from './ports.js';

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
  /** Storage accounting (GET /api/v1/storage). */
  usage: StorageUsageQueries;
}

/** Builds the collector on the ports the composition root gives it (server, CLI and tests share this wiring). */
export function createGc(config: BerthConfig, blobs: BlobStore, store: GcMetadata & StorageUsageQueries, leases: LeaseStore, logger: Logger): GcComponents {
  return { collector: new GarbageCollector(blobs, store, leases, gcOptions(config), logger), usage: store };
}
