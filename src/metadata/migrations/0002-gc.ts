import { sql, type Kysely } from 'kysely';
import { schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * Online garbage collection (see docs/gc.md):
 * - `gc_review_queue`: candidates the write paths enqueue (a manifest that lost its last tag,
 *   a link that may have lost its last reference, a blob that may have lost its last link).
 *   A row is due once `queued_at + gc.graceperiod <= now`; the collector re-checks each one.
 * - `gc_blob_deletions`: journal of blob byte deletions. The `blobs` row is deleted in the same
 *   transaction that inserts the journal row; the bytes are deleted after, then `finished_at`
 *   is set. A crash in between is finished by the next run; uploads of the same content
 *   during the deletion are refused (see KyselyMetadataStore.commitBlob).
 * - `leases`: one row per background job, held by one process at a time.
 * Existing data is enqueued once, so an upgraded registry collects its old garbage too.
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);
  const digest = t.key(255);
  const text = t.text;

  await db.schema
    .createTable('gc_review_queue')
    .addColumn('kind', t.plainKey(32), (c) => c.notNull())
    // 0 for kind 'blob' (blobs are global).
    .addColumn('repository_id', 'bigint', (c) => c.notNull())
    .addColumn('digest', digest, (c) => c.notNull())
    .addColumn('queued_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('gc_review_queue_pk', ['kind', 'repository_id', 'digest'])
    .execute();
  await db.schema.createIndex('gc_review_queue_due').on('gc_review_queue').column('queued_at').execute();

  await db.schema
    .createTable('gc_blob_deletions')
    .addColumn('digest', digest, (c) => c.primaryKey())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .execute();
  await db.schema.createIndex('gc_blob_deletions_finished').on('gc_blob_deletions').column('finished_at').execute();

  await db.schema
    .createTable('leases')
    .addColumn('name', t.plainKey(255), (c) => c.primaryKey())
    .addColumn('holder', text, (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();

  await sql`insert into gc_review_queue (kind, repository_id, digest, queued_at)
    select 'link', repository_id, digest, created_at from repository_blobs`.execute(db);
  await sql`insert into gc_review_queue (kind, repository_id, digest, queued_at)
    select 'manifest', m.repository_id, m.digest, m.created_at from manifests m
    where not exists (select 1 from tags t where t.repository_id = m.repository_id and t.manifest_digest = m.digest)`.execute(db);
  await sql`insert into gc_review_queue (kind, repository_id, digest, queued_at)
    select 'blob', 0, b.digest, b.created_at from blobs b
    where not exists (select 1 from repository_blobs rb where rb.digest = b.digest)`.execute(db);
}
