import { type Kysely } from 'kysely';
import { schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * Replication (docs/replication.md):
 * - `replication_policies`: push/pull policies over a registry endpoint (by name); globs and
 *   artifact types are JSON arrays.
 * - `replication_executions`: one row per run (manual, cron, event), with its totals; a
 *   pending row is picked by the `replication` job on the one replica holding its lease.
 * - `replication_tasks`: one row per artifact of an execution (copied, skipped, failed with
 *   the reason, deleted), with bytes and duration.
 * - `replication_uploads`: the upload session (Location, offset) of each blob being copied,
 *   keyed by a hash of policy, destination repository and digest: a restarted process
 *   continues the blob where it stopped.
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const pg = ctx.dialect === 'postgres';
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);

  await db.schema
    .createTable('replication_policies')
    .addColumn('id', t.serialId, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('name', t.key(64), (c) => c.notNull())
    .addColumn('description', t.text, (c) => c.notNull())
    .addColumn('direction', t.plainKey(8), (c) => c.notNull())
    .addColumn('registry', t.key(64), (c) => c.notNull())
    .addColumn('repositories', t.text, (c) => c.notNull())
    .addColumn('tags', t.text, (c) => c.notNull())
    .addColumn('artifact_types', t.text, (c) => c.notNull())
    .addColumn('only_signed', 'integer', (c) => c.notNull())
    .addColumn('dest_namespace', t.text)
    .addColumn('flatten', 'integer', (c) => c.notNull())
    .addColumn('trigger_kind', t.plainKey(16), (c) => c.notNull())
    .addColumn('cron', t.text)
    .addColumn('override', 'integer', (c) => c.notNull())
    .addColumn('deletion', 'integer', (c) => c.notNull())
    .addColumn('concurrency', 'integer', (c) => c.notNull())
    .addColumn('bandwidth', 'bigint')
    .addColumn('enabled', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('replication_policies_name').on('replication_policies').column('name').unique().execute();

  await db.schema
    .createTable('replication_executions')
    .addColumn('id', t.serialId, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('policy', t.key(64), (c) => c.notNull())
    .addColumn('trigger_kind', t.plainKey(16), (c) => c.notNull())
    .addColumn('status', t.plainKey(16), (c) => c.notNull())
    .addColumn('scope', t.text)
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('started_at', 'bigint')
    .addColumn('finished_at', 'bigint')
    .addColumn('copied', 'integer', (c) => c.notNull())
    .addColumn('skipped', 'integer', (c) => c.notNull())
    .addColumn('failed', 'integer', (c) => c.notNull())
    .addColumn('deleted', 'integer', (c) => c.notNull())
    .addColumn('bytes', 'bigint', (c) => c.notNull())
    .addColumn('error', t.text)
    .execute();
  await db.schema.createIndex('replication_executions_status').on('replication_executions').columns(['status', 'id']).execute();
  await db.schema.createIndex('replication_executions_policy').on('replication_executions').columns(['policy', 'id']).execute();

  await db.schema
    .createTable('replication_tasks')
    .addColumn('id', t.serialId, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('execution_id', 'bigint', (c) => c.notNull())
    .addColumn('source_repository', t.text, (c) => c.notNull())
    .addColumn('dest_repository', t.text, (c) => c.notNull())
    .addColumn('reference', t.text, (c) => c.notNull())
    .addColumn('digest', t.text)
    .addColumn('status', t.plainKey(16), (c) => c.notNull())
    .addColumn('reason', t.text)
    .addColumn('bytes', 'bigint', (c) => c.notNull())
    .addColumn('resumed_bytes', 'bigint', (c) => c.notNull())
    .addColumn('duration_ms', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('replication_tasks_execution').on('replication_tasks').columns(['execution_id', 'id']).execute();

  await db.schema
    .createTable('replication_uploads')
    .addColumn('upload_key', t.plainKey(64), (c) => c.primaryKey())
    .addColumn('location', t.text, (c) => c.notNull())
    .addColumn('upload_offset', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
}
