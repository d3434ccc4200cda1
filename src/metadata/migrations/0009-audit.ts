import { sql, type Kysely } from 'kysely';
import { firstPathSegment, schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * Audit query filters and export (issue 14):
 * - `project`: the project an entry belongs to, so its project admins may read it (null:
 *   system-wide). Entries written before this migration get it where the target names it
 *   (project.* and member.* actions); older deletes and denials stay system-wide.
 * - `outcome`: success, failure (a failed or rate-limited login) or denied (an authorization
 *   refused), backfilled from the action.
 * - An index per filter, each ending in `id`: the API pages newest first by id.
 *   actor/action/target are unbounded text, so MySQL indexes their first 191 characters; the
 *   resource filter is a prefix match, which PostgreSQL serves from a text_pattern_ops index
 *   whatever the database's collation.
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);
  await db.schema.alterTable('audit_log').addColumn('project', t.key(255)).execute();
  await db.schema
    .alterTable('audit_log')
    .addColumn('outcome', t.plainKey(16), (c) => c.notNull().defaultTo('success'))
    .execute();

  await sql`update audit_log set outcome = 'failure' where action in ('login.failed', 'login.ratelimited')`.execute(db);
  await sql`update audit_log set outcome = 'denied' where action = 'access.denied'`.execute(db);
  await sql`update audit_log set project = target where action like 'project.%'`.execute(db);
  await sql`update audit_log set project = ${firstPathSegment('target', ctx.dialect)} where action like 'member.%' and target like '%/%'`.execute(
    db,
  );

  for (const column of ['actor', 'action', 'target']) {
    await sql`create index ${sql.id(`audit_log_${column}`)} on audit_log (${indexed(column, ctx)}, id)`.execute(db);
  }
  await db.schema.createIndex('audit_log_project').on('audit_log').columns(['project', 'id']).execute();
  await db.schema.createIndex('audit_log_outcome').on('audit_log').columns(['outcome', 'id']).execute();
  await db.schema.createIndex('audit_log_at').on('audit_log').column('at').execute();
}

/** The index key of an unbounded text column. */
function indexed(column: string, ctx: MigrationContext) {
  if (ctx.dialect === 'mysql') return sql`${sql.ref(column)}(191)`;
  if (ctx.dialect === 'postgres' && column === 'target') return sql`${sql.ref(column)} text_pattern_ops`;
  return sql.ref(column);
}
