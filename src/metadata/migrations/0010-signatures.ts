import { type Kysely } from 'kysely';
import { foreignKeys, schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * Signature trust policies (src/signatures, docs/supply-chain.md):
 * - `signature_policies`: one row per project with a policy: its mode (off, audit, enforce),
 *   whether index children inherit a verified index's status, and two counters replicas
 *   compare their caches with — `version` (bumped by every policy or key change) and
 *   `signatures` (bumped in the transaction of every signature pushed into, and every
 *   manifest removed from, the project).
 * - `signature_keys`: the project's trusted public keys and certificates (PEM), each named;
 *   public material only, nothing secret.
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const pg = ctx.dialect === 'postgres';
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);
  const policyFk = foreignKeys(ctx.dialect);
  await db.schema
    .createTable('signature_policies')
    .addColumn('project', t.key(255), (c) => policyFk.column(c.primaryKey(), 'project', 'projects.name', 'cascade'))
    .addColumn('mode', t.plainKey(16), (c) => c.notNull())
    .addColumn('inherit_index', 'integer', (c) => c.notNull())
    .addColumn('version', 'bigint', (c) => c.notNull())
    .addColumn('signatures', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_by', t.text)
    .$call(policyFk.table('signature_policies'))
    .execute();

  const keyFk = foreignKeys(ctx.dialect);
  await db.schema
    .createTable('signature_keys')
    .addColumn('id', t.serialId, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('project', t.key(255), (c) => keyFk.column(c.notNull(), 'project', 'signature_policies.project', 'cascade'))
    .addColumn('name', t.key(128), (c) => c.notNull())
    .addColumn('kind', t.plainKey(16), (c) => c.notNull())
    .addColumn('pem', t.text, (c) => c.notNull())
    .addColumn('fingerprint', t.plainKey(64), (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('created_by', t.text)
    .$call(keyFk.table('signature_keys'))
    .execute();
  await db.schema.createIndex('signature_keys_name').on('signature_keys').columns(['project', 'name']).unique().execute();
}
