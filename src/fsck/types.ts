/**
 * What `berth fsck` needs from the metadata database, and what it reports.
 * The checker (check.ts) depends only on this interface and on the BlobStore port,
 * so it works the same on SQLite and PostgreSQL, filesystem and S3.
 */

export interface BlobRow {
  digest: string;
  size: number;
}

export interface UploadRow {
  id: string;
  repository: string;
  size: number;
  updatedAt: Date;
}

/** A manifest reference whose target is not in the manifest's repository. */
export interface BrokenReference {
  repository: string;
  manifest: string;
  child: string;
  kind: string;
}

export interface ManifestRow {
  repository: string;
  digest: string;
  payload: Buffer;
}

/** A manifest that needs `digest`: `repository@manifest`. */
export interface ManifestUse {
  repository: string;
  manifest: string;
}

/** Narrow, read-mostly view of the metadata database for consistency checks. Pages are keyset-ordered. */
export interface FsckMetadata {
  /** Blob rows ordered by digest, strictly after `after`. */
  blobRows(after: string | undefined, limit: number): Promise<BlobRow[]>;
  /** Which of `digests` have a blob row. */
  knownBlobs(digests: string[]): Promise<Set<string>>;
  /** Repositories linking `digest`. */
  linkingRepositories(digest: string): Promise<string[]>;
  /** Manifests (in any repository) whose references include `digest`. */
  manifestsUsing(digest: string): Promise<ManifestUse[]>;
  /** References to blobs not linked (or not recorded) and to child manifests not stored, at most `limit`. */
  brokenReferences(limit: number): Promise<BrokenReference[]>;
  /** Manifests ordered by (repository, digest), strictly after `after`. */
  manifests(after: { repository: string; digest: string } | undefined, limit: number): Promise<ManifestRow[]>;
  countManifests(): Promise<number>;
  /** Upload rows ordered by id, strictly after `after`. */
  uploadRows(after: string | undefined, limit: number): Promise<UploadRow[]>;
  /** Which of `ids` have an upload row. */
  knownUploads(ids: string[]): Promise<Set<string>>;
  /** Deletes a blob row and its repository links, in one transaction, unless a manifest references it. */
  deleteUnreferencedBlobRow(digest: string): Promise<boolean>;
  deleteUploadRow(id: string): Promise<boolean>;
  /** Repositories whose project has no row (nobody but an admin may reach them), by name, strictly after `after`. */
  orphanRepositories(after: string | undefined, limit: number): Promise<string[]>;
}

/**
 * Corruption means recorded data is missing or wrong (an image may not pull).
 * Leftovers are garbage a crash or an interrupted request leaves behind; they waste
 * space but every recorded image is intact. A notice is intact data worth knowing about
 * (orphan repositories): never repaired, never a failure.
 */
export type Severity = 'corruption' | 'leftover' | 'notice';

export type ProblemKind =
  /** Blob row (and links) whose bytes are missing from storage. */
  | 'dangling-blob'
  /** Stored bytes whose length differs from the blob row. */
  | 'size-mismatch'
  /** Stored bytes that do not hash to their digest (only with --verify-content). */
  | 'digest-mismatch'
  /** Manifest referencing a blob or child manifest that its repository does not have. */
  | 'missing-reference'
  /** Manifest payload that does not hash to its digest (only with --verify-content). */
  | 'manifest-digest-mismatch'
  /** Upload row whose staging area holds fewer bytes than recorded: acknowledged bytes were lost. */
  | 'broken-upload'
  /** Upload row whose staging area is gone (a crash between committing the bytes and recording it). */
  | 'stale-upload'
  /** Blob bytes with no blob row. */
  | 'orphan-blob'
  /** Staging area with no upload row. */
  | 'orphan-staging'
  /**
   * Repository whose project has no row (pushed with auth.mode none, or by an admin with
   * autocreate off): only admins reach it; `berth serve` in token mode assigns it to an
   * admin-owned project at start (docs/security.md).
   */
  | 'orphan-repository';

export interface Problem {
  kind: ProblemKind;
  severity: Severity;
  /** Digest or upload id the problem is about. */
  subject: string;
  message: string;
  /** Whether --repair may fix it without deleting referenced data. */
  repairable: boolean;
  repaired?: boolean;
}

export interface FsckOptions {
  repair: boolean;
  /** Re-hash every blob and manifest (slow: reads all content). */
  verifyContent: boolean;
  /** Leftovers younger than this (ms) may belong to a request in flight: reported, never repaired. */
  graceMs: number;
  now?: Date;
  /** Report repositories without a project (meaningful with auth on; every repository is one with auth.mode none). */
  orphans?: boolean;
  /**
   * True for a repository that reads through an upstream (a pull-through cache project, or every
   * repository with `proxy.remoteurl`): its manifests may reference content not fetched yet
   * (fetched on the first pull), which is not a problem there.
   */
  readThrough?: (repository: string) => boolean;
}

export interface FsckReport {
  checked: {
    blobRows: number;
    blobFiles: number | null;
    manifests: number;
    uploadRows: number;
    stagingAreas: number | null;
    contentVerified: boolean;
    /** Repositories without a project row (null: not checked, auth.mode none). */
    orphanRepositories?: number | null;
  };
  problems: Problem[];
  /** Checks the storage adapter could not perform (e.g. it cannot list). */
  skipped: string[];
}

export function corruptionCount(report: FsckReport): number {
  return report.problems.filter((p) => p.severity === 'corruption' && !p.repaired).length;
}
