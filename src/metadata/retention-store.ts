import type { Generated, Kysely, Transaction } from 'kysely';
import type { MetadataTx } from '../core/ports.js';
import type {
  RepositoryRow,
  RepositorySnapshot,
  RetentionPolicy,
  RetentionReport,
  RetentionRun,
  RetentionStore,
  RetentionTxQueries,
  RunStatus,
  RunTotals,
  RunTrigger,
  StoredPolicy,
} from '../retention/ports.js';
import { insertOrUpdate, insertReturningId, type Dialect } from './dialect.js';
import type { OutboxTables } from './outbox-store.js';
import type { Database } from './tables.js';

/** Row types of migrations/0007-retention.ts. */
export interface RetentionTables {
  retention_policies: {
    project: string;
    rules: string;
    schedule: string | null;
    next_run_at: number | null;
    updated_by: string | null;
    updated_at: number;
  };
  retention_runs: {
    id: Generated<number>;
    project: string;
    dry_run: number;
    trigger_kind: string;
    actor: string | null;
    status: string;
    started_at: number;
    finished_at: number | null;
    summary: string | null;
    report: string | null;
  };
}

type Db = Kysely<Database & OutboxTables & RetentionTables>;
type PolicyRow = RetentionTables['retention_policies'];

/** Rows per `IN (…)` list: well inside every driver's parameter limit. */
const CHUNK = 500;

function chunks<T>(items: T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function toPolicy(row: PolicyRow): StoredPolicy {
  const { rules } = JSON.parse(row.rules) as Pick<RetentionPolicy, 'rules'>;
  return {
    project: row.project,
    rules,
    schedule: row.schedule,
    nextRunAt: row.next_run_at === null ? null : new Date(Number(row.next_run_at)),
    updatedBy: row.updated_by,
    updatedAt: new Date(Number(row.updated_at)),
  };
}

/** The RetentionStore port on the registry's Kysely database (SQLite, PostgreSQL, MySQL). */
export class KyselyRetentionStore implements RetentionStore {
  private readonly db: Db;

  constructor(
    db: Kysely<Database>,
    private readonly dialect: Dialect,
    /** Binds a MetadataTx of the same database to its Kysely transaction. */
    private readonly transactionOf: (tx: MetadataTx) => Transaction<Database>,
  ) {
    this.db = db as unknown as Db;
  }

  within(tx: MetadataTx): RetentionTxQueries {
    const trx = this.transactionOf(tx) as unknown as Transaction<Database & RetentionTables>;
    return {
      tagged: async (repositoryId, digests) => {
        const found = new Set<string>();
        for (const part of chunks(digests)) {
          const rows = await trx
            .selectFrom('tags')
            .select('manifest_digest')
            .distinct()
            .where('repository_id', '=', repositoryId)
            .where('manifest_digest', 'in', part)
            .execute();
          for (const row of rows) found.add(row.manifest_digest);
        }
        return found;
      },
      finishRun: async (id, totals, report, at) => {
        await trx
          .updateTable('retention_runs')
          .set({
            status: 'ok' satisfies RunStatus,
            finished_at: at.getTime(),
            summary: JSON.stringify(totals),
            report: JSON.stringify(report),
          })
          .where('id', '=', id)
          .execute();
      },
    };
  }

  async policy(project: string): Promise<StoredPolicy | null> {
    const row = await this.db.selectFrom('retention_policies').selectAll().where('project', '=', project).executeTakeFirst();
    return row ? toPolicy(row) : null;
  }

  async setPolicy(project: string, policy: RetentionPolicy, nextRunAt: Date | null, actor: string | null, at: Date): Promise<void> {
    const values = {
      rules: JSON.stringify({ rules: policy.rules }),
      schedule: policy.schedule,
      next_run_at: nextRunAt?.getTime() ?? null,
      updated_by: actor,
      updated_at: at.getTime(),
    };
    await insertOrUpdate(
      this.db.insertInto('retention_policies').values({ project, ...values }),
      this.dialect,
      ['project'],
      values,
    ).execute();
  }

  async deletePolicy(project: string): Promise<boolean> {
    const result = await this.db.deleteFrom('retention_policies').where('project', '=', project).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async duePolicies(now: Date): Promise<StoredPolicy[]> {
    const rows = await this.db
      .selectFrom('retention_policies')
      .selectAll()
      .where('next_run_at', '<=', now.getTime())
      .orderBy('next_run_at')
      .execute();
    return rows.map(toPolicy);
  }

  async advance(project: string, from: Date, to: Date | null): Promise<boolean> {
    const result = await this.db
      .updateTable('retention_policies')
      .set({ next_run_at: to?.getTime() ?? null })
      .where('project', '=', project)
      .where('next_run_at', '=', from.getTime())
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async repositories(project: string): Promise<RepositoryRow[]> {
    // `<project>/…` as a range on the unique name index ('0' follows '/' in byte order).
    const rows = await this.db
      .selectFrom('repositories')
      .select(['id', 'name'])
      .where((eb) => eb.or([eb('name', '=', project), eb.and([eb('name', '>', `${project}/`), eb('name', '<', `${project}0`)])]))
      .orderBy('name')
      .execute();
    return rows.map((r) => ({ id: Number(r.id), name: r.name }));
  }

  async snapshots(repositories: RepositoryRow[]): Promise<RepositorySnapshot[]> {
    const byId = new Map<number, RepositorySnapshot>(repositories.map((r) => [r.id, { ...r, tags: [], manifests: [], children: [] }]));
    for (const part of chunks([...byId.keys()])) {
      const [tags, manifests, children, pulls] = await Promise.all([
        // Ordered, so that two runs over the same rows (a dry run and the real one) report in the same order.
        this.db
          .selectFrom('tags')
          .select(['repository_id', 'name', 'manifest_digest', 'updated_at'])
          .where('repository_id', 'in', part)
          .orderBy('repository_id')
          .orderBy('name')
          .execute(),
        this.db
          .selectFrom('manifests')
          .select(['repository_id', 'digest', 'created_at', 'subject_digest'])
          .where('repository_id', 'in', part)
          .execute(),
        this.db
          .selectFrom('manifest_references')
          .select(['repository_id', 'manifest_digest', 'child_digest'])
          .where('repository_id', 'in', part)
          .where('kind', '=', 'manifest')
          .execute(),
        this.db.selectFrom('pull_stats').select(['repository_id', 'digest', 'last_pulled_at']).where('repository_id', 'in', part).execute(),
      ]);
      const pulledAt = new Map(pulls.map((p) => [`${p.repository_id} ${p.digest}`, Number(p.last_pulled_at)]));
      for (const t of tags)
        byId.get(Number(t.repository_id))!.tags.push({ name: t.name, digest: t.manifest_digest, updatedAt: Number(t.updated_at) });
      for (const m of manifests) {
        byId.get(Number(m.repository_id))!.manifests.push({
          digest: m.digest,
          createdAt: Number(m.created_at),
          subject: m.subject_digest,
          lastPulledAt: pulledAt.get(`${m.repository_id} ${m.digest}`) ?? null,
        });
      }
      for (const c of children) byId.get(Number(c.repository_id))!.children.push({ parent: c.manifest_digest, child: c.child_digest });
    }
    return [...byId.values()];
  }

  async freedBytes(garbage: Map<number, string[]>): Promise<number> {
    const garbageKeys = new Set([...garbage].flatMap(([repositoryId, digests]) => digests.map((d) => `${repositoryId} ${d}`)));
    const isGarbage = (repositoryId: number, digest: string) => garbageKeys.has(`${repositoryId} ${digest}`);
    // Blobs the garbage manifests reference…
    const candidates = new Set<string>();
    for (const [repositoryId, digests] of garbage) {
      for (const part of chunks(digests)) {
        const rows = await this.db
          .selectFrom('manifest_references')
          .select('child_digest')
          .where('repository_id', '=', repositoryId)
          .where('manifest_digest', 'in', part)
          .where('kind', '<>', 'manifest')
          .execute();
        for (const row of rows) candidates.add(row.child_digest);
      }
    }
    // …less those any other manifest references, in any repository. A referenced blob is linked
    // into the manifest's repository, so the links (indexed by digest) lead to the references
    // (indexed by repository and child): no scan of manifest_references.
    let bytes = 0;
    for (const part of chunks([...candidates])) {
      const users = await this.db
        .selectFrom('repository_blobs as rb')
        .innerJoin('manifest_references as mr', (join) =>
          join.onRef('mr.repository_id', '=', 'rb.repository_id').onRef('mr.child_digest', '=', 'rb.digest'),
        )
        .select(['mr.repository_id', 'mr.manifest_digest', 'mr.child_digest'])
        .where('rb.digest', 'in', part)
        .execute();
      const kept = new Set(users.filter((u) => !isGarbage(Number(u.repository_id), u.manifest_digest)).map((u) => u.child_digest));
      const freed = part.filter((digest) => !kept.has(digest));
      if (freed.length === 0) continue;
      const sizes = await this.db.selectFrom('blobs').select('size').where('digest', 'in', freed).execute();
      for (const row of sizes) bytes += Number(row.size);
    }
    return bytes;
  }

  async startRun(run: { project: string; dryRun: boolean; trigger: RunTrigger; actor: string | null; at: Date }): Promise<number> {
    return insertReturningId(
      this.db.insertInto('retention_runs').values({
        project: run.project,
        dry_run: run.dryRun ? 1 : 0,
        trigger_kind: run.trigger,
        actor: run.actor,
        status: 'running' satisfies RunStatus,
        started_at: run.at.getTime(),
        finished_at: null,
        summary: null,
        report: null,
      }),
      this.dialect,
    );
  }

  async failRun(id: number, error: string, at: Date): Promise<void> {
    await this.db
      .updateTable('retention_runs')
      .set({ status: 'failed' satisfies RunStatus, finished_at: at.getTime(), summary: JSON.stringify({ error }) })
      .where('id', '=', id)
      .execute();
  }

  async failUnfinished(project: string, error: string, at: Date): Promise<number> {
    const result = await this.db
      .updateTable('retention_runs')
      .set({ status: 'failed' satisfies RunStatus, finished_at: at.getTime(), summary: JSON.stringify({ error }) })
      .where('project', '=', project)
      .where('status', '=', 'running' satisfies RunStatus)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  async runs(project: string, limit: number): Promise<RetentionRun[]> {
    const rows = await this.db
      .selectFrom('retention_runs')
      .select(['id', 'project', 'dry_run', 'trigger_kind', 'actor', 'status', 'started_at', 'finished_at', 'summary'])
      .where('project', '=', project)
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((row) => toRun(row));
  }

  async run(project: string, id: number): Promise<RetentionRun | null> {
    const row = await this.db
      .selectFrom('retention_runs')
      .selectAll()
      .where('project', '=', project)
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) return null;
    return { ...toRun(row), report: row.report === null ? null : (JSON.parse(row.report) as RetentionReport) };
  }
}

function toRun(row: Omit<RetentionTables['retention_runs'], 'report' | 'id'> & { id: number }): RetentionRun {
  return {
    id: Number(row.id),
    project: row.project,
    dryRun: Number(row.dry_run) === 1,
    trigger: row.trigger_kind as RunTrigger,
    actor: row.actor,
    status: row.status as RunStatus,
    startedAt: new Date(Number(row.started_at)),
    finishedAt: row.finished_at === null ? null : new Date(Number(row.finished_at)),
    summary: row.summary === null ? null : (JSON.parse(row.summary) as RunTotals | { error: string }),
  };
}
