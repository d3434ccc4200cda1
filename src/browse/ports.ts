/**
 * The web UI's read queries (src/metadata/browse-store.ts on SQLite, PostgreSQL and MySQL).
 * Every listing is keyset-paginated on an index: a page costs the same at 10 rows or 100,000.
 * Badge queries take a whole page's digests at once (one statement per badge, never per row).
 */

export type RepositorySort = 'name' | 'pushed' | 'pulls';
export type TagSort = 'name' | 'pushed';
export type Order = 'asc' | 'desc';

/** Where a page starts: after the row with this sort key and name (keyset). */
export interface After {
  key: number | null;
  name: string;
}

export interface RepositoryRow {
  id: number;
  name: string;
  /** Newest manifest push (epoch ms), null when empty. */
  pushedAt: number | null;
  pulls: number;
}

export interface RepositoryStats {
  tagCount: number;
  /** Bytes of the blobs linked into it, each counted once. */
  size: number;
}

export interface TagRow {
  tag: string;
  digest: string;
  mediaType: string;
  artifactType: string | null;
  annotations: string | null;
  /** The manifest's own bytes. */
  size: number;
  payload: Uint8Array;
  /** When the tag last moved (epoch ms). */
  pushedAt: number;
}

export interface ManifestRow {
  digest: string;
  mediaType: string;
  artifactType: string | null;
  annotations: string | null;
  subject: string | null;
  size: number;
  payload: Uint8Array;
  createdAt: number;
}

export interface ScanBadgeRow {
  digest: string;
  status: string;
  summary: string;
}

export interface BrowseQueries {
  /** The repository's id, or null. */
  repositoryId(name: string): Promise<number | null>;
  /**
   * Repositories of `project` (the name itself and `project/…`) holding at least one manifest,
   * matching `q` (substring, case-insensitive), in `sort` order, `limit` after `after`.
   */
  repositories(
    project: string,
    q: string | undefined,
    sort: RepositorySort,
    order: Order,
    limit: number,
    after: After | null,
  ): Promise<RepositoryRow[]>;
  countRepositories(project: string, q: string | undefined): Promise<number>;
  /** Tag counts and sizes of a page of repositories (by id), in two statements. */
  repositoryStats(ids: number[]): Promise<Map<number, RepositoryStats>>;
  tags(repositoryId: number, q: string | undefined, sort: TagSort, order: Order, limit: number, after: After | null): Promise<TagRow[]>;
  countTags(repositoryId: number, q: string | undefined): Promise<number>;
  /** Manifests by digest (a page's index children). */
  manifests(repositoryId: number, digests: string[]): Promise<ManifestRow[]>;
  /** Manifests whose subject is one of `digests` (a page's referrers). */
  referrersOf(repositoryId: number, digests: string[]): Promise<ManifestRow[]>;
  /** Which of `names` are tags of the repository, with their digests (cosign's sha256-<hex>.sig/.att/.sbom tag scheme). */
  existingTags(repositoryId: number, names: string[]): Promise<Map<string, string>>;
  /** The digest a tag points at, or null. */
  tagDigest(repositoryId: number, tag: string): Promise<string | null>;
  /** Tags pointing at a manifest. */
  tagsOf(repositoryId: number, digest: string): Promise<string[]>;
  /** Pull statistics per digest. */
  pulls(repositoryId: number, digests: string[]): Promise<Map<string, { pulls: number; lastPulledAt: number }>>;
  /** Stored vulnerability scans of `digests`. */
  scans(digests: string[]): Promise<ScanBadgeRow[]>;
  /** Repository names containing `q` (case-insensitive), in name order, after `after`. */
  searchRepositories(q: string, limit: number, after: string | null): Promise<string[]>;
  /** Tags containing `q` (case-insensitive), in (repository, tag) order, after `after`. */
  searchTags(
    q: string,
    limit: number,
    after: { repository: string; tag: string } | null,
  ): Promise<{ repository: string; tag: string; digest: string }[]>;
  /** Every manifest digest of a repository, referrers first (repository delete). */
  manifestDigests(repositoryId: number): Promise<string[]>;
}

/** A signed artifact of a listing page: its digest and its signature manifests (referrers and cosign's .sig tag). */
export interface SignedSubject {
  digest: string;
  signatures: string[];
}

/**
 * Signature verification for the tag listing (src/signatures, wired by the composition root):
 * how many signatures of each subject verify under the project's trust policy keys now, or null
 * when the project trusts no key or certificate (nothing to verify with).
 */
export interface SignatureVerdicts {
  verifiedCounts(repository: string, subjects: SignedSubject[]): Promise<Map<string, number> | null>;
}
