import { type Kysely } from 'kysely';
import { schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * Pull-through cache projects (docs/proxy-cache.md):
 * - `proxy_cache_projects`: a project bound to an upstream registry endpoint (0019), with an
 *   optional upstream namespace and the tag revalidation TTL.
 * - `proxy_cache_manifests`: manifests fetched from upstreams, per repository and digest.
 * - `proxy_cache_tags`: tag → digest as last confirmed by the upstream (`validated_at`).
 * Cached blobs are ordinary blob rows and links of core.
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);
  await db.schema
    .createTable('proxy_cache_projects')
    .addColumn('project', t.key(255), (c) => c.primaryKey())
    .addColumn('endpoint_id', 'bigint', (c) => c.notNull())
    .addColumn('namespace', t.text)
    .addColumn('tag_ttl_ms', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('proxy_cache_manifests')
    .addColumn('repository', t.key(255), (c) => c.notNull())
    .addColumn('digest', t.plainKey(100), (c) => c.notNull())
    .addColumn('media_type', t.text, (c) => c.notNull())
    .addColumn('payload', t.bytes, (c) => c.notNull())
    .addColumn('fetched_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('proxy_cache_manifests_pk', ['repository', 'digest'])
    .execute();
  await db.schema
    .createTable('proxy_cache_tags')
    .addColumn('repository', t.key(255), (c) => c.notNull())
    .addColumn('tag', t.key(128), (c) => c.notNull())
    .addColumn('digest', t.plainKey(100), (c) => c.notNull())
    .addColumn('validated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('proxy_cache_tags_pk', ['repository', 'tag'])
    .execute();
}
