import { sql, type Kysely, type Transaction } from 'kysely';
import type { MetadataTx } from '../core/ports.js';
import type {
  BlobDeletion,
  BlobFacts,
  Candidate,
  CandidateKind,
  GcMetadata,
  GcQueries,
  GcTxQueries,
  LinkFacts,
  ManifestFacts,
  ProjectUsage,
  RepositoryUsage,
  ReviewRequest,
  StorageUsage,
  StorageUsageQueries,
  WaitingCandidates,
} from '../gc/ports.js';
import type { LeaseStore } from '../jobs/leases.js';
import { KyselyTx } from './kysely-store.js';
import type { Database } from './tables.js';
import { lastPointedAt } from './tags-store.js';
import { firstPathSegment, insertOrUpdate, insertOrUpdateIf, lockForUpdate, writeTransaction, type Dialect } from './dialect.js';

/** Row types of migrations/0002-gc.ts. */
export interface GcTables {
  gc_review_queue: { kind: string; repository_id: number; digest: string; queued_at: number };
  gc_blob_deletions: { digest: string; size: number; started_at: number; finished_at: number | null };
  leases: { name: string; holder: string; expires_at: number };
}

type GcDatabase = Database & GcTables;
type Db = Kysely<GcDatabase>;

/**
 * Uploads whose last append is this close to a finished byte deletion of the same digest
 * are refused. It covers clock differences between replicas (NTP keeps them far below it);
 * larger would refuse the immediate re-push of content a collector has just deleted.
 */
export const CLOCK_SKEW_MARGIN_MS = 100;

/**
 * Adds (or moves to `queuedAt`) review-queue rows. Called by the review-queue event consumer
 * (in the transaction that moves its cursor) and by the collector's cascades.
 */
async function enqueueReview(
  db: Kysely<Database> | Transaction<Database>,
  dialect: Dialect,
  requests: ReviewRequest[],
  queuedAt: number,
): Promise<void> {
  const gdb = db as unknown as Db;
  const unique = new Map(requests.map((r) => [`${r.kind} ${r.repositoryId} ${r.digest}`, r]));
  const rows = [...unique.values()].map((r) => ({ kind: r.kind, repository_id: r.repositoryId, digest: r.digest, queued_at: queuedAt }));
  for (let i = 0; i < rows.length; i += 500) {
    await insertOrUpdate(gdb.insertInto('gc_review_queue').values(rows.slice(i, i + 500)), dialect, ['kind', 'repository_id', 'digest'], {
      queued_at: queuedAt,
    }).execute();
  }
}

/** What deleting a manifest may turn into garbage: its blobs, its child manifests and its referrers. */
async function manifestDependents(
  db: Kysely<Database> | Transaction<Database>,
  repositoryId: number,
  digest: string,
): Promise<ReviewRequest[]> {
  const refs = await db
    .selectFrom('manifest_references')
    .select(['child_digest', 'kind'])
    .where('repository_id', '=', repositoryId)
    .where('manifest_digest', '=', digest)
    .execute();
  const referrers = await db
    .selectFrom('manifests')
    .select('digest')
    .where('repository_id', '=', repositoryId)
    .where('subject_digest', '=', digest)
    .execute();
  return [
    ...refs.map((r): ReviewRequest => ({ kind: r.kind === 'manifest' ? 'manifest' : 'link', repositoryId, digest: r.child_digest })),
    ...referrers.map((r): ReviewRequest => ({ kind: 'manifest', repositoryId, digest: r.digest })),
  ];
}

/**
 * True when `digest`'s bytes may be deleted by a collector concurrently with an upload
 * of the same content whose last append was at `lastAppendAt`: a journalled deletion
 * that is unfinished, or finished after that append (the upload's rename may have
 * landed before the delete). The caller must then refuse to record the blob.
 */
async function blobDeletionOverlaps(trx: Kysely<Database> | Transaction<Database>, digest: string, lastAppendAt: number): Promise<boolean> {
  const row = await (trx as unknown as Transaction<GcDatabase>)
    .selectFrom('gc_blob_deletions')
    .select('finished_at')
    .where('digest', '=', digest)
    .executeTakeFirst();
  if (!row) return false;
  return row.finished_at === null || Number(row.finished_at) >= lastAppendAt - CLOCK_SKEW_MARGIN_MS;
}

/** GcQueries on one Kysely transaction. */
class KyselyGcQueries implements GcQueries {
  private metadataTx: MetadataTx | undefined;

  constructor(
    private readonly db: Db,
    private readonly dialect: Dialect,
    private readonly tagHistoryWindowMs: number | null,
  ) {}

  get tx(): MetadataTx {
    // Built on first use: only runs that delete something need it.
    return (this.metadataTx ??= new KyselyTx(this.db as unknown as Transaction<Database>, this.dialect));
  }

  async dueCandidates(cutoff: number, limit: number): Promise<Candidate[]> {
    const rows = await this.db
      .selectFrom('gc_review_queue as q')
      .leftJoin('repositories as r', 'r.id', 'q.repository_id')
      .select(['q.kind', 'q.repository_id', 'q.digest', 'q.queued_at', 'r.name'])
      .where('q.queued_at', '<=', cutoff)
      .orderBy('q.queued_at')
      .orderBy('q.kind')
      .orderBy('q.repository_id')
      .orderBy('q.digest')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      kind: r.kind as CandidateKind,
      repositoryId: Number(r.repository_id),
      repository: r.name ?? '',
      digest: r.digest,
      queuedAt: Number(r.queued_at),
    }));
  }

  async waiting(cutoff: number): Promise<WaitingCandidates> {
    const row = await this.db
      .selectFrom('gc_review_queue')
      .select((eb) => [eb.fn.countAll<number>().as('count'), eb.fn.min('queued_at').as('oldest'), eb.fn.max('queued_at').as('newest')])
      .where('queued_at', '>', cutoff)
      .executeTakeFirstOrThrow();
    const at = (value: unknown) => (value === null || value === undefined ? null : Number(value));
    return { count: Number(row.count), oldestQueuedAt: at(row.oldest), newestQueuedAt: at(row.newest) };
  }

  async dequeue(c: Candidate): Promise<void> {
    await this.db
      .deleteFrom('gc_review_queue')
      .where('kind', '=', c.kind)
      .where('repository_id', '=', c.repositoryId)
      .where('digest', '=', c.digest)
      .execute();
  }

  async requeue(c: Candidate, queuedAt: number): Promise<void> {
    await enqueueReview(this.db as unknown as Kysely<Database>, this.dialect, [c], queuedAt);
  }

  async lockManifest(repositoryId: number, digest: string): Promise<ManifestFacts | null> {
    const row = await this.forUpdate(
      this.db
        .selectFrom('manifests')
        .select(['created_at', 'subject_digest'])
        .where('repository_id', '=', repositoryId)
        .where('digest', '=', digest),
    ).executeTakeFirst();
    if (!row) return null;
    // Separate statements after the lock: on PostgreSQL each sees everything committed before it.
    const tag = await this.db
      .selectFrom('tags')
      .select('name')
      .where('repository_id', '=', repositoryId)
      .where('manifest_digest', '=', digest)
      .limit(1)
      .executeTakeFirst();
    const parent = await this.db
      .selectFrom('manifest_references')
      .select('manifest_digest')
      .where('repository_id', '=', repositoryId)
      .where('child_digest', '=', digest)
      .where('kind', '=', 'manifest')
      .limit(1)
      .executeTakeFirst();
    const subject = row.subject_digest
      ? await this.db
          .selectFrom('manifests')
          .select('digest')
          .where('repository_id', '=', repositoryId)
          .where('digest', '=', row.subject_digest)
          .executeTakeFirst()
      : undefined;
    return {
      createdAt: Number(row.created_at),
      tagged: tag !== undefined,
      childOfManifest: parent !== undefined,
      subjectDigest: row.subject_digest,
      subjectExists: subject !== undefined,
      retainedUntil: await this.retainedUntil(repositoryId, digest),
    };
  }

  /** The end of the tag history window for the last time a tag pointed to the manifest (null: no protection, or no tag ever did). */
  private async retainedUntil(repositoryId: number, digest: string): Promise<number | null> {
    if (this.tagHistoryWindowMs === null) return null;
    const at = await lastPointedAt(this.db as unknown as Kysely<Database>, repositoryId, digest);
    return at === null ? null : at + this.tagHistoryWindowMs;
  }

  async deleteManifest(repositoryId: number, digest: string, queuedAt: number): Promise<void> {
    const dependents = await manifestDependents(this.db as unknown as Kysely<Database>, repositoryId, digest);
    await this.db
      .deleteFrom('manifest_references')
      .where('repository_id', '=', repositoryId)
      .where('manifest_digest', '=', digest)
      .execute();
    await this.db.deleteFrom('manifests').where('repository_id', '=', repositoryId).where('digest', '=', digest).execute();
    await enqueueReview(this.db as unknown as Kysely<Database>, this.dialect, dependents, queuedAt);
  }

  async lockLink(repositoryId: number, digest: string): Promise<LinkFacts | null> {
    const row = await this.forUpdate(
      this.db.selectFrom('repository_blobs').select('created_at').where('repository_id', '=', repositoryId).where('digest', '=', digest),
    ).executeTakeFirst();
    if (!row) return null;
    const ref = await this.db
      .selectFrom('manifest_references')
      .select('manifest_digest')
      .where('repository_id', '=', repositoryId)
      .where('child_digest', '=', digest)
      .limit(1)
      .executeTakeFirst();
    return { createdAt: Number(row.created_at), referenced: ref !== undefined };
  }

  async deleteLink(repositoryId: number, digest: string, queuedAt: number): Promise<void> {
    await this.db.deleteFrom('repository_blobs').where('repository_id', '=', repositoryId).where('digest', '=', digest).execute();
    await enqueueReview(this.db as unknown as Kysely<Database>, this.dialect, [{ kind: 'blob', repositoryId: 0, digest }], queuedAt);
  }

  async lockBlob(digest: string): Promise<BlobFacts | null> {
    const row = await this.forUpdate(this.db.selectFrom('blobs').select('size').where('digest', '=', digest)).executeTakeFirst();
    if (!row) return null;
    const link = await this.db
      .selectFrom('repository_blobs')
      .select('repository_id')
      .where('digest', '=', digest)
      .limit(1)
      .executeTakeFirst();
    return { size: Number(row.size), linked: link !== undefined };
  }

  async deleteBlobRow(digest: string, size: number, now: number): Promise<void> {
    await this.db.deleteFrom('blobs').where('digest', '=', digest).execute();
    await this.db
      .insertInto('gc_blob_deletions')
      .values({ digest, size, started_at: now, finished_at: null })
      .$call((q) => insertOrUpdate(q, this.dialect, ['digest'], { size, started_at: now, finished_at: null }))
      .execute();
  }

  private forUpdate<Q extends { forUpdate(): Q }>(query: Q): Q {
    return lockForUpdate(query, this.dialect);
  }
}

/** The GcMetadata and LeaseStore ports plus storage accounting, on the registry's Kysely database. */
export class KyselyGcStore implements GcMetadata, LeaseStore, StorageUsageQueries {
  private readonly db: Db;
  readonly batchTransactions: boolean;

  constructor(
    db: Kysely<Database>,
    private readonly dialect: Dialect,
    /** Binds a MetadataTx of the same database to its Kysely transaction. */
    private readonly transactionOf: (tx: MetadataTx) => Transaction<Database>,
    /** Manifests a tag pointed to this recently are kept (`tags.history.protectgc`); null: not. */
    private readonly tagHistoryWindowMs: number | null = null,
  ) {
    this.db = db as unknown as Db;
    this.batchTransactions = dialect === 'sqlite';
  }

  within(tx: MetadataTx): GcTxQueries {
    const trx = this.transactionOf(tx);
    return {
      enqueue: (requests, queuedAt) => enqueueReview(trx, this.dialect, requests, queuedAt),
      referrersOf: async (repositoryId, digest) =>
        (
          await trx
            .selectFrom('manifests')
            .select('digest')
            .where('repository_id', '=', repositoryId)
            .where('subject_digest', '=', digest)
            .execute()
        ).map((r) => r.digest),
      deletionOverlaps: (digest, lastAppendAt) => blobDeletionOverlaps(trx, digest, lastAppendAt),
    };
  }

  async transaction<T>(work: (queries: GcQueries) => Promise<T>): Promise<T> {
    // A write transaction from the first statement (BEGIN IMMEDIATE on SQLite, see sqlite.ts):
    // a deferred one that reads then writes fails with SQLITE_BUSY when another process
    // (the server next to `berth gc`) committed in between.
    return writeTransaction(this.db, (trx) => work(new KyselyGcQueries(trx, this.dialect, this.tagHistoryWindowMs)));
  }

  async rolledBack<T>(work: (queries: GcQueries) => Promise<T>): Promise<T> {
    const rollback = Symbol('rollback');
    let value: T | undefined;
    try {
      await this.transaction(async (queries) => {
        value = await work(queries);
        throw rollback;
      });
    } catch (err) {
      if (err !== rollback) throw err;
    }
    return value as T;
  }

  async pendingBlobDeletions(limit: number): Promise<BlobDeletion[]> {
    const rows = await this.db
      .selectFrom('gc_blob_deletions')
      .select(['digest', 'size'])
      .where('finished_at', 'is', null)
      .orderBy('started_at')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ digest: r.digest, size: Number(r.size) }));
  }

  async blobRowExists(digest: string): Promise<boolean> {
    return (await this.db.selectFrom('blobs').select('digest').where('digest', '=', digest).executeTakeFirst()) !== undefined;
  }

  async finishBlobDeletions(digests: string[], now: number): Promise<void> {
    for (let i = 0; i < digests.length; i += 500) {
      await this.db
        .updateTable('gc_blob_deletions')
        .set({ finished_at: now })
        .where('digest', 'in', digests.slice(i, i + 500))
        .execute();
    }
  }

  async pruneBlobDeletions(before: number): Promise<number> {
    const result = await this.db.deleteFrom('gc_blob_deletions').where('finished_at', '<', before).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async queueSize(cutoff: number): Promise<{ total: number; due: number }> {
    const row = await this.db
      .selectFrom('gc_review_queue')
      .select((eb) => [
        eb.fn.countAll<number>().as('total'),
        eb.fn.sum<number>(eb.case().when('queued_at', '<=', cutoff).then(1).else(0).end()).as('due'),
      ])
      .executeTakeFirstOrThrow();
    return { total: Number(row.total), due: Number(row.due ?? 0) };
  }

  // ── Leases ───────────────────────────────────────────────────────────────

  async tryAcquire(name: string, holder: string, now: number, expiresAt: number): Promise<boolean> {
    await this.db
      .insertInto('leases')
      .values({ name, holder, expires_at: expiresAt })
      .$call((q) =>
        insertOrUpdateIf(q, this.dialect, ['name'], { holder, expires_at: expiresAt }, sql`${sql.ref('leases.expires_at')} < ${now}`),
      )
      .execute();
    return (await this.holder(name, now)) === holder;
  }

  async renew(name: string, holder: string, expiresAt: number): Promise<boolean> {
    const result = await this.db
      .updateTable('leases')
      .set({ expires_at: expiresAt })
      .where('name', '=', name)
      .where('holder', '=', holder)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async release(name: string, holder: string): Promise<void> {
    await this.db.deleteFrom('leases').where('name', '=', name).where('holder', '=', holder).execute();
  }

  async holder(name: string, now: number): Promise<string | null> {
    const row = await this.db
      .selectFrom('leases')
      .select('holder')
      .where('name', '=', name)
      .where('expires_at', '>=', now)
      .executeTakeFirst();
    return row?.holder ?? null;
  }

  // ── Storage accounting ───────────────────────────────────────────────────

  /**
   * Computed on demand: one pass over manifest_references (its (repository_id, child_digest)
   * index covers the DISTINCT) with an index lookup in blobs per reference. Child manifests
   * drop out in the join (manifests are not blob rows). Cost is linear in references:
   * bench/gc-scaling.ts measures it. The per-repository form only reads that repository's rows.
   */
  async storageUsage(): Promise<StorageUsage> {
    const perRepository = await sql<{ repository: string; blobs: number; bytes: number }>`
      select r.name as repository, x.blobs, x.bytes
      from (select d.repository_id, count(*) as blobs, coalesce(sum(b.size), 0) as bytes
            from (select distinct repository_id, child_digest from manifest_references) d
            join blobs b on b.digest = d.child_digest
            group by d.repository_id) x
      join repositories r on r.id = x.repository_id
      order by r.name`.execute(this.db);
    const project = firstPathSegment('r.name', this.dialect);
    const perProject = await sql<{ project: string; blobs: number; bytes: number }>`
      select p.project, count(*) as blobs, coalesce(sum(b.size), 0) as bytes
      from (select distinct ${project} as project, mr.child_digest
            from manifest_references mr join repositories r on r.id = mr.repository_id) p
      join blobs b on b.digest = p.child_digest
      group by p.project order by p.project`.execute(this.db);
    const total = await this.db
      .selectFrom('blobs')
      .select((eb) => [eb.fn.countAll<number>().as('blobs'), eb.fn.coalesce(eb.fn.sum<number>('size'), sql<number>`0`).as('bytes')])
      .executeTakeFirstOrThrow();
    return {
      repositories: perRepository.rows.map(toUsage<RepositoryUsage>),
      projects: perProject.rows.map(toUsage<ProjectUsage>),
      total: { blobs: Number(total.blobs), bytes: Number(total.bytes) },
    };
  }

  async repositoryUsage(repository: string): Promise<RepositoryUsage | null> {
    const repo = await this.db.selectFrom('repositories').select('id').where('name', '=', repository).executeTakeFirst();
    if (!repo) return null;
    const row = await sql<{ blobs: number; bytes: number }>`
      select count(*) as blobs, coalesce(sum(b.size), 0) as bytes
      from (select distinct child_digest from manifest_references where repository_id = ${repo.id}) x
      join blobs b on b.digest = x.child_digest`.execute(this.db);
    const usage = row.rows[0];
    return { repository, blobs: Number(usage?.blobs ?? 0), bytes: Number(usage?.bytes ?? 0) };
  }
}

function toUsage<T extends { blobs: number; bytes: number }>(row: T): T {
  return { ...row, blobs: Number(row.blobs), bytes: Number(row.bytes) };
}
