/**
 * The metadata port of storage quotas. The policy (src/quotas/policy.ts) decides; the adapter
 * (src/metadata/quota-store.ts) holds the SQL, written once for SQLite, PostgreSQL and MySQL.
 *
 * Counting rule: a project uses the bytes of every distinct digest that one of its
 * repositories links (an uploaded or mounted blob) or stores as a manifest. A digest counts
 * once per project however many repositories or manifests refer to it; the same digest in two
 * projects counts in each (as Harbor counts).
 */

import type { MetadataTx } from '../core/ports.js';

/** A project's quota: the bytes it uses and its limit (null: unlimited). */
export interface QuotaUsage {
  project: string;
  used: number;
  limit: number | null;
}

/** Quota queries inside a metadata transaction (core's, or GC's). */
export interface QuotaTxQueries {
  /** The project's usage row; `lock` locks it for update until the transaction ends (created if absent). */
  usage(project: string, lock: boolean): Promise<QuotaUsage>;
  /** The size of a stored blob (null: no such blob). */
  blobSize(digest: string): Promise<number | null>;
  /** True when `digest` already counts in the project's usage. */
  counts(project: string, digest: string): Promise<boolean>;
  /** Counts `digest` (of `size` bytes) in the project unless it already counts; the bytes added (0 or `size`). */
  add(project: string, digest: string, size: number): Promise<number>;
  /**
   * Stops counting `digest` once no repository of the project links or stores it any more
   * (call after removing it); the bytes freed (0 while it is still there).
   */
  release(project: string, digest: string): Promise<number>;
}

export interface QuotaStore {
  within(tx: MetadataTx): QuotaTxQueries;
  /** A project's usage (0 used, no limit when it has no row). */
  usage(project: string): Promise<QuotaUsage>;
  /** Every project with content or a limit, by name. */
  list(): Promise<QuotaUsage[]>;
  /** Sets (null: removes) a project's limit; returns its usage. */
  setLimit(project: string, limit: number | null): Promise<QuotaUsage>;
  /** Every project's usage computed from scratch from the registry's tables (writes nothing). */
  recount(): Promise<QuotaUsage[]>;
  /** Replaces the kept usage by a recount (limits stay); returns the projects whose usage changed. */
  rebuild(): Promise<{ project: string; before: number; after: number }[]>;
}
