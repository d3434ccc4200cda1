import { sql, type Generated, type Kysely, type Transaction } from 'kysely';
import type { MetadataTx } from '../core/ports.js';
import type { NewQueuedArtifact, QueuedArtifact, RescanRecord, SupplyChainSettings, SupplyChainStore } from '../scanning/ports.js';
import { insertOrKeep, insertOrUpdate, proposedValue, type Dialect } from './dialect.js';
import type { Database } from './tables.js';

/** Row types of migrations/0016-supply-chain.ts (and what it reads of 0001 and 0015). */
export interface SupplyChainTables {
  supply_chain_settings: { project: string; sbom_on_push: number; scan_on_push: number; updated_at: number; updated_by: string | null };
  supply_chain_queue: {
    id: Generated<number>;
    repository: string;
    digest: string;
    sbom: number;
    scan: number;
    reason: string;
    state: string;
    attempts: number;
    enqueued_at: number;
    next_at: number;
    last_error: string | null;
  };
  vuln_rescans: {
    database_import: number;
    state: string;
    started_at: number;
    updated_at: number;
    finished_at: number | null;
    total: number;
    scanned: number;
    failed: number;
    resume_after: string | null;
  };
  scan_results: { digest: string; source: string; database_import: number | null };
  manifests: { repository_id: number; digest: string };
  repositories: { id: number; name: string };
}

type Db = Kysely<SupplyChainTables>;

function queued(r: Omit<SupplyChainTables['supply_chain_queue'], 'id'> & { id: number }): QueuedArtifact {
  return {
    id: Number(r.id),
    repository: r.repository,
    digest: r.digest,
    sbom: Number(r.sbom) === 1,
    scan: Number(r.scan) === 1,
    reason: r.reason as QueuedArtifact['reason'],
    state: r.state as QueuedArtifact['state'],
    attempts: Number(r.attempts),
    enqueuedAt: Number(r.enqueued_at),
    nextAt: Number(r.next_at),
    lastError: r.last_error,
  };
}

function rescanOf(r: SupplyChainTables['vuln_rescans']): RescanRecord {
  return {
    databaseImport: Number(r.database_import),
    state: r.state as RescanRecord['state'],
    startedAt: Number(r.started_at),
    updatedAt: Number(r.updated_at),
    finishedAt: r.finished_at === null ? null : Number(r.finished_at),
    total: Number(r.total),
    scanned: Number(r.scanned),
    failed: Number(r.failed),
    resumeAfter: r.resume_after,
  };
}

async function insertQueue(db: Db, items: NewQueuedArtifact[], at: number): Promise<void> {
  for (let i = 0; i < items.length; i += 200) {
    const part = items.slice(i, i + 200);
    await db
      .insertInto('supply_chain_queue')
      .values(
        part.map((q) => ({
          repository: q.repository,
          digest: q.digest,
          sbom: q.sbom ? 1 : 0,
          scan: q.scan ? 1 : 0,
          reason: q.reason,
          state: 'pending',
          attempts: 0,
          enqueued_at: at,
          next_at: at,
          last_error: null,
        })),
      )
      .execute();
  }
}

/** The SupplyChainStore port on the registry's Kysely database (SQLite, PostgreSQL, MySQL). */
export class KyselySupplyChainStore implements SupplyChainStore {
  private readonly db: Db;

  constructor(
    db: Kysely<Database>,
    private readonly dialect: Dialect,
    private readonly transactionOf: (tx: MetadataTx) => Transaction<Database>,
  ) {
    this.db = db as unknown as Db;
  }

  async settings(project: string): Promise<SupplyChainSettings | null> {
    const r = await this.db.selectFrom('supply_chain_settings').selectAll().where('project', '=', project).executeTakeFirst();
    return r
      ? {
          project: r.project,
          sbomOnPush: Number(r.sbom_on_push) === 1,
          scanOnPush: Number(r.scan_on_push) === 1,
          updatedAt: Number(r.updated_at),
          updatedBy: r.updated_by,
        }
      : null;
  }

  async setSettings(s: SupplyChainSettings & { updatedAt: number }): Promise<void> {
    const row = {
      project: s.project,
      sbom_on_push: s.sbomOnPush ? 1 : 0,
      scan_on_push: s.scanOnPush ? 1 : 0,
      updated_at: s.updatedAt,
      updated_by: s.updatedBy,
    };
    const set = Object.fromEntries(
      ['sbom_on_push', 'scan_on_push', 'updated_at', 'updated_by'].map((c) => [c, proposedValue(c, this.dialect)]),
    );
    await insertOrUpdate(this.db.insertInto('supply_chain_settings').values(row), this.dialect, ['project'], set).execute();
  }

  within(tx: MetadataTx) {
    const trx = this.transactionOf(tx) as unknown as Db;
    return {
      async settingsOf(projects: string[]) {
        const out = new Map<string, { sbom: boolean; scan: boolean }>();
        if (projects.length === 0) return out;
        const rows = await trx
          .selectFrom('supply_chain_settings')
          .select(['project', 'sbom_on_push', 'scan_on_push'])
          .where('project', 'in', projects)
          .execute();
        for (const r of rows) out.set(r.project, { sbom: Number(r.sbom_on_push) === 1, scan: Number(r.scan_on_push) === 1 });
        return out;
      },
      enqueue: (items: NewQueuedArtifact[], at: number) => insertQueue(trx, items, at),
      async forgetProject(project: string, deletedAt: number) {
        await trx.deleteFrom('supply_chain_settings').where('project', '=', project).where('updated_at', '<=', deletedAt).execute();
      },
    };
  }

  enqueue(items: NewQueuedArtifact[], at: number): Promise<void> {
    return insertQueue(this.db, items, at);
  }

  async due(now: number, limit: number): Promise<QueuedArtifact[]> {
    const rows = await this.db
      .selectFrom('supply_chain_queue')
      .selectAll()
      .where('state', '=', 'pending')
      .where('next_at', '<=', now)
      .orderBy('next_at')
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(queued);
  }

  async done(id: number): Promise<void> {
    await this.db.deleteFrom('supply_chain_queue').where('id', '=', id).execute();
  }

  async retry(id: number, attempts: number, nextAt: number, error: string, giveUp: boolean): Promise<void> {
    await this.db
      .updateTable('supply_chain_queue')
      .set({ attempts, next_at: nextAt, last_error: error.slice(0, 2000), state: giveUp ? 'failed' : 'pending' })
      .where('id', '=', id)
      .execute();
  }

  async queueCounts(): Promise<{ pending: number; failed: number; oldestPendingAt: number | null }> {
    const rows = await this.db
      .selectFrom('supply_chain_queue')
      .select((eb) => ['state', eb.fn.countAll<number>().as('n'), eb.fn.min<number | null>('enqueued_at').as('oldest')])
      .groupBy('state')
      .execute();
    const pending = rows.find((r) => r.state === 'pending');
    const failed = rows.find((r) => r.state === 'failed');
    return {
      pending: Number(pending?.n ?? 0),
      failed: Number(failed?.n ?? 0),
      oldestPendingAt: pending?.oldest == null ? null : Number(pending.oldest),
    };
  }

  async failedItems(limit: number): Promise<QueuedArtifact[]> {
    const rows = await this.db
      .selectFrom('supply_chain_queue')
      .selectAll()
      .where('state', '=', 'failed')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map(queued);
  }

  /**
   * Scans matched against an import older than `target` (or none), of digests some repository
   * still holds. Scans of a package list given in the request (source `request`) are left out:
   * the list is not kept, so Berth cannot redo them.
   */
  private stale(target: number) {
    return this.db
      .selectFrom('scan_results as s')
      .where('s.source', '<>', 'request')
      .where((eb) => eb.or([eb('s.database_import', 'is', null), eb('s.database_import', '<', target)]))
      .where((eb) =>
        eb.exists(
          eb
            .selectFrom('manifests as m')
            .select(sql<number>`1`.as('one'))
            .whereRef('m.digest', '=', 's.digest'),
        ),
      );
  }

  async countStale(target: number): Promise<number> {
    const row = await this.stale(target)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async staleScans(target: number, after: string | null, limit: number): Promise<{ digest: string; repository: string }[]> {
    let query = this.stale(target).select('s.digest as digest').orderBy('s.digest').limit(limit);
    if (after !== null) query = query.where('s.digest', '>', after);
    const digests = (await query.execute()).map((r) => r.digest);
    if (digests.length === 0) return [];
    const holders = await this.db
      .selectFrom('manifests as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select(['m.digest as digest', (eb) => eb.fn.min<string>('r.name').as('repository')])
      .where('m.digest', 'in', digests)
      .groupBy('m.digest')
      .execute();
    const byDigest = new Map(holders.map((h) => [h.digest, h.repository]));
    return digests.filter((d) => byDigest.has(d)).map((digest) => ({ digest, repository: byDigest.get(digest)! }));
  }

  async rescan(databaseImport?: number): Promise<RescanRecord | null> {
    let query = this.db.selectFrom('vuln_rescans').selectAll();
    query =
      databaseImport === undefined
        ? query.orderBy('database_import', 'desc').limit(1)
        : query.where('database_import', '=', databaseImport);
    const row = await query.executeTakeFirst();
    return row ? rescanOf(row) : null;
  }

  async startRescan(databaseImport: number, total: number, at: number): Promise<RescanRecord> {
    await this.db
      .updateTable('vuln_rescans')
      .set({ state: 'superseded', finished_at: at, updated_at: at })
      .where('state', '=', 'running')
      .where('database_import', '<', databaseImport)
      .execute();
    await insertOrKeep(
      this.db.insertInto('vuln_rescans').values({
        database_import: databaseImport,
        state: 'running',
        started_at: at,
        updated_at: at,
        finished_at: null,
        total,
        scanned: 0,
        failed: 0,
        resume_after: null,
      }),
      this.dialect,
      ['database_import'],
    ).execute();
    return (await this.rescan(databaseImport))!;
  }

  async updateRescan(r: RescanRecord): Promise<void> {
    await this.db
      .updateTable('vuln_rescans')
      .set({
        state: r.state,
        updated_at: r.updatedAt,
        finished_at: r.finishedAt,
        total: r.total,
        scanned: r.scanned,
        failed: r.failed,
        resume_after: r.resumeAfter,
      })
      .where('database_import', '=', r.databaseImport)
      .execute();
  }
}
