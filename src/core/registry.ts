import { Readable } from 'node:stream';
import { digestOf, isDigest, parseDigest } from './digest.js';
import { RegistryError } from './errors.js';
import { parseManifest } from './manifest.js';
import { acceptAdmits } from './media-types.js';
import { validateRepositoryName, validateTag } from './names.js';
import type { DomainEvent, Operation } from './events.js';
import type { ManifestReference } from './manifest.js';
import { PolicyHooks } from './policies.js';
import {
  BlobNotFoundError,
  type BlobStore,
  type ByteRange,
  type ManifestRecord,
  type MetadataStore,
  type MetadataTx,
  type Page,
  type ReferrerRecord,
} from './ports.js';
import type { PullCounter } from './pulls.js';
import type { ReadThrough } from './read-through.js';
import { UploadService, type BlobCommit } from './uploads.js';

export interface RegistryOptions {
  deleteEnabled: boolean;
  maxManifestSize: number;
  maxBlobSize: number;
  maxConcurrentUploads: number;
  /** Largest page a listing returns. */
  maxPageSize: number;
  /** Running upload hashes kept in memory (default MAX_HELD_HASHES). */
  maxHeldHashes?: number;
  /** Upload requests hold their session in the metadata database against other processes (default true; see UploadLimits). */
  claimUploadWriters?: boolean;
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

/**
 * Deletes inside one `Registry.changeBatch` transaction. Each resolves with null when done, or
 * with the refusal of the policy that protects the tag or manifest (nothing was deleted then).
 */
export interface ChangeBatch {
  readonly tx: MetadataTx;
  /**
   * Deletes tags as DELETE /v2/<name>/manifests/<tag> does (hook `tag.delete` and event
   * `tag.deleted` per tag), the rows in one statement per 500; resolves with the refused ones.
   */
  deleteTags(repository: string, repositoryId: number, tags: { tag: string; digest: string }[]): Promise<Map<string, RegistryError>>;
  /** Deletes a manifest with its tags, as DELETE /v2/<name>/manifests/<digest> does (hook `manifest.delete`, event `manifest.deleted`). */
  deleteManifest(repository: string, repositoryId: number, digest: string): Promise<RegistryError | null>;
}

/** Runs a delete, turning a refusal (a RegistryError: a policy's, or a row that is gone) into its value. */
async function refusalOf(remove: () => Promise<void>): Promise<RegistryError | null> {
  try {
    await remove();
    return null;
  } catch (err) {
    if (err instanceof RegistryError) return err;
    throw err;
  }
}

/**
 * The operation of a read-through cache's writes: a system write (no actor, as other system
 * changes) that the proxy-cache policy lets through by its reason.
 */
const READ_THROUGH = { reason: 'proxy-cache' } as const satisfies Operation;

/** Decides whether the caller may read a repository (used by mounts without `from`). */
export type CanRead = (repository: string) => Promise<boolean>;

/** Options of a manifest read. */
export interface ManifestRead {
  accept?: string;
  /** Count this read as a pull (a GET; HEAD requests are not pulls). */
  pull?: boolean;
}

/**
 * The registry's rules, free of HTTP and SQL: what may be stored, what must exist
 * first, what a reference resolves to. Routes call this; it calls the ports. Every
 * change runs in one metadata transaction that also asks the policy hooks and appends
 * the domain events the change causes (see docs/architecture.md).
 */
export class Registry {
  readonly uploads: UploadService;
  private readThrough: ReadThrough | null = null;

  constructor(
    private readonly blobs: BlobStore,
    private readonly metadata: MetadataStore,
    readonly options: RegistryOptions,
    private readonly policies: PolicyHooks = new PolicyHooks(),
    private readonly pulls: PullCounter | null = null,
  ) {
    this.uploads = new UploadService(
      blobs,
      metadata.uploads,
      {
        maxBlobSize: options.maxBlobSize,
        maxConcurrentTransfers: options.maxConcurrentUploads,
        maxHeldHashes: options.maxHeldHashes,
        claimWriters: options.claimUploadWriters,
      },
      {
        start: (repository, op) => this.policies.check('upload.start', { repository, actor: op.actor ?? null }, null),
        check: (commit) => this.checkBlob(commit),
        commit: (commit) => this.recordBlob(commit),
      },
    );
  }

  /** Attaches the read-through source of covered repositories (the pull-through cache; see read-through.ts). */
  attachReadThrough(readThrough: ReadThrough): void {
    this.readThrough = readThrough;
  }

  // ── Blobs ────────────────────────────────────────────────────────────────

  /**
   * Finds a blob visible in `repository` with one metadata lookup (BLOB_UNKNOWN otherwise),
   * returning its size and how to read it. Manifests are content too: clients may fetch
   * them through the blobs endpoint, so a manifest digest resolves here as well.
   */
  async findBlob(repository: string, digest: string): Promise<BlobHandle> {
    parseDigest(digest);
    const linked = await this.metadata.repositories.linkedBlob(repository, digest);
    if (linked) {
      return {
        size: linked.size,
        // The whole blob as an explicit range: the store then knows where it ends (no read(2)
        // just to find EOF) and can tell a truncated file from a complete one.
        open: (range) => this.openStored(digest, range ?? (linked.size > 0 ? { start: 0, end: linked.size - 1 } : undefined)),
        redirectUrl: async () => (this.blobs.redirectUrl ? this.blobs.redirectUrl(digest) : null),
      };
    }
    if (this.readThrough?.covers(repository)) {
      const fetched = await this.readThrough.blob(repository, digest);
      if (fetched) return fetched;
    }
    const manifest = await this.metadata.manifests.get(repository, digest);
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
        throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} is recorded but its content is missing from storage (run berth fsck)`, {
          digest,
        });
      }
      throw err;
    }
  }

  /**
   * Asks the blob.commit policies (phase `check`) whether a read-through cache may store a blob
   * of `size` bytes in `repository`, before it downloads it (a full quota refuses here).
   */
  async admitCachedBlob(repository: string, digest: string, size: number): Promise<void> {
    parseDigest(digest);
    await this.checkBlob({ repository, digest, size, lastAppendAt: Date.now(), reason: READ_THROUGH.reason });
  }

  /**
   * Records bytes a read-through cache just committed to the BlobStore at `digest` and links
   * them into `repository` as a system write (`reason: 'proxy-cache'`): the blob.commit hook
   * runs (quota counts it, GC's race rule judges it) and `blob.committed` is appended, so GC's
   * review queue sees it like a pushed blob.
   */
  async linkCachedBlob(repository: string, digest: string, size: number, lastAppendAt = Date.now()): Promise<void> {
    parseDigest(digest);
    await this.change(READ_THROUGH, (tx, events) => this.linkBlob(tx, events, { ...READ_THROUGH, repository, digest, size, lastAppendAt }));
  }

  /**
   * Stores a manifest a read-through cache fetched from its upstream, under `reference` (a tag
   * or its digest), through the path a push takes (hooks, tags, referrers, events in one
   * transaction) as a system write (`reason: 'proxy-cache'`). Unlike a push, the blobs and child
   * manifests it references need not be there yet: the cache fetches them when a client asks.
   */
  async storeCachedManifest(
    repository: string,
    reference: string,
    payload: Buffer,
    contentType: string | undefined,
  ): Promise<StoredManifest> {
    return this.storeManifest(repository, reference, payload, contentType, [], READ_THROUGH, false);
  }

  /**
   * Deletes a tag a read-through cache found deleted upstream, as a system delete
   * (`reason: 'proxy-cache'`: hook `tag.delete`, event `tag.deleted`, in one transaction); only
   * while it still points to `digest` (a fill may have moved it meanwhile). The manifest stays:
   * pulls by digest keep working until retention or GC decide.
   */
  async deleteCachedTag(repository: string, tag: string, digest: string): Promise<void> {
    validateTag(tag);
    await this.change(READ_THROUGH, async (tx, events) => {
      const repositoryId = await tx.repositories.id(repository);
      if (repositoryId === null || (await tx.manifests.tagTargets(repositoryId, [tag])).get(tag) !== digest) return;
      await this.policies.check('tag.delete', { repository, tag, digest, actor: null, reason: READ_THROUGH.reason }, tx);
      await tx.manifests.deleteTag(repositoryId, tag);
      events.push({ type: 'tag.deleted', repository, tag, digest });
    });
  }

  async deleteBlob(repository: string, digest: string, op: Operation = {}): Promise<void> {
    this.requireDelete();
    if (this.readThrough?.covers(repository)) throw this.readThrough.refusal(repository);
    parseDigest(digest);
    const unknown = () => new RegistryError('BLOB_UNKNOWN', `blob ${digest} is unknown to repository ${repository}`, { digest });
    await this.change(op, async (tx, events) => {
      const repositoryId = await tx.repositories.id(repository);
      if (repositoryId === null) throw unknown();
      await this.policies.check('blob.delete', { repository, digest, actor: op.actor ?? null }, tx);
      if (!(await tx.repositories.unlink(repositoryId, digest))) throw unknown();
      await this.policies.removed([{ repository, digest }], tx);
      events.push({ type: 'blob.deleted', repository, digest });
    });
  }

  /**
   * Cross-repository mount. With `from`, mounts when the blob is visible there and the
   * caller may read it; without, when any repository the caller may read has it.
   * Returns false when the client should fall back to a normal upload.
   */
  async mountBlob(repository: string, digest: string, from: string | undefined, canRead: CanRead, op: Operation = {}): Promise<boolean> {
    parseDigest(digest);
    if (await this.metadata.repositories.linkedBlob(repository, digest)) return true;
    const candidates = from !== undefined ? [from] : await this.metadata.repositories.linking(digest, 100);
    for (const source of candidates) {
      try {
        validateRepositoryName(source);
      } catch {
        return false;
      }
      if (!(await canRead(source))) continue;
      if (!(await this.metadata.repositories.linkedBlob(source, digest))) continue;
      return this.change(op, async (tx, events) => {
        await this.policies.check('blob.mount', { repository, digest, from: source, actor: op.actor ?? null, ip: op.ip ?? null }, tx);
        // The row lock keeps a collector from deleting the blob until this link commits.
        if (!(await tx.repositories.lockBlob(digest))) return false;
        const repositoryId = await this.ensureRepository(tx, repository, events);
        await tx.repositories.link(repositoryId, digest);
        events.push({ type: 'blob.mounted', repository, digest, from: source });
        return true;
      });
    }
    return false;
  }

  /**
   * Records a blob whose bytes were just made durable and links it into the repository,
   * ending its upload session (called by UploadService once the bytes are in place).
   */
  private async recordBlob(commit: BlobCommit): Promise<void> {
    const { repository, digest, uploadId } = commit;
    try {
      await this.change(commit, async (tx, events) => {
        await this.linkBlob(tx, events, commit);
        await tx.uploads.finish(uploadId, { repository, digest });
      });
    } catch (err) {
      // The staged bytes are gone (moved to their content address): the session cannot go on.
      if (err instanceof RegistryError && err.status < 500) await this.metadata.uploads.delete(uploadId).catch(() => undefined);
      throw err;
    }
  }

  /**
   * The commit transaction of a blob whose bytes are at their content address (an upload's, or
   * a read-through cache's): records it, locks it against a collector, asks blob.commit, links
   * it into the repository and appends `blob.committed`.
   */
  private async linkBlob(tx: MetadataTx, events: DomainEvent[], commit: Omit<BlobCommit, 'uploadId'>): Promise<void> {
    const { repository, digest, size } = commit;
    await tx.repositories.recordBlob(digest, size);
    // Gone again at once: a collector deleted the row between our insert and this lock (PostgreSQL).
    if (!(await tx.repositories.lockBlob(digest))) throw collectedMeanwhile(digest);
    const facts = {
      repository,
      digest,
      size,
      phase: 'commit' as const,
      lastAppendAt: commit.lastAppendAt,
      actor: commit.actor ?? null,
      ip: commit.ip ?? null,
      reason: commit.reason,
    };
    await this.policies.check('blob.commit', facts, tx);
    const repositoryId = await this.ensureRepository(tx, repository, events);
    await tx.repositories.link(repositoryId, digest);
    events.push({ type: 'blob.committed', repository, digest, size });
  }

  /** Asks the blob.commit policies before the bytes move (the commit transaction asks again, atomically). */
  private async checkBlob(commit: Omit<BlobCommit, 'uploadId'>): Promise<void> {
    if (!this.policies.has('blob.commit')) return;
    const { repository, digest, size, lastAppendAt } = commit;
    await this.metadata.transaction((tx) =>
      this.policies.check(
        'blob.commit',
        { repository, digest, size, lastAppendAt, phase: 'check', actor: commit.actor ?? null, reason: commit.reason },
        tx,
      ),
    );
  }

  // ── Manifests ────────────────────────────────────────────────────────────

  /** Resolves a tag or digest; MANIFEST_UNKNOWN also when the stored type is not acceptable. */
  async getManifest(repository: string, reference: string, read: ManifestRead = {}, op: Operation = {}): Promise<ManifestRecord> {
    const accept = read.accept;
    const key = isDigest(reference) ? parseDigest(reference).value : validateTag(reference);
    const manifest = this.readThrough?.covers(repository)
      ? await this.readThrough.manifest(repository, key, accept)
      : isDigest(reference)
        ? await this.metadata.manifests.get(repository, key)
        : await this.metadata.manifests.byTag(repository, key);
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
    if (this.policies.has('manifest.serve')) {
      await this.policies.check(
        'manifest.serve',
        { repository, digest: manifest.digest, mediaType: manifest.mediaType, reference, actor: op.actor ?? null },
        null,
      );
    }
    if (read.pull) this.pulls?.count(repository, manifest.digest);
    return manifest;
  }

  /**
   * Stores a manifest under `reference` (a tag, or its own digest) plus any `extraTags`.
   * Every referenced blob and child manifest must already exist in the repository.
   */
  async putManifest(
    repository: string,
    reference: string,
    payload: Buffer,
    contentType: string | undefined,
    extraTags: string[] = [],
    op: Operation = {},
  ): Promise<StoredManifest> {
    return this.storeManifest(repository, reference, payload, contentType, extraTags, op, true);
  }

  private async storeManifest(
    repository: string,
    reference: string,
    payload: Buffer,
    contentType: string | undefined,
    extraTags: string[],
    op: Operation,
    requireReferences: boolean,
  ): Promise<StoredManifest> {
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
    const subject = parsed.subject?.digest ?? null;
    const actor = op.actor ?? null;
    await this.change(op, async (tx, events) => {
      const existing = await tx.repositories.id(repository);
      const facts = { repository, digest, mediaType: parsed.mediaType, artifactType: parsed.artifactType, subject, size: payload.length };
      // The policies first, in the order a blob commit or mount asks them (their rows, a quota's
      // project row, before the links): a manifest PUT and a blob commit naming the same blob, in
      // one project, then never wait for each other crosswise (a deadlock on PostgreSQL and MySQL).
      // A caller who may not push hears that before anything about the repository's content.
      await this.policies.check(
        'manifest.put',
        { ...facts, tags, references: parsed.references, actor, ip: op.ip ?? null, reason: op.reason },
        tx,
      );
      // Every reference must already be in this repository (share-locked, so no collector removes it before commit).
      if (requireReferences) {
        const missing = existing === null ? parsed.references : await tx.manifests.missingReferences(existing, parsed.references);
        if (missing.length > 0) throw missingReferences(repository, missing);
      }
      const repositoryId = existing ?? (await this.ensureRepository(tx, repository, events));
      const targets = await tx.manifests.tagTargets(repositoryId, tags);
      for (const tag of tags) {
        const previous = targets.get(tag) ?? null;
        if (previous !== digest) await this.policies.check('tag.put', { repository, tag, digest, previous, actor, reason: op.reason }, tx);
      }
      await tx.manifests.put(
        {
          repositoryId,
          digest,
          mediaType: parsed.mediaType,
          artifactType: parsed.artifactType,
          subjectDigest: subject,
          annotations: parsed.annotations,
          size: payload.length,
          payload,
        },
        parsed.references,
      );
      events.push({ type: 'manifest.pushed', ...facts, tags });
      for (const tag of tags) {
        await tx.manifests.setTag(repositoryId, tag, digest);
        const previous = targets.get(tag);
        if (previous === undefined) events.push({ type: 'tag.created', repository, tag, digest });
        else if (previous !== digest) events.push({ type: 'tag.moved', repository, tag, digest, previous });
      }
    });
    return { digest, subjectDigest: subject, tags };
  }

  /** By digest: deletes the manifest and its tags. By tag: deletes only the tag. */
  async deleteManifest(repository: string, reference: string, op: Operation = {}): Promise<void> {
    this.requireDelete();
    if (this.readThrough?.covers(repository)) throw this.readThrough.refusal(repository);
    const unknown = () =>
      new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference} is unknown to repository ${repository}`, { reference });
    const actor = op.actor ?? null;
    const digest = isDigest(reference) ? parseDigest(reference).value : null;
    const tag = digest === null ? validateTag(reference) : null;
    await this.change(op, async (tx, events) => {
      const repositoryId = await tx.repositories.id(repository);
      if (repositoryId === null) throw unknown();
      if (tag !== null) {
        const target = (await tx.manifests.tagTargets(repositoryId, [tag])).get(tag);
        if (target === undefined) throw unknown();
        await this.policies.check('tag.delete', { repository, tag, digest: target, actor, reason: op.reason }, tx);
        await tx.manifests.deleteTag(repositoryId, tag);
        events.push({ type: 'tag.deleted', repository, tag, digest: target });
        return;
      }
      // Locked first, in the order a collector locks (manifest, then its tags and references): no deadlock.
      const locked = await tx.manifests.lock(repositoryId, digest!);
      if (!locked) throw unknown();
      await this.policies.check('manifest.delete', { repository, digest: digest!, actor, reason: op.reason }, tx);
      const references = await tx.manifests.references(repositoryId, digest!);
      const tags = await tx.manifests.delete(repositoryId, digest!);
      await this.policies.removed([{ repository, digest: digest! }], tx);
      events.push({ type: 'manifest.deleted', repository, digest: digest!, tags, references, subject: locked.subject });
    });
  }

  /**
   * Points `tag` at a manifest already stored in the repository (a rollback: `op.reason`
   * 'restore'), in one transaction that runs the `tag.put` hook and appends the tag event a
   * push would. MANIFEST_UNKNOWN when the manifest is gone (deleted or garbage-collected).
   * Returns the digest the tag pointed to before (null: it did not exist).
   */
  async tagManifest(repository: string, tag: string, digest: string, op: Operation = {}): Promise<string | null> {
    validateTag(tag);
    parseDigest(digest);
    const gone = () =>
      new RegistryError(
        'MANIFEST_UNKNOWN',
        `manifest ${digest} is no longer stored in repository ${repository} (deleted or garbage-collected)`,
        { digest },
      );
    return this.change(op, async (tx, events) => {
      const repositoryId = await tx.repositories.id(repository);
      // Locked like a delete locks it, so no collector removes the manifest before the tag commits.
      if (repositoryId === null || !(await tx.manifests.lock(repositoryId, digest))) throw gone();
      const previous = (await tx.manifests.tagTargets(repositoryId, [tag])).get(tag) ?? null;
      if (previous === digest) return previous;
      await this.policies.check('tag.put', { repository, tag, digest, previous, actor: op.actor ?? null, reason: op.reason }, tx);
      await tx.manifests.setTag(repositoryId, tag, digest);
      events.push(
        previous === null ? { type: 'tag.created', repository, tag, digest } : { type: 'tag.moved', repository, tag, digest, previous },
      );
      return previous;
    });
  }

  /**
   * Runs `work` in one transaction whose deletes go through the same policy hooks and append the
   * same events as the /v2 deletes (retention uses it). A policy's refusal of one delete is
   * returned, not thrown, so one protected tag does not stop the others. With `rollback`, the
   * transaction is rolled back once `work` returns: a dry run that asks the same policies about
   * the same rows as the real run, and so reports exactly what the real run would do.
   */
  async changeBatch<T>(op: Operation, work: (batch: ChangeBatch) => Promise<T>, options: { rollback?: boolean } = {}): Promise<T> {
    const actor = op.actor ?? null;
    const rollback = Symbol('rollback');
    let outcome: { value: T } | undefined;
    try {
      await this.change(op, async (tx, events) => {
        const batch: ChangeBatch = {
          tx,
          deleteTags: async (repository, repositoryId, tags) => {
            const refused = new Map<string, RegistryError>();
            const agreed: { tag: string; digest: string }[] = [];
            for (const { tag, digest } of tags) {
              const refusal = await refusalOf(() =>
                this.policies.check('tag.delete', { repository, tag, digest, actor, reason: op.reason }, tx),
              );
              if (refusal) refused.set(tag, refusal);
              else agreed.push({ tag, digest });
            }
            await tx.manifests.deleteTags(
              repositoryId,
              agreed.map((t) => t.tag),
            );
            for (const { tag, digest } of agreed) events.push({ type: 'tag.deleted', repository, tag, digest });
            return refused;
          },
          deleteManifest: (repository, repositoryId, digest) =>
            refusalOf(async () => {
              const locked = await tx.manifests.lock(repositoryId, digest);
              if (!locked)
                throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${digest} is unknown to repository ${repository}`, { digest });
              await this.policies.check('manifest.delete', { repository, digest, actor, reason: op.reason }, tx);
              const references = await tx.manifests.references(repositoryId, digest);
              const tags = await tx.manifests.delete(repositoryId, digest);
              await this.policies.removed([{ repository, digest }], tx);
              events.push({ type: 'manifest.deleted', repository, digest, tags, references, subject: locked.subject });
            }),
        };
        outcome = { value: await work(batch) };
        // A dry run: nothing of the work commits, its events included.
        if (options.rollback) throw rollback;
      });
    } catch (err) {
      if (err !== rollback) throw err;
    }
    return outcome!.value;
  }

  // ── Discovery ────────────────────────────────────────────────────────────

  async listTags(repository: string, limit: number | undefined, last: string | undefined): Promise<Page<string>> {
    if (!(await this.metadata.repositories.exists(repository))) {
      throw new RegistryError('NAME_UNKNOWN', `repository ${repository} is not known to the registry`, { name: repository });
    }
    // n=0 asks for nothing: an empty page with no next link, as CNCF Distribution answers.
    if (limit === 0) return { items: [], more: false };
    return this.metadata.manifests.tags(repository, { limit: limit ?? Number.MAX_SAFE_INTEGER, after: last });
  }

  async listRepositories(limit: number | undefined, last: string | undefined): Promise<Page<string>> {
    if (limit === 0) return { items: [], more: false };
    return this.metadata.repositories.list({ limit: limit ?? this.options.maxPageSize, after: last });
  }

  /** Manifests whose `subject` is `digest`, as descriptors; empty (not an error) when none. */
  async listReferrers(repository: string, digest: string, artifactType?: string): Promise<ReferrerRecord[]> {
    parseDigest(digest);
    return this.metadata.manifests.referrers(repository, digest, artifactType);
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

  /** Runs `work` in one metadata transaction and appends the events it collected, in that same transaction. */
  private async change<T>(op: Operation, work: (tx: MetadataTx, events: DomainEvent[]) => Promise<T>): Promise<T> {
    return this.metadata.transaction(async (tx) => {
      const events: DomainEvent[] = [];
      const result = await work(tx, events);
      if (events.length > 0) await tx.events.append(events, op.actor ?? null);
      return result;
    });
  }

  private async ensureRepository(tx: MetadataTx, repository: string, events: DomainEvent[]): Promise<number> {
    const { id, created } = await tx.repositories.ensure(repository);
    if (created) events.push({ type: 'repository.created', repository });
    return id;
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

function missingReferences(repository: string, missing: ManifestReference[]): RegistryError {
  const first = missing[0]!;
  return new RegistryError(
    'MANIFEST_BLOB_UNKNOWN',
    `manifest references ${first.kind === 'manifest' ? 'manifest' : 'blob'} ${first.digest}, which is not in repository ${repository}` +
      (missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''),
    { digest: first.digest, missing: missing.map((m) => m.digest) },
  );
}

function collectedMeanwhile(digest: string): RegistryError {
  return new RegistryError('BLOB_UPLOAD_INVALID', `blob ${digest} was being garbage-collected while this upload completed; push it again`, {
    digest,
  });
}

export { manifestTooBig, collectedMeanwhile };
