import type { Readable } from 'node:stream';
import type { DomainEvent } from './events.js';
import type { ManifestReference } from './manifest.js';

/**
 * The two ports the core depends on. Adapters live in src/storage (BlobStore)
 * and src/metadata (MetadataStore). Registry rules live above them, so an
 * adapter only moves bytes or rows and never decides what is allowed.
 */

/** Inclusive byte range, as in HTTP. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Adapter-private state of an upload in progress (file offsets, multipart ids, part ETags…).
 * It must be JSON-serialisable: the core persists it in the metadata DB after every append,
 * which is what lets any process (or replica) continue an upload.
 */
export type StagingState = unknown;

/**
 * Content-addressed blob bytes. Keys are digests; a blob is written once, through an
 * upload staging area, and becomes readable only after `commitUpload` has made it durable.
 */
export interface BlobStore {
  /** Size of a committed blob, or null if its bytes are not stored. */
  stat(digest: string): Promise<{ size: number } | null>;
  /** Streams a committed blob, or part of it. Rejects with a NotFound error if absent. */
  openRange(digest: string, range?: ByteRange): Promise<Readable>;
  /** Removes a committed blob's bytes. Deleting an absent blob is not an error. */
  delete(digest: string): Promise<void>;

  /** Starts an empty staging area for an upload. */
  createUpload(uploadId: string): Promise<StagingState>;
  /**
   * Appends `source` to the upload, which currently holds `offset` bytes (anything the
   * adapter holds beyond `offset` — e.g. from a crashed request — is discarded first).
   * Resolves with the new state once the bytes are durably staged.
   */
  appendUpload(uploadId: string, state: StagingState, offset: number, source: Readable): Promise<StagingState>;
  /** Streams the first `length` staged bytes (used to rebuild hash state after a restart). */
  readUpload(uploadId: string, state: StagingState, length: number): Promise<Readable>;
  /**
   * Durably moves `size` staged bytes to the content address `digest`. What is left of the
   * staging area stays until core, once the blob is recorded, calls `abortUpload`: a session
   * whose row still exists must keep its bytes (a crash before the record leaves it completable).
   */
  commitUpload(uploadId: string, state: StagingState, digest: string, size: number): Promise<void>;
  /** Frees the staging area. Aborting an unknown upload is not an error. */
  abortUpload(uploadId: string, state: StagingState): Promise<void>;
  /**
   * Makes a complete local file the staging area of a new upload without copying it (optional;
   * the filesystem back end hard-links it when it is on the same filesystem), or null when it
   * cannot: the caller then copies the bytes with createUpload + appendUpload. The file stays
   * at `file` (the caller removes it; it must not change it afterwards). Used by the pull-through cache,
   * whose downloads are spooled to a local file.
   */
  adoptUpload?(uploadId: string, file: string): Promise<{ state: StagingState } | null>;
  /**
   * How many bytes of `state` the staging area really holds from offset 0 (the recorded ones
   * still readable), or null when it is gone (optional; an upload's status checks it, so a
   * session answers 204 + Range only when its staged bytes can complete it).
   */
  stagedSize?(uploadId: string, state: StagingState): Promise<number | null>;

  /**
   * Every committed blob (optional; used by `berth fsck`). Entries whose name is not a
   * valid digest are still listed, with the name the adapter found, so fsck can report them.
   */
  listBlobs?(): AsyncIterable<{ digest: string; size: number; modifiedAt?: Date }>;
  /** Every staging area present, by upload id (optional; used by `berth fsck`). */
  listUploads?(): AsyncIterable<{ id: string; size: number; modifiedAt: Date }>;
  /**
   * A short-lived URL from which a client may fetch a committed blob directly (optional; e.g.
   * a presigned S3 URL), or null when the blob should be streamed through Berth.
   */
  redirectUrl?(digest: string): Promise<string | null>;

  /** Throws if the store cannot be reached (readiness). */
  check(): Promise<void>;
  close(): Promise<void>;
}

/**
 * An upload's staging area is gone: appendUpload/readUpload/commitUpload reject with this.
 * It happens after a crash between `commitUpload` and the metadata commit; the session
 * cannot continue and the client must start the upload again.
 */
export class UploadNotFoundError extends Error {
  constructor(readonly uploadId: string) {
    super(`staging area of upload ${uploadId} not found in storage`);
    this.name = 'UploadNotFoundError';
  }
}

export class BlobNotFoundError extends Error {
  constructor(readonly digest: string) {
    super(`blob ${digest} not found in storage`);
    this.name = 'BlobNotFoundError';
  }
}

export interface UploadRecord {
  id: string;
  repository: string;
  size: number;
  staging: StagingState;
  createdAt: Date;
  updatedAt: Date;
}

export interface ManifestRecord {
  repository: string;
  digest: string;
  mediaType: string;
  artifactType: string | null;
  subjectDigest: string | null;
  annotations: Record<string, string> | null;
  size: number;
  payload: Buffer;
  createdAt: Date;
}

export interface Page<T> {
  items: T[];
  /** True when more items follow the last one returned. */
  more: boolean;
}

export interface PageRequest {
  /** Maximum number of items. */
  limit: number;
  /** Return items strictly after this one in lexical order. */
  after?: string;
}

export interface ReferrerRecord {
  digest: string;
  mediaType: string;
  artifactType: string | null;
  size: number;
  annotations: Record<string, string> | null;
}

/** A manifest row to store (its tags are set separately, one decision per tag). */
export type NewManifest = Omit<ManifestRecord, 'createdAt' | 'repository'> & { repositoryId: number };

// ── The metadata port, by aggregate ─────────────────────────────────────────
//
// Reads that serve pulls run outside transactions (they are the hot path). Every write runs
// inside `MetadataStore.transaction`, where core applies the registry's rules, asks the
// policy hooks and appends the domain events it causes, so all of it commits together or
// not at all. The adapter moves rows; it never decides what is allowed.

/** Repositories and which blobs each may see (blob links). */
export interface RepositoryReads {
  exists(repository: string): Promise<boolean>;
  /** Repository names in byte order, after `page.after`. */
  list(page: PageRequest): Promise<Page<string>>;
  /** Size of a blob known to the registry (in any repository), or null. */
  blob(digest: string): Promise<{ size: number } | null>;
  /** Size of a blob if it is linked into `repository`, else null. */
  linkedBlob(repository: string, digest: string): Promise<{ size: number } | null>;
  /** Repositories that link `digest` (for mount without `from`), at most `limit`, in name order. */
  linking(digest: string, limit: number): Promise<string[]>;
}

export interface RepositoryWrites {
  /** The repository's id, or null when it does not exist. */
  id(repository: string): Promise<number | null>;
  /** Creates the repository if needed; `created` tells whether this call created it. */
  ensure(repository: string): Promise<{ id: number; created: boolean }>;
  /** Records blob bytes (keeps an existing row). */
  recordBlob(digest: string, size: number): Promise<void>;
  /** True when the blob row exists; share-locks it until the transaction ends (no collector may delete it meanwhile). */
  lockBlob(digest: string): Promise<boolean>;
  /** Links a blob into a repository (refreshing the link's time if it exists). */
  link(repositoryId: number, digest: string): Promise<void>;
  /** True when the link existed. */
  unlink(repositoryId: number, digest: string): Promise<boolean>;
}

/** Upload sessions. Each call is atomic on its own (sessions change on every chunk, outside transactions). */
export interface UploadRows {
  create(upload: Omit<UploadRecord, 'updatedAt'>): Promise<void>;
  get(id: string): Promise<UploadRecord | null>;
  /**
   * Compare-and-set: updates only if the stored size is still `expectedSize` (and, with
   * `writer`, only while that writer holds the session, which the update then frees).
   */
  update(id: string, expectedSize: number, size: number, staging: StagingState, writer?: string): Promise<boolean>;
  /**
   * Makes `writer` the session's only writer until `until` (epoch ms) when nobody holds it,
   * its holder's time ran out before `now`, or `writer` holds it already (a renewal). One
   * conditional update, so two processes never both hold it. False: another writer does.
   */
  claim(id: string, writer: string, now: number, until: number): Promise<boolean>;
  /** Frees the session if `writer` still holds it. */
  unclaim(id: string, writer: string): Promise<void>;
  delete(id: string): Promise<boolean>;
  listOlderThan(cutoff: Date, limit: number): Promise<UploadRecord[]>;
  /** The receipt of a finished session (see UploadFinish), or null. */
  receipt(id: string): Promise<UploadReceipt | null>;
  /** Deletes receipts of sessions finished before `cutoff`; returns how many. */
  pruneReceipts(cutoff: Date): Promise<number>;
}

/** What a finished upload session committed: kept a while so a re-sent closing PUT gets its 201 again. */
export interface UploadReceipt {
  repository: string;
  digest: string;
}

/** Ends an upload session inside the commit transaction: deletes its row and leaves its receipt. */
export interface UploadFinish {
  finish(id: string, receipt: UploadReceipt): Promise<void>;
}

/** Manifests, tags and referrers: reads. */
export interface ManifestReads {
  get(repository: string, digest: string): Promise<ManifestRecord | null>;
  byTag(repository: string, tag: string): Promise<ManifestRecord | null>;
  tags(repository: string, page: PageRequest): Promise<Page<string>>;
  referrers(repository: string, subjectDigest: string, artifactType?: string): Promise<ReferrerRecord[]>;
}

/** Manifests, tags and referrers: writes, inside a transaction. */
export interface ManifestWrites {
  /** References that are not stored in the repository; the found ones are share-locked until the transaction ends. */
  missingReferences(repositoryId: number, references: ManifestReference[]): Promise<ManifestReference[]>;
  /** Stores the manifest and its references; re-storing it refreshes its time. */
  put(manifest: NewManifest, references: ManifestReference[]): Promise<void>;
  /** Locks the manifest row for deletion; null when it does not exist. */
  lock(repositoryId: number, digest: string): Promise<{ subject: string | null } | null>;
  references(repositoryId: number, digest: string): Promise<ManifestReference[]>;
  /** Removes the manifest with its references and tags; returns the tags it had. */
  delete(repositoryId: number, digest: string): Promise<string[]>;
  /** Where each of `tags` points now (absent: the tag does not exist). */
  tagTargets(repositoryId: number, tags: string[]): Promise<Map<string, string>>;
  setTag(repositoryId: number, tag: string, digest: string): Promise<void>;
  /** Removes a tag; returns the digest it pointed at, or null. */
  deleteTag(repositoryId: number, tag: string): Promise<string | null>;
  /** Removes several tags in a few statements (retention: one round trip per 500 tags, not per tag). */
  deleteTags(repositoryId: number, tags: string[]): Promise<void>;
}

/** Appends domain events to the durable outbox, in the transaction of the change that caused them. */
export interface EventAppender {
  append(events: DomainEvent[], actor: string | null): Promise<void>;
}

/** Everything a transaction can touch. Feature ports bind to it through their own adapters (`within(tx)`). */
export interface MetadataTx {
  readonly repositories: RepositoryWrites;
  readonly manifests: ManifestWrites;
  readonly uploads: Pick<UploadRows, 'delete'> & UploadFinish;
  readonly events: EventAppender;
}

/** Per-manifest pull counts, flushed in batches (see core/pulls.ts). */
export interface PullCount {
  repository: string;
  digest: string;
  pulls: number;
  lastPulledAt: number;
}

/** Registry metadata: reads by aggregate, and one way to write — a transaction. */
export interface MetadataStore {
  readonly repositories: RepositoryReads;
  readonly manifests: ManifestReads;
  readonly uploads: UploadRows;
  /** Runs `work` in one transaction (on SQLite, a write transaction from its first statement). */
  transaction<T>(work: (tx: MetadataTx) => Promise<T>): Promise<T>;
  /**
   * Adds pull counts (one statement batch; counts are aggregates, not events), and appends
   * `events` (the flush's aggregated manifest.pulled events) to the outbox in the same transaction.
   */
  recordPulls(counts: PullCount[], events?: DomainEvent[]): Promise<void>;
  check(): Promise<void>;
  close(): Promise<void>;
}

// ── Storage accounting (implemented beside GC, which keeps the same rows) ────────────

export interface RepositoryUsage {
  repository: string;
  /** Unique blobs referenced by the repository's manifests. */
  blobs: number;
  /** Sum of those blobs' sizes (logical size). */
  bytes: number;
}

export interface ProjectUsage {
  project: string;
  blobs: number;
  bytes: number;
}

export interface StorageUsage {
  repositories: RepositoryUsage[];
  projects: ProjectUsage[];
  /** Physical storage: every stored blob once (deduplicated). */
  total: { blobs: number; bytes: number };
}

/** Storage accounting, computed by indexed queries (see docs/gc.md for the cost). */
export interface StorageUsageQueries {
  storageUsage(): Promise<StorageUsage>;
  repositoryUsage(repository: string): Promise<RepositoryUsage | null>;
}
