import type { Kysely, Selectable } from 'kysely';
import type { CachedTag, ProxyCacheStore, ProxyProject } from '../registries/proxy-ports.js';
import { insertOrUpdate, type Dialect } from './dialect.js';
import type { Database } from './tables.js';

/** Row types of migrations/0020-proxy-cache.ts (proxy_cache_manifests dropped by 0022; keep_deleted_tags added by 0023). */
export interface ProxyCacheTables {
  proxy_cache_projects: {
    project: string;
    endpoint_id: number;
    namespace: string | null;
    tag_ttl_ms: number;
    keep_deleted_tags: number | null;
    created_at: number;
    updated_at: number;
  };
  proxy_cache_tags: { repository: string; tag: string; digest: string; validated_at: number };
}

type Db = Kysely<ProxyCacheTables>;

function projectOf(row: Selectable<ProxyCacheTables['proxy_cache_projects']>): ProxyProject {
  return {
    project: row.project,
    endpointId: Number(row.endpoint_id),
    namespace: row.namespace,
    tagTtlMs: Number(row.tag_ttl_ms),
    keepDeletedTags: row.keep_deleted_tags === null ? null : Number(row.keep_deleted_tags) !== 0,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/** ProxyCacheStore on Kysely, for SQLite, PostgreSQL and MySQL alike. */
export class KyselyProxyCacheStore implements ProxyCacheStore {
  private readonly db: Db;

  constructor(
    db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {
    this.db = db as unknown as Db;
  }

  async projects(): Promise<ProxyProject[]> {
    return (await this.db.selectFrom('proxy_cache_projects').selectAll().orderBy('project').execute()).map(projectOf);
  }

  async project(name: string): Promise<ProxyProject | null> {
    const row = await this.db.selectFrom('proxy_cache_projects').selectAll().where('project', '=', name).executeTakeFirst();
    return row ? projectOf(row) : null;
  }

  async setProject(binding: Omit<ProxyProject, 'createdAt' | 'updatedAt'>, now: number): Promise<ProxyProject> {
    const set = {
      endpoint_id: binding.endpointId,
      namespace: binding.namespace,
      tag_ttl_ms: binding.tagTtlMs,
      keep_deleted_tags: binding.keepDeletedTags === null ? null : binding.keepDeletedTags ? 1 : 0,
      updated_at: now,
    };
    await insertOrUpdate(
      this.db.insertInto('proxy_cache_projects').values({ project: binding.project, ...set, created_at: now }),
      this.dialect,
      ['project'],
      set,
    ).execute();
    return (await this.project(binding.project))!;
  }

  async deleteProject(name: string): Promise<boolean> {
    const result = await this.db.deleteFrom('proxy_cache_projects').where('project', '=', name).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async tag(repository: string, tag: string): Promise<CachedTag | null> {
    const row = await this.db
      .selectFrom('proxy_cache_tags')
      .select(['digest', 'validated_at'])
      .where('repository', '=', repository)
      .where('tag', '=', tag)
      .executeTakeFirst();
    return row ? { digest: row.digest, validatedAt: Number(row.validated_at) } : null;
  }

  async putTag(repository: string, tag: string, digest: string, now: number): Promise<void> {
    const set = { digest, validated_at: now };
    await insertOrUpdate(
      this.db.insertInto('proxy_cache_tags').values({ repository, tag, ...set }),
      this.dialect,
      ['repository', 'tag'],
      set,
    ).execute();
  }
}
