import type { Kysely } from 'kysely';
import { schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * The writer of an upload session: the request (of any worker or replica) that is appending to
 * it or committing it holds the session until `writer_until` (renewed while it works), so a
 * second request on the same session, in another process, is refused instead of writing the
 * same staging bytes at the same time (docs/deploy.md › Workers). NULL: nobody writes.
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);
  await db.schema.alterTable('uploads').addColumn('writer', t.plainKey(64)).execute();
  await db.schema.alterTable('uploads').addColumn('writer_until', 'bigint').execute();
}
