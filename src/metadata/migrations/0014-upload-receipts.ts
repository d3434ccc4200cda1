import type { Kysely } from 'kysely';
import { schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * Receipts of finished upload sessions: which blob a session committed, kept for a while after
 * its row is gone. A closing `PUT ?digest=` whose answer was lost (the replica died after the
 * commit; a proxy such as nginx then re-sends the PUT, which HTTP calls idempotent, to another
 * replica) is answered 201 again from the receipt instead of 404 for a session that succeeded.
 * Written in the commit's transaction; pruned by the upload-purge job.
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);
  await db.schema
    .createTable('upload_receipts')
    .addColumn('id', t.plainKey(64), (c) => c.primaryKey())
    .addColumn('repository', t.key(255), (c) => c.notNull())
    .addColumn('digest', t.key(255), (c) => c.notNull())
    .addColumn('finished_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('upload_receipts_finished').on('upload_receipts').column('finished_at').execute();
}
