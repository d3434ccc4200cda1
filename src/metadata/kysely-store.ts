import { sql, type Kysely, type Transaction } from 'kysely';
import type { DomainEvent } from '../core/events.js';
import type {
  ManifestReads,
  ManifestRecord,
  MetadataStore,
  MetadataTx,
  Page,
  PageRequest,
  PullCount,
  ReferrerRecord,
  RepositoryReads,
  StagingState,
  UploadRecord,
  UploadFinish,
  UploadReceipt,
  UploadRows,
} from '../core/ports.js';
import { greatestOf, insertOrUpdate, proposedValue, writeTransaction, type AnyDb, type Dialect } from './dialect.js';
import { OutboxAppender, type OutboxTables } from './outbox-store.js';
import { precompiled } from './precompiled.js';
import { ManifestRows, RepositoryRows } from './registry-rows.js';
import type { Database } from './tables.js';

export type Db = AnyDb<Database>;

/**
 * The MetadataStore on Kysely: one implementation for SQLite, PostgreSQL and MySQL (what
 * differs between them is in dialect.ts). Reads that serve pulls are precompiled; writes
 * happen only through `transaction`, whose handle (KyselyTx) gives core the row adapters of
 * registry-rows.ts. Feature adapters (gc, outbox, jobs) bind to the same transaction with
 * `transactionOf(tx)`.
 */
export class KyselyMetadataStore implements MetadataStore {
  readonly repositories: RepositoryReads;
  readonly manifests: ManifestReads;
  readonly uploads: UploadRows;

  constructor(
    readonly db: Kysely<Database>,
    readonly dialect: Dialect,
    private readonly onClose: () => Promise<void> = async () => db.destroy(),
  ) {
    const hot = hotQueries(db);
    this.repositories = new RepositoryQueries(db, hot);
    this.manifests = new ManifestQueries(db, hot);
    this.uploads = new UploadQueries(db, hot);
  }

  transaction<T>(work: (tx: MetadataTx) => Promise<T>): Promise<T> {
    return writeTransaction(this.db, (trx) => work(new KyselyTx(trx, this.dialect)));
  }

  async recordPulls(counts: PullCount[], events: DomainEvent[] = []): Promise<void> {
    if (counts.length === 0) return;
    const pdb = this.db as unknown as Kysely<Database & OutboxTables>;
    await writeTransaction(pdb, async (trx) => {
      for (const c of counts) {
        const repository = await trx.selectFrom('repositories').select('id').where('name', '=', c.repository).executeTakeFirst();
        if (!repository) continue;
        const add = sql<number>`${sql.ref('pull_stats.pulls')} + ${proposedValue('pulls', this.dialect)}`;
        const last = greatestOf(sql.ref('pull_stats.last_pulled_at'), proposedValue('last_pulled_at', this.dialect), this.dialect);
        await insertOrUpdate(
          trx
            .insertInto('pull_stats')
            .values({ repository_id: Number(repository.id), digest: c.digest, pulls: c.pulls, last_pulled_at: c.lastPulledAt }),
          this.dialect,
          ['repository_id', 'digest'],
          { pulls: add, last_pulled_at: last },
        ).execute();
      }
      if (events.length > 0) await new OutboxAppender(trx as unknown as Transaction<Database>).append(events, null);
    });
  }

  async check(): Promise<void> {
    await this.db.selectFrom('repositories').select('id').limit(1).execute();
  }

  async close(): Promise<void> {
    await this.onClose();
  }
}

/** A metadata transaction: the row adapters core writes through, all on one Kysely transaction. */
export class KyselyTx implements MetadataTx {
  readonly repositories: RepositoryRows;
  readonly manifests: ManifestRows;
  readonly uploads: Pick<UploadRows, 'delete'> & UploadFinish;
  readonly events: OutboxAppender;

  constructor(
    readonly trx: Transaction<Database>,
    readonly dialect: Dialect,
  ) {
    this.repositories = new RepositoryRows(trx, dialect);
    this.manifests = new ManifestRows(trx, dialect);
    this.uploads = {
      delete: async (id) => Number((await trx.deleteFrom('uploads').where('id', '=', id).executeTakeFirst()).numDeletedRows) > 0,
      finish: async (id, { repository, digest }) => {
        await trx.deleteFrom('uploads').where('id', '=', id).execute();
        await trx.insertInto('upload_receipts').values({ id, repository, digest, finished_at: Date.now() }).execute();
      },
    };
    this.events = new OutboxAppender(trx);
  }
}

/** The Kysely transaction behind a MetadataTx, for feature adapters on the same database (gc-store, outbox-store). */
export function transactionOf(tx: MetadataTx): Transaction<Database> {
  if (!(tx instanceof KyselyTx)) throw new Error('not a transaction of the Kysely metadata store');
  return tx.trx;
}

type HotQueries = ReturnType<typeof hotQueries>;

class RepositoryQueries implements RepositoryReads {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly hot: HotQueries,
  ) {}

  async exists(repository: string): Promise<boolean> {
    return (await this.db.selectFrom('repositories').select('id').where('name', '=', repository).executeTakeFirst()) !== undefined;
  }

  async list(page: PageRequest): Promise<Page<string>> {
    let query = this.db
      .selectFrom('repositories')
      .select('name')
      .orderBy('name')
      .limit(page.limit + 1);
    if (page.after !== undefined) query = query.where('name', '>', page.after);
    return toPage(
      (await query.execute()).map((r) => r.name),
      page.limit,
    );
  }

  async blob(digest: string): Promise<{ size: number } | null> {
    const [row] = await this.hot.blob(digest);
    return row ? { size: Number(row.size) } : null;
  }

  async linkedBlob(repository: string, digest: string): Promise<{ size: number } | null> {
    const [row] = await this.hot.linkedBlob(repository, digest);
    return row ? { size: Number(row.size) } : null;
  }

  async linking(digest: string, limit: number): Promise<string[]> {
    return repositoriesLinking(this.db, digest, limit);
  }
}

class ManifestQueries implements ManifestReads {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly hot: HotQueries,
  ) {}

  async get(repository: string, digest: string): Promise<ManifestRecord | null> {
    const [row] = await this.hot.manifest(repository, digest);
    return row ? toManifest(repository, row) : null;
  }

  async byTag(repository: string, tag: string): Promise<ManifestRecord | null> {
    const [row] = await this.hot.manifestByTag(repository, tag);
    return row ? toManifest(repository, row) : null;
  }

  async tags(repository: string, page: PageRequest): Promise<Page<string>> {
    // The repository id as a scalar subquery (not a join) lets PostgreSQL walk tags_pk
    // (repository_id, name) in order from `after` and stop at the limit, instead of sorting every tag.
    let query = this.db
      .selectFrom('tags as t')
      .select('t.name')
      .where('t.repository_id', '=', (eb) => eb.selectFrom('repositories').select('id').where('name', '=', repository))
      .orderBy('t.name')
      .limit(page.limit + 1);
    if (page.after !== undefined) query = query.where('t.name', '>', page.after);
    return toPage(
      (await query.execute()).map((r) => r.name),
      page.limit,
    );
  }

  async referrers(repository: string, subjectDigest: string, artifactType?: string): Promise<ReferrerRecord[]> {
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
}

class UploadQueries implements UploadRows {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly hot: HotQueries,
  ) {}

  async create(upload: Omit<UploadRecord, 'updatedAt'>): Promise<void> {
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

  async get(id: string): Promise<UploadRecord | null> {
    const [row] = await this.hot.upload(id);
    return row ? toUpload(row) : null;
  }

  async update(id: string, expectedSize: number, size: number, staging: StagingState, writer?: string): Promise<boolean> {
    let query = this.db
      .updateTable('uploads')
      .set({
        size,
        staging: serialiseStaging(staging),
        updated_at: Date.now(),
        ...(writer === undefined ? {} : { writer: null, writer_until: null }),
      })
      .where('id', '=', id)
      .where('size', '=', expectedSize);
    if (writer !== undefined) query = query.where('writer', '=', writer);
    const result = await query.executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async claim(id: string, writer: string, now: number, until: number): Promise<boolean> {
    const result = await this.db
      .updateTable('uploads')
      .set({ writer, writer_until: until })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('writer', 'is', null), eb('writer', '=', writer), eb('writer_until', '<', now)]))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async unclaim(id: string, writer: string): Promise<void> {
    await this.db
      .updateTable('uploads')
      .set({ writer: null, writer_until: null })
      .where('id', '=', id)
      .where('writer', '=', writer)
      .execute();
  }

  async delete(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('uploads').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async listOlderThan(cutoff: Date, limit: number): Promise<UploadRecord[]> {
    // A session a request is writing right now (in any process) is not idle, whatever its last append.
    const now = Date.now();
    const rows = await this.db
      .selectFrom('uploads')
      .selectAll()
      .where('updated_at', '<', cutoff.getTime())
      .where((eb) => eb.or([eb('writer_until', 'is', null), eb('writer_until', '<', now)]))
      .orderBy('updated_at')
      .limit(limit)
      .execute();
    return rows.map(toUpload);
  }

  async receipt(id: string): Promise<UploadReceipt | null> {
    const row = await this.db.selectFrom('upload_receipts').select(['repository', 'digest']).where('id', '=', id).executeTakeFirst();
    return row ?? null;
  }

  async pruneReceipts(cutoff: Date): Promise<number> {
    const result = await this.db.deleteFrom('upload_receipts').where('finished_at', '<', cutoff.getTime()).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
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
        .innerJoin('manifests as m', (join) =>
          join.onRef('m.repository_id', '=', 't.repository_id').onRef('m.digest', '=', 't.manifest_digest'),
        )
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
