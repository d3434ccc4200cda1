import { type Kysely } from 'kysely';

/**
 * Pull-through cache content moves into core's tables (docs/proxy-cache.md): a cache stores the
 * manifests it fetches through core's manifest write path (tags, referrers, quota usage, tag
 * history and events in one transaction), so `proxy_cache_manifests` (0020) is no longer read
 * or written and is dropped. A manifest cached before this version is fetched from the upstream
 * again on its next pull (its blobs stay linked and are not fetched again). `proxy_cache_tags`
 * stays: it keeps when the upstream last confirmed each tag (`validated_at`, the TTL).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('proxy_cache_manifests').execute();
}
