import type { Kysely } from 'kysely';
import { schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * Retention policies (src/retention, docs/policies.md#retention):
 * - `retention_policies`: one policy per project: its rules (JSON), its cron schedule (null: on
 *   demand only) and when the scheduler runs it next (`next_run_at`, null without a schedule).
 * - `retention_runs`: each run, dry or real: who started it, its outcome, its totals and the full
 *   report (JSON: per repository, the tags kept and why, removed, refused).
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const pg = ctx.dialect === 'postgres';
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);

  await db.schema
    .createTable('retention_policies')
    .addColumn('project', t.key(255), (c) => c.primaryKey())
    .addColumn('rules', t.text, (c) => c.notNull())
    .addColumn('schedule', t.text)
    .addColumn('next_run_at', 'bigint')
    .addColumn('updated_by', t.text)
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('retention_policies_due').on('retention_policies').column('next_run_at').execute();

  await db.schema
    .createTable('retention_runs')
    .addColumn('id', t.serialId, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('project', t.key(255), (c) => c.notNull())
    .addColumn('dry_run', 'integer', (c) => c.notNull())
    .addColumn('trigger_kind', t.plainKey(16), (c) => c.notNull())
    .addColumn('actor', t.text)
    .addColumn('status', t.plainKey(16), (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .addColumn('summary', t.text)
    .addColumn('report', t.text)
    .execute();
  await db.schema.createIndex('retention_runs_project').on('retention_runs').columns(['project', 'id']).execute();
}
