import type { Logger } from 'pino';
import { durationMs, type BerthConfig } from '../config/schema.js';
import type { BlobStore } from '../core/ports.js';
import { KyselyGcStore } from '../metadata/gc-store.js';
import type { KyselyMetadataStore } from '../metadata/kysely-store.js';
import { GarbageCollector, type GcOptions } from './collector.js';

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
  /** Leases and storage accounting live on the same tables' adapter. */
  store: KyselyGcStore;
}

/** Builds the collector on the registry's own stores (server, CLI and tests share this wiring). */
export function createGc(config: BerthConfig, blobs: BlobStore, metadata: KyselyMetadataStore, logger: Logger): GcComponents {
  const store = new KyselyGcStore(metadata.db, metadata.dialect);
  return { collector: new GarbageCollector(blobs, store, store, gcOptions(config), logger), store };
}
