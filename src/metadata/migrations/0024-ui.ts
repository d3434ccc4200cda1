import type { Kysely } from 'kysely';
import { foreignKeys, schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * The web UI (issue 18, docs/api.md#web-ui-api):
 * - `ui_sessions`: browser sessions, shared by every replica. The session id is kept only as its
 *   sha256 (`id_hash`); the CSRF token the browser must echo on mutating calls is kept as given.
 *   `expires_at` is the absolute end (ui.sessionttl), `last_seen_at` drives the idle expiry
 *   (ui.sessionidle). Sessions are deleted with their user.
 * - `tags_updated`: a repository's tags by push time (the UI's sort=pushed, keyset-paginated
 *   with the name as tie-breaker), so a page of a repository holding 20,000 tags reads ~50 rows.
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);
  const fk = foreignKeys(ctx.dialect);
  await db.schema
    .createTable('ui_sessions')
    .addColumn('id_hash', t.plainKey(64), (c) => c.primaryKey())
    .addColumn('username', t.key(255), (c) => fk.column(c.notNull(), 'username', 'users.username', 'cascade'))
    .addColumn('csrf_token', t.plainKey(64), (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
    .$call(fk.table('ui_sessions'))
    .execute();
  await db.schema.createIndex('ui_sessions_username').on('ui_sessions').column('username').execute();
  await db.schema.createIndex('ui_sessions_expires').on('ui_sessions').column('expires_at').execute();
  await db.schema.createIndex('tags_updated').on('tags').columns(['repository_id', 'updated_at', 'name']).execute();
}
