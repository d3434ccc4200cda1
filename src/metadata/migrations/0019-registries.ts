import { type Kysely } from 'kysely';
import { schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * Registry endpoints (docs/proxy-cache.md, docs/replication.md): remote registries that
 * replication and pull-through cache projects talk to. `credential` is sealed with the secrets
 * key (SecretSealer, context `registry_endpoints:<id>:credential`) when one is configured;
 * `ca_bundle` holds PEM certificates (public, not sealed).
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const pg = ctx.dialect === 'postgres';
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);
  await db.schema
    .createTable('registry_endpoints')
    .addColumn('id', t.serialId, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('name', t.key(64), (c) => c.notNull())
    .addColumn('url', t.text, (c) => c.notNull())
    .addColumn('kind', t.plainKey(32), (c) => c.notNull())
    .addColumn('description', t.text, (c) => c.notNull())
    .addColumn('username', t.text)
    .addColumn('credential', t.text)
    .addColumn('insecure', 'integer', (c) => c.notNull())
    .addColumn('ca_bundle', t.text)
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('registry_endpoints_name').on('registry_endpoints').column('name').unique().execute();
}
