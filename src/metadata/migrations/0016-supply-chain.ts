import { type Kysely } from 'kysely';
import { schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * Supply chain on push and rescans (src/scanning/supply-chain.ts, issue 16):
 * - `supply_chain_settings`: per project, whether pushed images get an SBOM and a scan (both off
 *   unless set through the admin API).
 * - `supply_chain_queue`: the durable work queue. The outbox consumer inserts one row per pushed
 *   manifest of a project that wants it, in the transaction that moves its cursor (so exactly
 *   once, and a kill -9 after the push loses nothing); the bulk backfill inserts rows too. The
 *   leased `supply-chain` job works the due rows and deletes each once done (or marks it
 *   `failed` after its attempts).
 * - `vuln_rescans`: one row per database import that changed the database: the rescan of every
 *   artifact scanned against an older import, its total, progress and resume position.
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const pg = ctx.dialect === 'postgres';
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);

  await db.schema
    .createTable('supply_chain_settings')
    .addColumn('project', t.key(255), (c) => c.primaryKey())
    .addColumn('sbom_on_push', 'integer', (c) => c.notNull())
    .addColumn('scan_on_push', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_by', t.text)
    .execute();

  await db.schema
    .createTable('supply_chain_queue')
    .addColumn('id', t.serialId, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('repository', t.key(255), (c) => c.notNull())
    .addColumn('digest', t.key(255), (c) => c.notNull())
    .addColumn('sbom', 'integer', (c) => c.notNull())
    .addColumn('scan', 'integer', (c) => c.notNull())
    .addColumn('reason', t.plainKey(16), (c) => c.notNull())
    .addColumn('state', t.plainKey(16), (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('enqueued_at', 'bigint', (c) => c.notNull())
    .addColumn('next_at', 'bigint', (c) => c.notNull())
    .addColumn('last_error', t.text)
    .execute();
  await db.schema.createIndex('supply_chain_queue_due').on('supply_chain_queue').columns(['state', 'next_at', 'id']).execute();

  await db.schema
    .createTable('vuln_rescans')
    .addColumn('database_import', 'bigint', (c) => c.primaryKey())
    .addColumn('state', t.plainKey(16), (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .addColumn('total', 'bigint', (c) => c.notNull())
    .addColumn('scanned', 'bigint', (c) => c.notNull())
    .addColumn('failed', 'bigint', (c) => c.notNull())
    .addColumn('resume_after', t.key(255))
    .execute();
  await db.schema.createIndex('scan_results_import').on('scan_results').columns(['database_import', 'digest']).execute();
}
