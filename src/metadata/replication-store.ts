import { createHash } from 'node:crypto';
import type { Generated, Kysely, Selectable } from 'kysely';
import { RegistryError } from '../core/errors.js';
import type {
  Execution,
  ExecutionScope,
  NewTask,
  ReplicationPolicy,
  ReplicationPolicyInput,
  ReplicationStore,
  Task,
  TaskStatus,
  TriggerKind,
} from '../replication/ports.js';
import { insertOrUpdate, insertReturningId, isDuplicateKey, type Dialect } from './dialect.js';
import type { Database } from './tables.js';

/** Row types of migrations/0021-replication.ts. */
export interface ReplicationTables {
  replication_policies: {
    id: Generated<number>;
    name: string;
    description: string;
    direction: string;
    registry: string;
    repositories: string;
    tags: string;
    artifact_types: string;
    only_signed: number;
    dest_namespace: string | null;
    flatten: number;
    trigger_kind: string;
    cron: string | null;
    override: number;
    deletion: number;
    concurrency: number;
    bandwidth: number | null;
    enabled: number;
    created_at: number;
    updated_at: number;
  };
  replication_executions: {
    id: Generated<number>;
    policy: string;
    trigger_kind: string;
    status: string;
    scope: string | null;
    created_at: number;
    started_at: number | null;
    finished_at: number | null;
    copied: number;
    skipped: number;
    failed: number;
    deleted: number;
    bytes: number;
    error: string | null;
  };
  replication_tasks: {
    id: Generated<number>;
    execution_id: number;
    source_repository: string;
    dest_repository: string;
    reference: string;
    digest: string | null;
    status: string;
    reason: string | null;
    bytes: number;
    resumed_bytes: number;
    duration_ms: number;
    finished_at: number;
  };
  replication_uploads: {
    upload_key: string;
    location: string;
    upload_offset: number;
    updated_at: number;
  };
}

type Db = Kysely<ReplicationTables>;
type PolicyRow = Selectable<ReplicationTables['replication_policies']>;
type ExecutionRow = Selectable<ReplicationTables['replication_executions']>;
type TaskRow = Selectable<ReplicationTables['replication_tasks']>;

function policyOf(r: PolicyRow): ReplicationPolicy {
  return {
    id: Number(r.id),
    name: r.name,
    description: r.description,
    direction: r.direction as ReplicationPolicy['direction'],
    registry: r.registry,
    repositories: JSON.parse(r.repositories) as string[],
    tags: JSON.parse(r.tags) as string[],
    artifactTypes: JSON.parse(r.artifact_types) as string[],
    onlySigned: Number(r.only_signed) === 1,
    destNamespace: r.dest_namespace,
    flatten: Number(r.flatten),
    trigger: r.trigger_kind as TriggerKind,
    cron: r.cron,
    override: Number(r.override) === 1,
    deletion: Number(r.deletion) === 1,
    concurrency: Number(r.concurrency),
    bandwidth: r.bandwidth === null ? null : Number(r.bandwidth),
    enabled: Number(r.enabled) === 1,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

function policyRow(p: ReplicationPolicyInput) {
  return {
    name: p.name,
    description: p.description,
    direction: p.direction,
    registry: p.registry,
    repositories: JSON.stringify(p.repositories),
    tags: JSON.stringify(p.tags),
    artifact_types: JSON.stringify(p.artifactTypes),
    only_signed: p.onlySigned ? 1 : 0,
    dest_namespace: p.destNamespace,
    flatten: p.flatten,
    trigger_kind: p.trigger,
    cron: p.cron,
    override: p.override ? 1 : 0,
    deletion: p.deletion ? 1 : 0,
    concurrency: p.concurrency,
    bandwidth: p.bandwidth,
    enabled: p.enabled ? 1 : 0,
  };
}

function executionOf(r: ExecutionRow): Execution {
  return {
    id: Number(r.id),
    policy: r.policy,
    trigger: r.trigger_kind as TriggerKind,
    status: r.status as Execution['status'],
    scope: r.scope === null ? null : (JSON.parse(r.scope) as ExecutionScope),
    createdAt: Number(r.created_at),
    startedAt: r.started_at === null ? null : Number(r.started_at),
    finishedAt: r.finished_at === null ? null : Number(r.finished_at),
    copied: Number(r.copied),
    skipped: Number(r.skipped),
    failed: Number(r.failed),
    deleted: Number(r.deleted),
    bytes: Number(r.bytes),
    error: r.error,
  };
}

function taskOf(r: TaskRow): Task {
  return {
    id: Number(r.id),
    executionId: Number(r.execution_id),
    sourceRepository: r.source_repository,
    destRepository: r.dest_repository,
    reference: r.reference,
    digest: r.digest,
    status: r.status as TaskStatus,
    reason: r.reason,
    bytes: Number(r.bytes),
    resumedBytes: Number(r.resumed_bytes),
    durationMs: Number(r.duration_ms),
    finishedAt: Number(r.finished_at),
  };
}

function uniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return isDuplicateKey(err) || code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** Checkpoint keys can be long (URL, repository, digest): stored as their SHA-256. */
function keyOf(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** ReplicationStore on Kysely, the same on SQLite, PostgreSQL and MySQL. */
export class KyselyReplicationStore implements ReplicationStore {
  private readonly db: Db;

  constructor(
    db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {
    this.db = db as unknown as Db;
  }

  async listPolicies(): Promise<ReplicationPolicy[]> {
    return (await this.db.selectFrom('replication_policies').selectAll().orderBy('name').execute()).map(policyOf);
  }

  async policy(name: string): Promise<ReplicationPolicy | null> {
    const row = await this.db.selectFrom('replication_policies').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? policyOf(row) : null;
  }

  async createPolicy(input: ReplicationPolicyInput, now: number): Promise<ReplicationPolicy> {
    try {
      const id = await insertReturningId(
        this.db.insertInto('replication_policies').values({ ...policyRow(input), created_at: now, updated_at: now }),
        this.dialect,
      );
      return { ...input, id, createdAt: now, updatedAt: now };
    } catch (err) {
      if (uniqueViolation(err)) throw new RegistryError('CONFLICT', `replication policy ${input.name} already exists`);
      throw err;
    }
  }

  async updatePolicy(name: string, input: ReplicationPolicyInput, now: number): Promise<ReplicationPolicy | null> {
    const result = await this.db
      .updateTable('replication_policies')
      .set({ ...policyRow(input), name, updated_at: now })
      .where('name', '=', name)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return null;
    return this.policy(name);
  }

  async deletePolicy(name: string): Promise<boolean> {
    const result = await this.db.deleteFrom('replication_policies').where('name', '=', name).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async policiesUsing(registry: string): Promise<string[]> {
    return (await this.db.selectFrom('replication_policies').select('name').where('registry', '=', registry).orderBy('name').execute()).map(
      (r) => r.name,
    );
  }

  async createExecution(policy: string, trigger: TriggerKind, scope: ExecutionScope | null, now: number): Promise<Execution> {
    const row = {
      policy,
      trigger_kind: trigger,
      status: 'pending',
      scope: scope ? JSON.stringify(scope) : null,
      created_at: now,
      started_at: null,
      finished_at: null,
      copied: 0,
      skipped: 0,
      failed: 0,
      deleted: 0,
      bytes: 0,
      error: null,
    };
    const id = await insertReturningId(this.db.insertInto('replication_executions').values(row), this.dialect);
    return executionOf({ ...row, id });
  }

  async execution(id: number): Promise<Execution | null> {
    const row = await this.db.selectFrom('replication_executions').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? executionOf(row) : null;
  }

  async listExecutions(query: { policy?: string; before?: number; limit: number }): Promise<Execution[]> {
    let q = this.db.selectFrom('replication_executions').selectAll();
    if (query.policy !== undefined) q = q.where('policy', '=', query.policy);
    if (query.before !== undefined) q = q.where('id', '<', query.before);
    return (await q.orderBy('id', 'desc').limit(query.limit).execute()).map(executionOf);
  }

  async runnable(limit: number): Promise<Execution[]> {
    // `stopping` too: its runner died before it could end it; the next runner ends it as stopped.
    const rows = await this.db
      .selectFrom('replication_executions')
      .selectAll()
      .where('status', 'in', ['pending', 'running', 'stopping'])
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(executionOf);
  }

  async lastExecution(policy: string, trigger: TriggerKind): Promise<Execution | null> {
    const row = await this.db
      .selectFrom('replication_executions')
      .selectAll()
      .where('policy', '=', policy)
      .where('trigger_kind', '=', trigger)
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? executionOf(row) : null;
  }

  async markRunning(id: number, now: number): Promise<void> {
    await this.db
      .updateTable('replication_executions')
      .set({ status: 'running', started_at: now })
      .where('id', '=', id)
      .where('started_at', 'is', null)
      .where('status', '=', 'pending')
      .execute();
    await this.db
      .updateTable('replication_executions')
      .set({ status: 'running' })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .execute();
  }

  async requestStop(id: number, now: number): Promise<Execution | null> {
    const pending = await this.db
      .updateTable('replication_executions')
      .set({ status: 'stopped', finished_at: now })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    const running =
      pending.numUpdatedRows > 0n
        ? null
        : await this.db
            .updateTable('replication_executions')
            .set({ status: 'stopping' })
            .where('id', '=', id)
            .where('status', '=', 'running')
            .executeTakeFirst();
    if (pending.numUpdatedRows === 0n && (running?.numUpdatedRows ?? 0n) === 0n) return null;
    return this.execution(id);
  }

  async finishExecution(
    id: number,
    result: Pick<Execution, 'status' | 'copied' | 'skipped' | 'failed' | 'deleted' | 'bytes' | 'error'>,
    now: number,
  ): Promise<void> {
    await this.db
      .updateTable('replication_executions')
      .set({
        status: result.status,
        copied: result.copied,
        skipped: result.skipped,
        failed: result.failed,
        deleted: result.deleted,
        bytes: result.bytes,
        error: result.error,
        finished_at: now,
      })
      .where('id', '=', id)
      .execute();
  }

  async pruneExecutions(before: number): Promise<number> {
    // Two steps, in batches: MySQL refuses a DELETE whose subquery reads the table it deletes from.
    const newest = this.db
      .selectFrom('replication_executions')
      .select((eb) => eb.fn.max('id').as('id'))
      .groupBy('policy');
    let pruned = 0;
    for (;;) {
      const ids = (
        await this.db
          .selectFrom('replication_executions')
          .select('id')
          .where('finished_at', '<', before)
          .where('status', 'not in', ['pending', 'running'])
          .where('id', 'not in', newest)
          .orderBy('id')
          .limit(500)
          .execute()
      ).map((r) => r.id);
      if (ids.length === 0) return pruned;
      await this.db.transaction().execute(async (trx) => {
        await trx.deleteFrom('replication_tasks').where('execution_id', 'in', ids).execute();
        await trx.deleteFrom('replication_executions').where('id', 'in', ids).execute();
      });
      pruned += ids.length;
    }
  }

  async addTask(task: NewTask): Promise<void> {
    await this.db
      .insertInto('replication_tasks')
      .values({
        execution_id: task.executionId,
        source_repository: task.sourceRepository,
        dest_repository: task.destRepository,
        reference: task.reference,
        digest: task.digest,
        status: task.status,
        reason: task.reason,
        bytes: task.bytes,
        resumed_bytes: task.resumedBytes,
        duration_ms: task.durationMs,
        finished_at: task.finishedAt,
      })
      .execute();
  }

  async tasks(executionId: number, query: { status?: TaskStatus; after?: number; limit: number }): Promise<Task[]> {
    let q = this.db.selectFrom('replication_tasks').selectAll().where('execution_id', '=', executionId);
    if (query.status !== undefined) q = q.where('status', '=', query.status);
    if (query.after !== undefined) q = q.where('id', '>', query.after);
    return (await q.orderBy('id').limit(query.limit).execute()).map(taskOf);
  }

  async checkpoint(key: string): Promise<{ location: string; offset: number } | null> {
    const row = await this.db
      .selectFrom('replication_uploads')
      .select(['location', 'upload_offset'])
      .where('upload_key', '=', keyOf(key))
      .executeTakeFirst();
    return row ? { location: row.location, offset: Number(row.upload_offset) } : null;
  }

  async saveCheckpoint(key: string, location: string, offset: number, now: number): Promise<void> {
    await insertOrUpdate(
      this.db.insertInto('replication_uploads').values({ upload_key: keyOf(key), location, upload_offset: offset, updated_at: now }),
      this.dialect,
      ['upload_key'],
      { location, upload_offset: offset, updated_at: now },
    ).execute();
  }

  async deleteCheckpoint(key: string): Promise<void> {
    await this.db.deleteFrom('replication_uploads').where('upload_key', '=', keyOf(key)).execute();
  }
}
