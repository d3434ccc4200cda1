import { sql, type Expression, type Kysely, type SqlBool, type Transaction } from 'kysely';
import type { MetadataTx } from '../core/ports.js';
import type { QuotaStore, QuotaTxQueries, QuotaUsage } from '../quotas/ports.js';
import {
  firstPathSegment,
  insertIfAbsent,
  insertOrKeep,
  insertOrUpdate,
  lockForUpdate,
  proposedValue,
  writeTransaction,
  type AnyDb,
  type Dialect,
} from './dialect.js';
import type { Database } from './tables.js';

/** Row types of migrations/0005-quotas.ts. */
export interface QuotaTables {
  quota_projects: { project: string; limit_bytes: number | null; used_bytes: number; updated_at: number };
  quota_contents: { project: string; digest: string; size: number };
}

type QuotaDatabase = Database & QuotaTables;
type Db = AnyDb<QuotaDatabase>;

/**
 * What each project's usage counts, from scratch: every distinct (project, digest) that a
 * repository of the project links (blobs) or stores (manifests), with its size. A digest
 * that is both (rare) has the same size either way.
 */
function countedFromScratch(db: Db, dialect: Dialect) {
  const links = db
    .selectFrom('repository_blobs as rb')
    .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
    .innerJoin('blobs as b', 'b.digest', 'rb.digest')
    .select(['r.name as name', 'rb.digest as digest', 'b.size as size']);
  const manifests = db
    .selectFrom('manifests as m')
    .innerJoin('repositories as r', 'r.id', 'm.repository_id')
    .select(['r.name as name', 'm.digest as digest', 'm.size as size']);
  const project = firstPathSegment('c.name', dialect);
  return db
    .selectFrom(links.unionAll(manifests).as('c'))
    .select([project.as('project'), 'c.digest as digest', (eb) => eb.fn.max('c.size').as('size')])
    .groupBy([project, 'c.digest']);
}

/**
 * Recomputes `quota_contents` and every project's `used_bytes` from the registry's tables,
 * keeping the limits (the 0005 migration's initial count, and `berth quota recount`).
 */
export async function rebuildQuotaUsage(db: Kysely<unknown>, dialect: Dialect, now: number): Promise<void> {
  const qdb = db as unknown as Kysely<QuotaDatabase>;
  await qdb.deleteFrom('quota_contents').execute();
  await qdb.insertInto('quota_contents').columns(['project', 'digest', 'size']).expression(countedFromScratch(qdb, dialect)).execute();
  await qdb.updateTable('quota_projects').set({ used_bytes: 0, updated_at: now }).execute();
  const sums = qdb
    .selectFrom('quota_contents')
    .select((eb) => [
      'project',
      sql<null>`null`.as('limit_bytes'),
      eb.fn.sum<number>('size').as('used_bytes'),
      sql<number>`${now}`.as('updated_at'),
    ])
    .groupBy('project');
  await insertOrUpdate(
    qdb.insertInto('quota_projects').columns(['project', 'limit_bytes', 'used_bytes', 'updated_at']).expression(sums),
    dialect,
    ['project'],
    { used_bytes: proposedValue('used_bytes', dialect) },
  ).execute();
}

/** The repository-name column is in `project`: the project's root repository or one under it ('/' < '0' byte-wise). */
function inProject(name: Expression<string>, project: string): Expression<SqlBool> {
  return sql<SqlBool>`(${name} = ${project} or (${name} >= ${`${project}/`} and ${name} < ${`${project}0`}))`;
}

/** QuotaTxQueries on one Kysely transaction. */
class KyselyQuotaTxQueries implements QuotaTxQueries {
  constructor(
    private readonly db: Transaction<QuotaDatabase>,
    private readonly dialect: Dialect,
  ) {}

  async usage(project: string, lock: boolean): Promise<QuotaUsage> {
    const read = () => {
      const query = this.db.selectFrom('quota_projects').select(['used_bytes', 'limit_bytes']).where('project', '=', project);
      return (lock ? lockForUpdate(query, this.dialect) : query).executeTakeFirst();
    };
    let row = await read();
    if (!row && lock) {
      // First content of the project: its row, then the lock (a concurrent insert waits for ours, or ours for it).
      await insertOrKeep(
        this.db.insertInto('quota_projects').values({ project, limit_bytes: null, used_bytes: 0, updated_at: Date.now() }),
        this.dialect,
        ['project'],
      ).execute();
      row = await read();
    }
    return toUsage(project, row);
  }

  async blobSize(digest: string): Promise<number | null> {
    const row = await this.db.selectFrom('blobs').select('size').where('digest', '=', digest).executeTakeFirst();
    return row ? Number(row.size) : null;
  }

  async counts(project: string, digest: string): Promise<boolean> {
    return (await this.counted(project, digest)) !== undefined;
  }

  async add(project: string, digest: string, size: number): Promise<number> {
    const inserted = await insertIfAbsent(this.db.insertInto('quota_contents').values({ project, digest, size }), this.dialect, [
      'project',
      'digest',
    ]);
    if (!inserted) return 0;
    await this.adjust(project, size);
    return size;
  }

  async release(project: string, digest: string): Promise<number> {
    const counted = await this.counted(project, digest);
    if (!counted || (await this.stillInProject(project, digest))) return 0;
    await this.db.deleteFrom('quota_contents').where('project', '=', project).where('digest', '=', digest).execute();
    const size = Number(counted.size);
    await this.adjust(project, -size);
    return size;
  }

  private counted(project: string, digest: string) {
    return this.db
      .selectFrom('quota_contents')
      .select('size')
      .where('project', '=', project)
      .where('digest', '=', digest)
      .executeTakeFirst();
  }

  /** Linked or stored by a repository of the project (index lookups by digest: repository_blobs_digest, manifests_digest). */
  private async stillInProject(project: string, digest: string): Promise<boolean> {
    for (const table of ['repository_blobs', 'manifests'] as const) {
      // Both tables key on (repository_id, digest): one query shape, typed as the first.
      const row = await this.db
        .selectFrom(`${table} as t` as 'repository_blobs as t')
        .innerJoin('repositories as r', 'r.id', 't.repository_id')
        .select('t.digest')
        .where('t.digest', '=', digest)
        .where(inProject(sql.ref('r.name'), project))
        .limit(1)
        .executeTakeFirst();
      if (row) return true;
    }
    return false;
  }

  private async adjust(project: string, delta: number): Promise<void> {
    const now = Date.now();
    await insertOrUpdate(
      this.db.insertInto('quota_projects').values({ project, limit_bytes: null, used_bytes: Math.max(delta, 0), updated_at: now }),
      this.dialect,
      ['project'],
      { used_bytes: sql`${sql.ref('quota_projects.used_bytes')} + ${delta}`, updated_at: now },
    ).execute();
  }
}

/** The QuotaStore port on the registry's Kysely database. */
export class KyselyQuotaStore implements QuotaStore {
  private readonly db: Kysely<QuotaDatabase>;

  constructor(
    db: Kysely<Database>,
    private readonly dialect: Dialect,
    /** Binds a MetadataTx of the same database to its Kysely transaction. */
    private readonly transactionOf: (tx: MetadataTx) => Transaction<Database>,
  ) {
    this.db = db as unknown as Kysely<QuotaDatabase>;
  }

  within(tx: MetadataTx): QuotaTxQueries {
    return new KyselyQuotaTxQueries(this.transactionOf(tx) as unknown as Transaction<QuotaDatabase>, this.dialect);
  }

  async usage(project: string): Promise<QuotaUsage> {
    const row = await this.db
      .selectFrom('quota_projects')
      .select(['used_bytes', 'limit_bytes'])
      .where('project', '=', project)
      .executeTakeFirst();
    return toUsage(project, row);
  }

  async list(): Promise<QuotaUsage[]> {
    const rows = await this.db.selectFrom('quota_projects').select(['project', 'used_bytes', 'limit_bytes']).orderBy('project').execute();
    return rows.map((r) => toUsage(r.project, r));
  }

  async setLimit(project: string, limit: number | null): Promise<QuotaUsage> {
    const now = Date.now();
    await insertOrUpdate(
      this.db.insertInto('quota_projects').values({ project, limit_bytes: limit, used_bytes: 0, updated_at: now }),
      this.dialect,
      ['project'],
      {
        limit_bytes: limit,
        updated_at: now,
      },
    ).execute();
    return this.usage(project);
  }

  async recount(): Promise<QuotaUsage[]> {
    const counted = countedFromScratch(this.db, this.dialect).as('c');
    const rows = await this.db
      .selectFrom(counted)
      .leftJoin('quota_projects as q', 'q.project', 'c.project')
      .select((eb) => ['c.project as project', eb.fn.sum<number>('c.size').as('used_bytes'), eb.fn.max('q.limit_bytes').as('limit_bytes')])
      .groupBy('c.project')
      .orderBy('c.project')
      .execute();
    const counts = new Map(rows.map((r) => [r.project, toUsage(r.project, r)]));
    // Projects with a limit and no content use 0 bytes.
    for (const kept of await this.list()) if (!counts.has(kept.project)) counts.set(kept.project, { ...kept, used: 0 });
    return [...counts.values()].sort((a, b) => (a.project < b.project ? -1 : a.project > b.project ? 1 : 0));
  }

  async rebuild(): Promise<{ project: string; before: number; after: number }[]> {
    return writeTransaction(this.db, async (trx) => {
      const before = new Map(
        (await trx.selectFrom('quota_projects').select(['project', 'used_bytes']).execute()).map((r) => [r.project, Number(r.used_bytes)]),
      );
      await rebuildQuotaUsage(trx as unknown as Kysely<unknown>, this.dialect, Date.now());
      const after = await trx.selectFrom('quota_projects').select(['project', 'used_bytes']).orderBy('project').execute();
      return after
        .map((r) => ({ project: r.project, before: before.get(r.project) ?? 0, after: Number(r.used_bytes) }))
        .filter((r) => r.before !== r.after);
    });
  }
}

function toUsage(project: string, row: { used_bytes: unknown; limit_bytes: unknown } | undefined): QuotaUsage {
  const limit = row?.limit_bytes;
  return { project, used: Number(row?.used_bytes ?? 0), limit: limit === null || limit === undefined ? null : Number(limit) };
}
