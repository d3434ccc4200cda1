/**
 * The narrow metadata port garbage collection needs. The collector (src/gc) decides what
 * is garbage from the facts these queries return; the adapter (src/metadata/gc-store.ts)
 * holds all the SQL. Every `lock…` method locks the row it reads (FOR UPDATE on
 * PostgreSQL; SQLite transactions are serialised) so a concurrent push either commits
 * before the check — and the check sees it — or waits until the deletion is committed.
 */

import type { MetadataTx } from '../core/ports.js';

export type CandidateKind = 'manifest' | 'link' | 'blob';

/** Something that may have become garbage, as the review-queue consumer records it. */
export interface ReviewRequest {
  kind: CandidateKind;
  /** 0 for kind 'blob' (blobs are global). */
  repositoryId: number;
  digest: string;
}

/** GC's queries inside another transaction (the event consumer's, or a blob commit's). */
export interface GcTxQueries {
  /** Adds review-queue rows (or moves existing ones to `queuedAt`). */
  enqueue(requests: ReviewRequest[], queuedAt: number): Promise<void>;
  /** Manifests of the repository whose subject is `digest`. */
  referrersOf(repositoryId: number, digest: string): Promise<string[]>;
  /**
   * True when a byte deletion of `digest` may have run concurrently with an upload whose last
   * append was at `lastAppendAt` (unfinished, or finished after it): the upload's bytes may be gone.
   */
  deletionOverlaps(digest: string, lastAppendAt: number): Promise<boolean>;
}

/** A row of the review queue: something that may have become garbage. */
export interface Candidate {
  kind: CandidateKind;
  /** 0 for kind 'blob' (blobs are global). */
  repositoryId: number;
  /** Repository name ('' for kind 'blob'). */
  repository: string;
  digest: string;
  queuedAt: number;
}

export interface ManifestFacts {
  createdAt: number;
  tagged: boolean;
  /** Referenced as a child by another manifest (an index) in the same repository. */
  childOfManifest: boolean;
  subjectDigest: string | null;
  /** The manifest's `subject` is stored in the same repository. */
  subjectExists: boolean;
  /**
   * Until when tag history keeps it for a restore (a tag pointed to it within
   * `tags.history.retention`, with `tags.history.protectgc` on); null: history does not keep it.
   */
  retainedUntil: number | null;
}

export interface LinkFacts {
  /** Time of the last upload or mount into the repository (refreshed on every link). */
  createdAt: number;
  /** Referenced by a manifest of the repository. */
  referenced: boolean;
}

export interface BlobFacts {
  size: number;
  /** Linked into at least one repository. */
  linked: boolean;
}

export interface BlobDeletion {
  digest: string;
  size: number;
}

/** Review-queue rows not due yet: still inside the grace period. */
export interface WaitingCandidates {
  count: number;
  /** Smallest and largest `queued_at` among them (null when there are none). */
  oldestQueuedAt: number | null;
  newestQueuedAt: number | null;
}

/** Queries run inside one metadata transaction (or, for a dry run, one rolled-back transaction). */
export interface GcQueries {
  /** The same transaction as core's MetadataTx: removal listeners (quota usage) record deletions in it. */
  readonly tx: MetadataTx;
  /** Queue rows with `queued_at <= cutoff`, oldest first. */
  dueCandidates(cutoff: number, limit: number): Promise<Candidate[]>;
  /** Removes the candidate's queue row. */
  dequeue(candidate: Candidate): Promise<void>;
  /** Re-queues the candidate to be reviewed again once `queuedAt` is past the grace period. */
  requeue(candidate: Candidate, queuedAt: number): Promise<void>;
  /** Queue rows with `queued_at > cutoff`: what a run leaves for later (for its report). */
  waiting(cutoff: number): Promise<WaitingCandidates>;

  lockManifest(repositoryId: number, digest: string): Promise<ManifestFacts | null>;
  /** Deletes the manifest and enqueues (at `queuedAt`) its blobs, child manifests and referrers. */
  deleteManifest(repositoryId: number, digest: string, queuedAt: number): Promise<void>;

  lockLink(repositoryId: number, digest: string): Promise<LinkFacts | null>;
  /** Removes the link and enqueues the blob (at `queuedAt`). */
  deleteLink(repositoryId: number, digest: string, queuedAt: number): Promise<void>;

  lockBlob(digest: string): Promise<BlobFacts | null>;
  /** Deletes the `blobs` row and journals the byte deletion as pending. */
  deleteBlobRow(digest: string, size: number, now: number): Promise<void>;
}

export interface GcMetadata {
  /** GC's queries bound to a transaction of the same metadata database. */
  within(tx: MetadataTx): GcTxQueries;
  /** Review a whole batch in one transaction (true where writers are serialised anyway, e.g. SQLite). */
  readonly batchTransactions: boolean;
  /** Runs `work` in one transaction (a write transaction from its first statement on SQLite). */
  transaction<T>(work: (queries: GcQueries) => Promise<T>): Promise<T>;
  /** Runs `work` in one transaction that is always rolled back (dry runs). */
  rolledBack<T>(work: (queries: GcQueries) => Promise<T>): Promise<T>;
  /** Byte deletions journalled but not finished (a run crashed), oldest first. */
  pendingBlobDeletions(limit: number): Promise<BlobDeletion[]>;
  /** True if a `blobs` row exists again for `digest` (its bytes must then be kept). */
  blobRowExists(digest: string): Promise<boolean>;
  /** Marks byte deletions done (their bytes are gone). */
  finishBlobDeletions(digests: string[], now: number): Promise<void>;
  /** Forgets finished byte deletions older than `before`. */
  pruneBlobDeletions(before: number): Promise<number>;
  /** Queue rows in total and due at `cutoff` (for reports and progress). */
  queueSize(cutoff: number): Promise<{ total: number; due: number }>;
}

// Storage accounting is core's (quotas and UI read it); re-exported for GC's adapter.
export type { ProjectUsage, RepositoryUsage, StorageUsage, StorageUsageQueries } from '../core/ports.js';
