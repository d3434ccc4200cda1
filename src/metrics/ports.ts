/**
 * The metadata port of metrics: counts a scrape reads (through a cache, at most once per
 * metrics.refresh), each one grouped query over an index, never a walk of the registry.
 * Implemented once for SQLite, PostgreSQL and MySQL in src/metadata/metrics-store.ts.
 */

export interface ProjectInventory {
  project: string;
  repositories: number;
  /** Manifests stored (images, indexes, signatures, SBOMs…): Harbor's artifacts. */
  artifacts: number;
}

export interface MetricsQueries {
  /** Repositories and artifacts per project (first path component of the repository name). */
  projects(): Promise<ProjectInventory[]>;
  /** Physical storage: every stored blob once (the `blobs` table, deduplicated by digest). */
  stored(): Promise<{ blobs: number; bytes: number }>;
}

/** A pool's connections as its driver counts them. */
export interface PoolUsage {
  total: number;
  idle: number;
  /** Queries waiting for a connection. */
  waiting: number;
}

/**
 * What the metadata adapters report when metrics are on: every statement's latency (Kysely's
 * query log, including the precompiled pull-path reads) and, on PostgreSQL, the pool's counters.
 */
export interface MetadataObserver {
  /** `statement`: select, insert, update, delete or other; `failed` when the database refused it. */
  query(statement: string, seconds: number, failed: boolean): void;
  /** Hands over the pool's counters, read at scrape time. */
  pool(read: () => PoolUsage): void;
}
