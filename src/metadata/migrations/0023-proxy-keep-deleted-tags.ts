import { type Kysely } from 'kysely';

/**
 * A cache project's override of `proxy.keepdeletedtags` (docs/proxy-cache.md): 1 keeps a tag
 * the upstream deleted pullable from the cache, 0 deletes it from the cache on revalidation,
 * NULL (every project bound before) follows the configuration.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('proxy_cache_projects').addColumn('keep_deleted_tags', 'integer').execute();
}
