import { type Kysely } from 'kysely';
import { foreignKeys, schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * Immutable tags and tag history (src/tags, docs/policies.md):
 * - `immutable_rules`: per project, a repository glob × a tag glob, each `matches` or `excludes`.
 * - `immutable_rule_versions`: a counter per project, bumped with every rule change, that each
 *   replica compares with its cached rules at most once a second.
 * - `tag_history`: every tag created, moved or deleted (null old digest: created; null new
 *   digest: deleted), written in the change's transaction; `via` is push, delete, restore or retention.
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const pg = ctx.dialect === 'postgres';
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);
  const fk = foreignKeys(ctx.dialect);

  await db.schema
    .createTable('immutable_rules')
    .addColumn('id', t.serialId, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('project', t.key(255), (c) => fk.column(c.notNull(), 'project', 'projects.name', 'cascade'))
    .addColumn('repository_pattern', t.text, (c) => c.notNull())
    .addColumn('repository_decoration', t.plainKey(16), (c) => c.notNull())
    .addColumn('tag_pattern', t.text, (c) => c.notNull())
    .addColumn('tag_decoration', t.plainKey(16), (c) => c.notNull())
    .addColumn('disabled', 'integer', (c) => c.notNull())
    .addColumn('created_by', t.text)
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .$call(fk.table('immutable_rules'))
    .execute();
  await db.schema.createIndex('immutable_rules_project').on('immutable_rules').columns(['project', 'id']).execute();

  await db.schema
    .createTable('immutable_rule_versions')
    .addColumn('project', t.key(255), (c) => c.primaryKey())
    .addColumn('version', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('tag_history')
    .addColumn('id', t.serialId, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('repository_id', 'bigint', (c) => fk.column(c.notNull(), 'repository_id', 'repositories.id', 'cascade'))
    .addColumn('tag', t.key(128), (c) => c.notNull())
    .addColumn('old_digest', t.key(255))
    .addColumn('new_digest', t.key(255))
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('actor', t.text)
    .addColumn('via', t.plainKey(16), (c) => c.notNull())
    .$call(fk.table('tag_history'))
    .execute();
  // Pages of one repository (optionally one tag), newest first; GC's look-up of when a tag last
  // left a digest (tags-store.ts lastPointedAt: no new_digest index is needed); pruning by age.
  // Each index is written on every push: no more than these.
  await db.schema.createIndex('tag_history_repository').on('tag_history').columns(['repository_id', 'id']).execute();
  await db.schema.createIndex('tag_history_tag').on('tag_history').columns(['repository_id', 'tag', 'id']).execute();
  await db.schema.createIndex('tag_history_old').on('tag_history').columns(['repository_id', 'old_digest', 'at']).execute();
  await db.schema.createIndex('tag_history_at').on('tag_history').column('at').execute();
}
