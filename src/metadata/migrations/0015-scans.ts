import { type Kysely } from 'kysely';
import { schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * Vulnerability scan results per artifact (src/scanning, issue 16): `scan_results`, one row
 * per manifest digest (the same content scans the same in every repository), replaced by each
 * new scan: its status (complete or failed), when, the packages it matched, the counts by
 * severity and the findings as JSON, and the import run of the database it used (to rescan
 * when the database changes).
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);
  await db.schema
    .createTable('scan_results')
    .addColumn('digest', t.key(255), (c) => c.primaryKey())
    .addColumn('status', t.plainKey(16), (c) => c.notNull())
    .addColumn('scanned_at', 'bigint', (c) => c.notNull())
    .addColumn('source', t.plainKey(64), (c) => c.notNull())
    .addColumn('database_import', 'bigint')
    .addColumn('packages', 'bigint', (c) => c.notNull())
    .addColumn('summary', t.text, (c) => c.notNull())
    .addColumn('findings', t.text, (c) => c.notNull())
    .addColumn('error', t.text)
    .execute();
}
