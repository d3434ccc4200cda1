import type { Readable } from 'node:stream';
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
  /** Durably moves `size` staged bytes to the content address `digest`, then frees the staging area. */
  commitUpload(uploadId: string, state: StagingState, digest: string, size: number): Promise<void>;
  /** Frees the staging area. Aborting an unknown upload is not an error. */
  abortUpload(uploadId: string, state: StagingState): Promise<void>;

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

export type NewManifest = Omit<ManifestRecord, 'createdAt'> & {
  references: ManifestReference[];
  tags: string[];
};

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

export type PutManifestResult =
  | { ok: true }
  | { ok: false; missing: ManifestReference[] };

/**
 * Registry metadata: which repositories exist, which blobs each may see, manifests,
 * tags and upload sessions. Every method is atomic on its own.
 */
export interface MetadataStore {
  /** Size of a blob known to the registry (in any repository), or null. */
  getBlob(digest: string): Promise<{ size: number } | null>;
  /** Size of a blob if it is linked into `repository`, else null. */
  getLinkedBlob(repository: string, digest: string): Promise<{ size: number } | null>;
  /** Records a committed blob and links it into `repository`; deletes the upload row if given. */
  commitBlob(repository: string, digest: string, size: number, uploadId?: string): Promise<void>;
  /** Links an already-known blob into `repository` (cross-repository mount). False if the blob is unknown. */
  linkBlob(repository: string, digest: string): Promise<boolean>;
  /** Removes a repository's link to a blob. False if there was none. */
  unlinkBlob(repository: string, digest: string): Promise<boolean>;
  /** Repositories that link `digest` (for mount without `from`), at most `limit`. */
  repositoriesWithBlob(digest: string, limit: number): Promise<string[]>;

  createUpload(upload: Omit<UploadRecord, 'updatedAt'>): Promise<void>;
  getUpload(id: string): Promise<UploadRecord | null>;
  /** Compare-and-set: updates only if the stored size is still `expectedSize`. */
  updateUpload(id: string, expectedSize: number, size: number, staging: StagingState): Promise<boolean>;
  deleteUpload(id: string): Promise<boolean>;
  listUploadsOlderThan(cutoff: Date, limit: number): Promise<UploadRecord[]>;

  /**
   * Stores a manifest with its references and tags in one transaction, after checking
   * inside that transaction that every reference exists in the repository.
   */
  putManifest(manifest: NewManifest): Promise<PutManifestResult>;
  getManifest(repository: string, digest: string): Promise<ManifestRecord | null>;
  getManifestByTag(repository: string, tag: string): Promise<ManifestRecord | null>;
  /** Deletes a manifest and every tag pointing at it. False if absent. */
  deleteManifest(repository: string, digest: string): Promise<boolean>;
  deleteTag(repository: string, tag: string): Promise<boolean>;
  listTags(repository: string, page: PageRequest): Promise<Page<string>>;
  listRepositories(page: PageRequest): Promise<Page<string>>;
  repositoryExists(repository: string): Promise<boolean>;
  listReferrers(repository: string, subjectDigest: string, artifactType?: string): Promise<ReferrerRecord[]>;

  check(): Promise<void>;
  close(): Promise<void>;
}
