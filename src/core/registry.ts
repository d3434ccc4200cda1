import { Readable } from 'node:stream';
import { digestOf, isDigest, parseDigest } from './digest.js';
import { RegistryError } from './errors.js';
import { parseManifest } from './manifest.js';
import { acceptAdmits } from './media-types.js';
import { validateRepositoryName, validateTag } from './names.js';
import {
  BlobNotFoundError,
  type BlobStore,
  type ByteRange,
  type ManifestRecord,
  type MetadataStore,
  type Page,
  type ReferrerRecord,
} from './ports.js';
import { UploadService } from './uploads.js';

export interface RegistryOptions {
  deleteEnabled: boolean;
  maxManifestSize: number;
  maxBlobSize: number;
  maxConcurrentUploads: number;
  /** Largest page a listing returns. */
  maxPageSize: number;
}

export interface BlobHandle {
  size: number;
  open(range?: ByteRange): Promise<Readable>;
  /** A URL the client may fetch the bytes from directly (S3 presigned), or null to stream through Berth. */
  redirectUrl(): Promise<string | null>;
}

export interface StoredManifest {
  digest: string;
  subjectDigest: string | null;
  tags: string[];
}

/** Decides whether the caller may read a repository (used by mounts without `from`). */
export type CanRead = (repository: string) => Promise<boolean>;

/**
 * The registry's rules, free of HTTP and SQL: what may be stored, what must exist
 * first, what a reference resolves to. Routes call this; it calls the two ports.
 */
export class Registry {
  readonly uploads: UploadService;

  constructor(
    readonly blobs: BlobStore,
    readonly metadata: MetadataStore,
    readonly options: RegistryOptions,
  ) {
    this.uploads = new UploadService(blobs, metadata, {
      maxBlobSize: options.maxBlobSize,
      maxConcurrentTransfers: options.maxConcurrentUploads,
    });
  }

  // ── Blobs ────────────────────────────────────────────────────────────────

  /**
   * Finds a blob visible in `repository` with one metadata lookup (BLOB_UNKNOWN otherwise),
   * returning its size and how to read it. Manifests are content too: clients may fetch
   * them through the blobs endpoint, so a manifest digest resolves here as well.
   */
  async findBlob(repository: string, digest: string): Promise<BlobHandle> {
    parseDigest(digest);
    const linked = await this.metadata.getLinkedBlob(repository, digest);
    if (linked) {
      return {
        size: linked.size,
        // The whole blob as an explicit range: the store then knows where it ends (no read(2)
        // just to find EOF) and can tell a truncated file from a complete one.
        open: (range) => this.openStored(digest, range ?? (linked.size > 0 ? { start: 0, end: linked.size - 1 } : undefined)),
        redirectUrl: async () => (this.blobs.redirectUrl ? this.blobs.redirectUrl(digest) : null),
      };
    }
    const manifest = await this.metadata.getManifest(repository, digest);
    if (!manifest) throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} is unknown to repository ${repository}`, { digest });
    return {
      size: manifest.size,
      open: async (range) => Readable.from([range ? manifest.payload.subarray(range.start, range.end + 1) : manifest.payload]),
      redirectUrl: async () => null,
    };
  }

  private async openStored(digest: string, range?: ByteRange): Promise<Readable> {
    try {
      return await this.blobs.openRange(digest, range);
    } catch (err) {
      if (err instanceof BlobNotFoundError) {
        throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} is recorded but its content is missing from storage (run berth fsck)`, { digest });
      }
      throw err;
    }
  }

  async deleteBlob(repository: string, digest: string): Promise<void> {
    this.requireDelete();
    parseDigest(digest);
    if (!(await this.metadata.unlinkBlob(repository, digest))) {
      throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} is unknown to repository ${repository}`, { digest });
    }
  }

  /**
   * Cross-repository mount. With `from`, mounts when the blob is visible there and the
   * caller may read it; without, when any repository the caller may read has it.
   * Returns false when the client should fall back to a normal upload.
   */
  async mountBlob(repository: string, digest: string, from: string | undefined, canRead: CanRead): Promise<boolean> {
    parseDigest(digest);
    if (await this.metadata.getLinkedBlob(repository, digest)) return true;
    const candidates = from !== undefined ? [from] : await this.metadata.repositoriesWithBlob(digest, 100);
    for (const source of candidates) {
      try {
        validateRepositoryName(source);
      } catch {
        return false;
      }
      if (!(await canRead(source))) continue;
      if (!(await this.metadata.getLinkedBlob(source, digest))) continue;
      return this.metadata.linkBlob(repository, digest);
    }
    return false;
  }

  // ── Manifests ────────────────────────────────────────────────────────────

  /** Resolves a tag or digest; MANIFEST_UNKNOWN also when the stored type is not acceptable. */
  async getManifest(repository: string, reference: string, accept?: string): Promise<ManifestRecord> {
    const manifest = isDigest(reference)
      ? await this.metadata.getManifest(repository, parseDigest(reference).value)
      : await this.metadata.getManifestByTag(repository, validateTag(reference));
    if (!manifest) {
      throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference} is unknown to repository ${repository}`, {
        name: repository,
        reference,
      });
    }
    if (!acceptAdmits(accept, manifest.mediaType)) {
      throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference} is a ${manifest.mediaType}, which the Accept header excludes`, {
        mediaType: manifest.mediaType,
      });
    }
    return manifest;
  }

  /**
   * Stores a manifest under `reference` (a tag, or its own digest) plus any `extraTags`.
   * Every referenced blob and child manifest must already exist in the repository.
   */
  async putManifest(repository: string, reference: string, payload: Buffer, contentType: string | undefined, extraTags: string[] = []): Promise<StoredManifest> {
    if (payload.length > this.options.maxManifestSize) {
      throw manifestTooBig(this.options.maxManifestSize);
    }
    const byDigest = isDigest(reference);
    const algorithm = byDigest ? parseDigest(reference).algorithm : 'sha256';
    const digest = digestOf(payload, algorithm);
    if (byDigest && digest !== reference) {
      throw new RegistryError('DIGEST_INVALID', `manifest hashes to ${digest}, not ${reference}`, { expected: reference, actual: digest });
    }
    const tags = [...new Set([...(byDigest ? [] : [reference]), ...extraTags])].map(validateTag);
    const parsed = parseManifest(payload, contentType);
    const result = await this.metadata.putManifest({
      repository,
      digest,
      mediaType: parsed.mediaType,
      artifactType: parsed.artifactType,
      subjectDigest: parsed.subject?.digest ?? null,
      annotations: parsed.annotations,
      size: payload.length,
      payload,
      references: parsed.references,
      tags,
    });
    if (!result.ok) {
      const first = result.missing[0]!;
      throw new RegistryError(
        'MANIFEST_BLOB_UNKNOWN',
        `manifest references ${first.kind === 'manifest' ? 'manifest' : 'blob'} ${first.digest}, which is not in repository ${repository}` +
          (result.missing.length > 1 ? ` (and ${result.missing.length - 1} more)` : ''),
        { digest: first.digest, missing: result.missing.map((m) => m.digest) },
      );
    }
    return { digest, subjectDigest: parsed.subject?.digest ?? null, tags };
  }

  /** By digest: deletes the manifest and its tags. By tag: deletes only the tag. */
  async deleteManifest(repository: string, reference: string): Promise<void> {
    this.requireDelete();
    const deleted = isDigest(reference)
      ? await this.metadata.deleteManifest(repository, parseDigest(reference).value)
      : await this.metadata.deleteTag(repository, validateTag(reference));
    if (!deleted) {
      throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference} is unknown to repository ${repository}`, { reference });
    }
  }

  // ── Discovery ────────────────────────────────────────────────────────────

  async listTags(repository: string, limit: number | undefined, last: string | undefined): Promise<Page<string>> {
    if (!(await this.metadata.repositoryExists(repository))) {
      throw new RegistryError('NAME_UNKNOWN', `repository ${repository} is not known to the registry`, { name: repository });
    }
    // n=0 asks for nothing: an empty page with no next link, as CNCF Distribution answers.
    if (limit === 0) return { items: [], more: false };
    return this.metadata.listTags(repository, { limit: limit ?? Number.MAX_SAFE_INTEGER, after: last });
  }

  async listRepositories(limit: number | undefined, last: string | undefined): Promise<Page<string>> {
    if (limit === 0) return { items: [], more: false };
    return this.metadata.listRepositories({ limit: limit ?? this.options.maxPageSize, after: last });
  }

  /** Manifests whose `subject` is `digest`, as descriptors; empty (not an error) when none. */
  async listReferrers(repository: string, digest: string, artifactType?: string): Promise<ReferrerRecord[]> {
    parseDigest(digest);
    return this.metadata.listReferrers(repository, digest, artifactType);
  }

  /** Checks a page-size parameter: a whole number ≥ 0, capped at the configured maximum. */
  pageSize(raw: string | undefined): number | undefined {
    // An empty `n=` means no limit, as in CNCF Distribution.
    if (raw === undefined || raw === '') return undefined;
    if (!/^\d{1,15}$/.test(raw)) {
      throw new RegistryError('PAGINATION_NUMBER_INVALID', `n must be a whole number, got "${raw.slice(0, 32)}"`, { n: raw.slice(0, 32) });
    }
    return Math.min(Number(raw), this.options.maxPageSize);
  }

  async check(): Promise<void> {
    await Promise.all([this.metadata.check(), this.blobs.check()]);
  }

  private requireDelete(): void {
    if (!this.options.deleteEnabled) {
      throw new RegistryError('UNSUPPORTED', 'deletion is disabled on this registry (storage.delete.enabled: false)');
    }
  }
}

function manifestTooBig(limit: number): RegistryError {
  return new RegistryError('MANIFEST_TOO_LARGE', `manifest exceeds the size limit of ${limit} bytes`, { limit });
}

export { manifestTooBig };
