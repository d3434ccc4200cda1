import { type Kysely, type Transaction } from 'kysely';
import type {
  ManifestRecord,
  MetadataStore,
  NewManifest,
  Page,
  PageRequest,
  PutManifestResult,
  ReferrerRecord,
  StagingState,
  UploadRecord,
} from '../core/ports.js';
import type { ManifestReference } from '../core/manifest.js';
import { RegistryError } from '../core/errors.js';
import { blobDeletionOverlaps, enqueueReview, manifestDependents } from './gc-store.js';
import type { Database } from './tables.js';
import type { Dialect } from './migrate.js';
import { precompiled } from './precompiled.js';

export type Db = Kysely<Database> | Transaction<Database>;

/**
 * The MetadataStore on Kysely. One implementation serves SQLite and PostgreSQL;
 * the only dialect-specific bit is row locking (`FOR SHARE`), which SQLite does not
 * need because it serialises writers.
 */
export class KyselyMetadataStore implements MetadataStore {
  /** The lookups every pull request makes, compiled once (see precompiled.ts). */
  private readonly hot;

  constructor(
    readonly db: Kysely<Database>,
    readonly dialect: Dialect,
    private readonly onClose: () => Promise<void> = async () => db.destroy(),
  ) {
    this.hot = hotQueries(db);
  }

  async getBlob(digest: string): Promise<{ size: number } | null> {
    const [row] = await this.hot.blob(digest);
    return row ? { size: Number(row.size) } : null;
  }

  async getLinkedBlob(repository: string, digest: string): Promise<{ size: number } | null> {
    const [row] = await this.hot.linkedBlob(repository, digest);
    return row ? { size: Number(row.size) } : null;
  }

  async commitBlob(repository: string, digest: string, size: number, uploadId?: string): Promise<void> {
    const committed = await this.db.transaction().execute(async (trx) => {
      const now = Date.now();
      await trx
        .insertInto('blobs')
        .values({ digest, size, created_at: now })
        .onConflict((oc) => oc.column('digest').doNothing())
        .execute();
      if (await this.collectedDuringUpload(trx, digest, uploadId, now)) return false;
      const repoId = await ensureRepository(trx, repository);
      await link(trx, repoId, digest, now);
      await enqueueReview(trx, [{ kind: 'link', repositoryId: repoId, digest }], now);
      if (uploadId) await trx.deleteFrom('uploads').where('id', '=', uploadId).execute();
      return true;
    });
    if (!committed) {
      if (uploadId) await this.deleteUpload(uploadId);
      throw new RegistryError('BLOB_UPLOAD_INVALID', `blob ${digest} was being garbage-collected while this upload completed; push it again`, { digest });
    }
  }

  /**
   * GC bookkeeping: the upload's bytes were renamed into place before this transaction, so
   * a collector deleting the same digest's bytes at that moment may have removed them.
   * The row lock waits out a collector's deleting transaction (PostgreSQL); the journal
   * says whether a byte deletion could have overlapped the upload (see docs/gc.md).
   */
  private async collectedDuringUpload(trx: Transaction<Database>, digest: string, uploadId: string | undefined, now: number): Promise<boolean> {
    const row = await this.lockShared(trx.selectFrom('blobs').select('digest').where('digest', '=', digest)).executeTakeFirst();
    if (!row) return true;
    const upload = uploadId ? await trx.selectFrom('uploads').select('updated_at').where('id', '=', uploadId).executeTakeFirst() : undefined;
    return blobDeletionOverlaps(trx, digest, upload ? Number(upload.updated_at) : now);
  }

  async linkBlob(repository: string, digest: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const blob = await this.lockShared(trx.selectFrom('blobs').select('digest').where('digest', '=', digest)).executeTakeFirst();
      if (!blob) return false;
      const repoId = await ensureRepository(trx, repository);
      const now = Date.now();
      await link(trx, repoId, digest, now);
      await enqueueReview(trx, [{ kind: 'link', repositoryId: repoId, digest }], now);
      return true;
    });
  }

  async unlinkBlob(repository: string, digest: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const repoId = await this.repositoryId(trx, repository);
      if (repoId === null) return false;
      const result = await trx
        .deleteFrom('repository_blobs')
        .where('repository_id', '=', repoId)
        .where('digest', '=', digest)
        .executeTakeFirst();
      const unlinked = Number(result.numDeletedRows) > 0;
      if (unlinked) await enqueueReview(trx, [{ kind: 'blob', repositoryId: 0, digest }], Date.now());
      return unlinked;
    });
  }

  async repositoriesWithBlob(digest: string, limit: number): Promise<string[]> {
    return repositoriesLinking(this.db, digest, limit);
  }

  async createUpload(upload: Omit<UploadRecord, 'updatedAt'>): Promise<void> {
    const created = upload.createdAt.getTime();
    await this.db
      .insertInto('uploads')
      .values({
        id: upload.id,
        repository: upload.repository,
        size: upload.size,
        staging: serialiseStaging(upload.staging),
        created_at: created,
        updated_at: created,
      })
      .execute();
  }

  async getUpload(id: string): Promise<UploadRecord | null> {
    const [row] = await this.hot.upload(id);
    return row ? toUpload(row) : null;
  }

  async updateUpload(id: string, expectedSize: number, size: number, staging: StagingState): Promise<boolean> {
    const result = await this.db
      .updateTable('uploads')
      .set({ size, staging: serialiseStaging(staging), updated_at: Date.now() })
      .where('id', '=', id)
      .where('size', '=', expectedSize)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async deleteUpload(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('uploads').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async listUploadsOlderThan(cutoff: Date, limit: number): Promise<UploadRecord[]> {
    const rows = await this.db
      .selectFrom('uploads')
      .selectAll()
      .where('updated_at', '<', cutoff.getTime())
      .orderBy('updated_at')
      .limit(limit)
      .execute();
    return rows.map(toUpload);
  }

  async putManifest(m: NewManifest): Promise<PutManifestResult> {
    return this.db.transaction().execute(async (trx) => {
      // A refused manifest must not create its repository (it would then show in _catalog and tags/list).
      const existing = await this.repositoryId(trx, m.repository);
      if (existing === null && m.references.length > 0) return { ok: false, missing: m.references };
      const repoId = existing ?? (await ensureRepository(trx, m.repository));
      const missing = await this.missingReferences(trx, repoId, m.references);
      if (missing.length > 0) return { ok: false, missing };
      const now = Date.now();
      await trx
        .insertInto('manifests')
        .values({
          repository_id: repoId,
          digest: m.digest,
          media_type: m.mediaType,
          artifact_type: m.artifactType,
          subject_digest: m.subjectDigest,
          annotations: m.annotations ? JSON.stringify(m.annotations) : null,
          size: m.size,
          payload: m.payload,
          created_at: now,
        })
        // Re-pushing refreshes created_at, which is the GC grace period's start for untagged
        // manifests; on PostgreSQL the upsert also waits for a collector deleting the row.
        .onConflict((oc) => oc.columns(['repository_id', 'digest']).doUpdateSet({ created_at: now }))
        .execute();
      if (m.references.length > 0) {
        await trx
          .insertInto('manifest_references')
          .values(m.references.map((r) => ({ repository_id: repoId, manifest_digest: m.digest, child_digest: r.digest, kind: r.kind })))
          .onConflict((oc) => oc.columns(['repository_id', 'manifest_digest', 'child_digest']).doNothing())
          .execute();
      }
      await this.enqueueUntaggedBy(trx, repoId, m, now);
      for (const tag of m.tags) {
        await trx
          .insertInto('tags')
          .values({ repository_id: repoId, name: tag, manifest_digest: m.digest, updated_at: now })
          .onConflict((oc) => oc.columns(['repository_id', 'name']).doUpdateSet({ manifest_digest: m.digest, updated_at: now }))
          .execute();
      }
      return { ok: true };
    });
  }

  /** GC bookkeeping: the manifest itself when stored untagged, and manifests its tags move away from. */
  private async enqueueUntaggedBy(trx: Transaction<Database>, repoId: number, m: NewManifest, now: number): Promise<void> {
    const moved = m.tags.length === 0 ? [] : await trx
      .selectFrom('tags')
      .select('manifest_digest')
      .where('repository_id', '=', repoId)
      .where('name', 'in', m.tags)
      .where('manifest_digest', '<>', m.digest)
      .execute();
    const digests = [...(m.tags.length === 0 ? [m.digest] : []), ...moved.map((r) => r.manifest_digest)];
    await enqueueReview(trx, digests.map((digest) => ({ kind: 'manifest', repositoryId: repoId, digest })), now);
  }

  /** References that do not exist in the repository, checked (and share-locked on PostgreSQL) inside the transaction. */
  private async missingReferences(trx: Transaction<Database>, repoId: number, refs: ManifestReference[]): Promise<ManifestReference[]> {
    const blobDigests = refs.filter((r) => r.kind !== 'manifest').map((r) => r.digest);
    const manifestDigests = refs.filter((r) => r.kind === 'manifest').map((r) => r.digest);
    const found = new Set<string>();
    for (const chunk of chunks(blobDigests, 500)) {
      const rows = await this.lockShared(
        trx.selectFrom('repository_blobs').select('digest').where('repository_id', '=', repoId).where('digest', 'in', chunk),
      ).execute();
      for (const row of rows) found.add(row.digest);
    }
    for (const chunk of chunks(manifestDigests, 500)) {
      const rows = await this.lockShared(
        trx.selectFrom('manifests').select('digest').where('repository_id', '=', repoId).where('digest', 'in', chunk),
      ).execute();
      for (const row of rows) found.add(row.digest);
    }
    return refs.filter((r) => !found.has(r.digest));
  }

  async getManifest(repository: string, digest: string): Promise<ManifestRecord | null> {
    const [row] = await this.hot.manifest(repository, digest);
    return row ? toManifest(repository, row) : null;
  }

  async getManifestByTag(repository: string, tag: string): Promise<ManifestRecord | null> {
    const [row] = await this.hot.manifestByTag(repository, tag);
    return row ? toManifest(repository, row) : null;
  }

  async deleteManifest(repository: string, digest: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const repoId = await this.repositoryId(trx, repository);
      if (repoId === null) return false;
      // Lock the manifest before its tags and references, in the order the collector locks them (no deadlock).
      const manifest = this.dialect === 'postgres'
        ? await trx.selectFrom('manifests').select('digest').where('repository_id', '=', repoId).where('digest', '=', digest).forUpdate().executeTakeFirst()
        : true;
      if (!manifest) return false;
      await enqueueReview(trx, await manifestDependents(trx, repoId, digest), Date.now());
      await trx.deleteFrom('tags').where('repository_id', '=', repoId).where('manifest_digest', '=', digest).execute();
      await trx.deleteFrom('manifest_references').where('repository_id', '=', repoId).where('manifest_digest', '=', digest).execute();
      const result = await trx.deleteFrom('manifests').where('repository_id', '=', repoId).where('digest', '=', digest).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
  }

  async deleteTag(repository: string, tag: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const repoId = await this.repositoryId(trx, repository);
      if (repoId === null) return false;
      const deleted = await trx.deleteFrom('tags').where('repository_id', '=', repoId).where('name', '=', tag).returning('manifest_digest').executeTakeFirst();
      if (deleted) await enqueueReview(trx, [{ kind: 'manifest', repositoryId: repoId, digest: deleted.manifest_digest }], Date.now());
      return deleted !== undefined;
    });
  }

  async listTags(repository: string, page: PageRequest): Promise<Page<string>> {
    // The repository id as a scalar subquery (not a join) lets PostgreSQL walk tags_pk
    // (repository_id, name) in order from `after` and stop at the limit, instead of sorting every tag.
    let query = this.db
      .selectFrom('tags as t')
      .select('t.name')
      .where('t.repository_id', '=', (eb) => eb.selectFrom('repositories').select('id').where('name', '=', repository))
      .orderBy('t.name')
      .limit(page.limit + 1);
    if (page.after !== undefined) query = query.where('t.name', '>', page.after);
    return toPage((await query.execute()).map((r) => r.name), page.limit);
  }

  async listRepositories(page: PageRequest): Promise<Page<string>> {
    let query = this.db.selectFrom('repositories').select('name').orderBy('name').limit(page.limit + 1);
    if (page.after !== undefined) query = query.where('name', '>', page.after);
    return toPage((await query.execute()).map((r) => r.name), page.limit);
  }

  async repositoryExists(repository: string): Promise<boolean> {
    return (await this.repositoryId(this.db, repository)) !== null;
  }

  async listReferrers(repository: string, subjectDigest: string, artifactType?: string): Promise<ReferrerRecord[]> {
    let query = this.db
      .selectFrom('manifests as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select(['m.digest', 'm.media_type', 'm.artifact_type', 'm.size', 'm.annotations'])
      .where('r.name', '=', repository)
      .where('m.subject_digest', '=', subjectDigest)
      .orderBy('m.digest');
    if (artifactType !== undefined) query = query.where('m.artifact_type', '=', artifactType);
    const rows = await query.execute();
    return rows.map((row) => ({
      digest: row.digest,
      mediaType: row.media_type,
      artifactType: row.artifact_type,
      size: Number(row.size),
      annotations: row.annotations ? (JSON.parse(row.annotations) as Record<string, string>) : null,
    }));
  }

  async check(): Promise<void> {
    await this.db.selectFrom('repositories').select('id').limit(1).execute();
  }

  async close(): Promise<void> {
    await this.onClose();
  }

  private async repositoryId(db: Db, name: string): Promise<number | null> {
    const row = await db.selectFrom('repositories').select('id').where('name', '=', name).executeTakeFirst();
    return row ? Number(row.id) : null;
  }

  private lockShared<Q extends { forShare(): Q }>(query: Q): Q {
    return this.dialect === 'postgres' ? query.forShare() : query;
  }
}

async function ensureRepository(trx: Transaction<Database>, name: string): Promise<number> {
  await trx
    .insertInto('repositories')
    .values({ name, created_at: Date.now() })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  const row = await trx.selectFrom('repositories').select('id').where('name', '=', name).executeTakeFirstOrThrow();
  return Number(row.id);
}

async function link(trx: Transaction<Database>, repositoryId: number, digest: string, now: number): Promise<void> {
  await trx
    .insertInto('repository_blobs')
    .values({ repository_id: repositoryId, digest, created_at: now })
    .onConflict((oc) => oc.columns(['repository_id', 'digest']).doUpdateSet({ created_at: now }))
    .execute();
}

/** Names of the repositories that link `digest`, in name order (shared with berth fsck). */
export async function repositoriesLinking(db: Db, digest: string, limit?: number): Promise<string[]> {
  let query = db
    .selectFrom('repository_blobs as rb')
    .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
    .select('r.name')
    .where('rb.digest', '=', digest)
    .orderBy('r.name');
  if (limit !== undefined) query = query.limit(limit);
  return (await query.execute()).map((r) => r.name);
}

function toPage<T>(rows: T[], limit: number): Page<T> {
  return rows.length > limit ? { items: rows.slice(0, limit), more: true } : { items: rows, more: false };
}

function* chunks<T>(items: T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

function serialiseStaging(staging: StagingState): string | null {
  return staging === undefined || staging === null ? null : JSON.stringify(staging);
}

function hotQueries(db: Kysely<Database>) {
  return {
    blob: precompiled(db, (digest: string) => db.selectFrom('blobs').select('size').where('digest', '=', digest)),
    linkedBlob: precompiled(db, (repository: string, digest: string) =>
      db
        .selectFrom('repository_blobs as rb')
        .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
        .innerJoin('blobs as b', 'b.digest', 'rb.digest')
        .select('b.size')
        .where('r.name', '=', repository)
        .where('rb.digest', '=', digest),
    ),
    upload: precompiled(db, (id: string) => db.selectFrom('uploads').selectAll().where('id', '=', id)),
    manifest: precompiled(db, (repository: string, digest: string) =>
      db
        .selectFrom('manifests as m')
        .innerJoin('repositories as r', 'r.id', 'm.repository_id')
        .selectAll('m')
        .where('r.name', '=', repository)
        .where('m.digest', '=', digest),
    ),
    manifestByTag: precompiled(db, (repository: string, tag: string) =>
      db
        .selectFrom('tags as t')
        .innerJoin('repositories as r', 'r.id', 't.repository_id')
        .innerJoin('manifests as m', (join) => join.onRef('m.repository_id', '=', 't.repository_id').onRef('m.digest', '=', 't.manifest_digest'))
        .selectAll('m')
        .where('r.name', '=', repository)
        .where('t.name', '=', tag),
    ),
  };
}

function toUpload(row: Database['uploads']): UploadRecord {
  return {
    id: row.id,
    repository: row.repository,
    size: Number(row.size),
    staging: row.staging === null ? null : (JSON.parse(row.staging) as StagingState),
    createdAt: new Date(Number(row.created_at)),
    updatedAt: new Date(Number(row.updated_at)),
  };
}

function toManifest(repository: string, row: Database['manifests']): ManifestRecord {
  return {
    repository,
    digest: row.digest,
    mediaType: row.media_type,
    artifactType: row.artifact_type,
    subjectDigest: row.subject_digest,
    annotations: row.annotations ? (JSON.parse(row.annotations) as Record<string, string>) : null,
    size: Number(row.size),
    payload: Buffer.isBuffer(row.payload) ? row.payload : Buffer.from(row.payload),
    createdAt: new Date(Number(row.created_at)),
  };
}
