import { type Kysely } from 'kysely';
import { schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * The core seams (docs/architecture.md):
 * - `events`: the durable outbox. Core appends a row per domain event in the transaction of
 *   the change; `seq` is null until the sequencer positions it (see src/events/ports.ts for why).
 * - `event_cursors`: each consumer's position, plus the sequencer's counter (`$sequence`,
 *   created by the first sequencing so a fresh database holds no rows).
 * - `pull_stats`: pull counts per manifest, flushed in batches from memory.
 * - `job_runs`: the history of background job runs (GET /api/v1/jobs, `berth jobs`).
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const pg = ctx.dialect === 'postgres';
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);

  await db.schema
    .createTable('events')
    .addColumn('id', t.serialId, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('seq', 'bigint')
    .addColumn('type', t.plainKey(64), (c) => c.notNull())
    .addColumn('repository', t.key(255))
    .addColumn('actor', t.text)
    .addColumn('payload', t.text, (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('events_seq').on('events').column('seq').unique().execute();

  await db.schema
    .createTable('event_cursors')
    .addColumn('name', t.plainKey(128), (c) => c.primaryKey())
    .addColumn('position', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('pull_stats')
    .addColumn('repository_id', 'bigint', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
    .addColumn('digest', t.key(255), (c) => c.notNull())
    .addColumn('pulls', 'bigint', (c) => c.notNull())
    .addColumn('last_pulled_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('pull_stats_pk', ['repository_id', 'digest'])
    .execute();

  await db.schema
    .createTable('job_runs')
    .addColumn('id', t.serialId, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('job', t.key(128), (c) => c.notNull())
    .addColumn('holder', t.text, (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .addColumn('outcome', t.plainKey(16), (c) => c.notNull())
    .addColumn('summary', t.text)
    .execute();
  await db.schema.createIndex('job_runs_job').on('job_runs').columns(['job', 'started_at']).execute();
  await db.schema.createIndex('job_runs_started').on('job_runs').column('started_at').execute();
}
