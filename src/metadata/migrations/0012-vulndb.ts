import { type Kysely } from 'kysely';
import { schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * The offline vulnerability database (src/scanning, `berth vulndb import`, issue 16):
 * - `vuln_advisories`: one OSV record per id, kept as JSON (without `details`) with its
 *   `modified` and `withdrawn` times (epoch ms): a re-import replaces a record only when its
 *   `modified` grew.
 * - `vuln_packages`: the packages each advisory names, (ecosystem, name, advisory id), keyed
 *   for the matcher's look-up by ecosystem and name; replaced with their advisory.
 * - `vuln_imports`: each import run with its counts (the database's age is the end of the
 *   newest complete run).
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);

  await db.schema
    .createTable('vuln_advisories')
    .addColumn('id', t.key(191), (c) => c.primaryKey())
    .addColumn('modified', 'bigint', (c) => c.notNull())
    .addColumn('withdrawn', 'bigint')
    .addColumn('document', t.text, (c) => c.notNull())
    .addColumn('imported_at', 'bigint', (c) => c.notNull())
    .execute();

  // 64 + 320 + 191 characters, 4 bytes each at most: within InnoDB's 3072-byte key.
  await db.schema
    .createTable('vuln_packages')
    .addColumn('ecosystem', t.key(64), (c) => c.notNull())
    .addColumn('name', t.key(320), (c) => c.notNull())
    .addColumn('advisory_id', t.key(191), (c) => c.notNull())
    .addPrimaryKeyConstraint('vuln_packages_pk', ['ecosystem', 'name', 'advisory_id'])
    .execute();
  await db.schema.createIndex('vuln_packages_advisory').on('vuln_packages').column('advisory_id').execute();

  const pg = ctx.dialect === 'postgres';
  await db.schema
    .createTable('vuln_imports')
    .addColumn('id', t.serialId, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('source', t.text, (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .addColumn('outcome', t.plainKey(16), (c) => c.notNull())
    .addColumn('files', 'bigint', (c) => c.notNull())
    .addColumn('inserted', 'bigint', (c) => c.notNull())
    .addColumn('updated', 'bigint', (c) => c.notNull())
    .addColumn('unchanged', 'bigint', (c) => c.notNull())
    .addColumn('invalid', 'bigint', (c) => c.notNull())
    .addColumn('errors', t.text, (c) => c.notNull())
    .execute();
}
