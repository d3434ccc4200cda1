import { type Kysely } from 'kysely';
import { schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';
import { rebuildQuotaUsage } from '../quota-store.js';

/**
 * Storage quotas (src/quotas, docs/policies.md#storage-quotas):
 * - `quota_projects`: one row per project with content or a limit: its limit in bytes (null:
 *   unlimited) and the bytes it uses, kept current in the transaction of every push, mount,
 *   delete and GC deletion. Pushes into a project lock its row, so concurrent pushes cannot
 *   overshoot the limit together.
 * - `quota_contents`: what the project's usage counts, one row per (project, digest): a blob
 *   linked into or a manifest stored in any of its repositories counts once.
 * - `manifests_digest`: finds the repositories that store a manifest digest (is it still
 *   anywhere in the project after a delete?) without a scan.
 * Usage of existing content is computed once, here.
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);

  await db.schema
    .createTable('quota_projects')
    .addColumn('project', t.key(255), (c) => c.primaryKey())
    .addColumn('limit_bytes', 'bigint')
    .addColumn('used_bytes', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('quota_contents')
    .addColumn('project', t.key(255), (c) => c.notNull())
    .addColumn('digest', t.key(255), (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('quota_contents_pk', ['project', 'digest'])
    .execute();

  await db.schema.createIndex('manifests_digest').on('manifests').column('digest').execute();

  await rebuildQuotaUsage(db, ctx.dialect, Date.now());
}
