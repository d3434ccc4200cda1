import { sql, type Generated, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { MetadataTx } from '../core/ports.js';
import type { SecretSealer } from '../core/secrets.js';
import type {
  AttemptOutcome,
  Delivery,
  DeliveryQuery,
  DeliveryStatus,
  NewDelivery,
  WebhookFormat,
  WebhookPolicy,
  WebhookPolicyInput,
  WebhookStore,
  WebhookTxRows,
} from '../webhooks/ports.js';
import { insertReturningId, writeTransaction, type AnyDb, type Dialect } from './dialect.js';
import type { Database } from './tables.js';

/** Row types of migrations/0008-webhooks.ts. */
export interface WebhookTables {
  webhook_policies: {
    id: Generated<number>;
    project: string;
    name: string;
    url: string;
    format: string;
    events: string;
    repositories: string;
    tags: string;
    enabled: number;
    auth_header: string | null;
    secret: string | null;
    created_at: number;
    updated_at: number;
  };
  webhook_deliveries: {
    id: Generated<number>;
    endpoint: string;
    project: string | null;
    event_id: string;
    kind: string;
    repository: string | null;
    content_type: string;
    body: string;
    status: string;
    attempts: number;
    next_attempt_at: number;
    last_status_code: number | null;
    last_error: string | null;
    last_latency_ms: number | null;
    created_at: number;
    delivered_at: number | null;
    redelivery_of: number | null;
  };
}

/** The one column of src/auth's projects table webhooks read (a project's visibility, for Harbor's repo_type). */
interface ProjectVisibility {
  projects: { name: string; public: number };
}

type Db = Kysely<WebhookTables>;
type PolicyRow = Selectable<WebhookTables['webhook_policies']>;
type DeliveryRow = Selectable<WebhookTables['webhook_deliveries']>;

/** Rows per INSERT statement (well under every driver's parameter limit: 17 columns each). */
const INSERT_CHUNK = 200;

/** The sealing context of a policy's secret column: a sealed value opens only on its own row and column. */
function sealContext(id: number, column: 'auth_header' | 'secret'): string {
  return `webhook_policies:${id}:${column}`;
}

function policyOf(row: PolicyRow, open: (stored: string | null, column: 'auth_header' | 'secret') => string | null): WebhookPolicy {
  return {
    id: Number(row.id),
    project: row.project,
    name: row.name,
    url: row.url,
    format: row.format as WebhookFormat,
    events: JSON.parse(row.events) as string[],
    repositories: JSON.parse(row.repositories) as string[],
    tags: JSON.parse(row.tags) as string[],
    enabled: Number(row.enabled) === 1,
    authHeader: open(row.auth_header, 'auth_header'),
    secret: open(row.secret, 'secret'),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function deliveryOf(row: DeliveryRow): Delivery {
  const nullableNumber = (v: number | null) => (v === null ? null : Number(v));
  return {
    id: Number(row.id),
    endpoint: row.endpoint,
    project: row.project,
    eventId: row.event_id,
    kind: row.kind,
    repository: row.repository,
    contentType: row.content_type,
    body: row.body,
    createdAt: Number(row.created_at),
    status: row.status as DeliveryStatus,
    attempts: Number(row.attempts),
    nextAttemptAt: Number(row.next_attempt_at),
    lastStatusCode: nullableNumber(row.last_status_code),
    lastError: row.last_error,
    lastLatencyMs: nullableNumber(row.last_latency_ms),
    deliveredAt: nullableNumber(row.delivered_at),
    redeliveryOf: nullableNumber(row.redelivery_of),
  };
}

function newRow(d: NewDelivery, redeliveryOf: number | null = null): Omit<DeliveryRow, 'id'> {
  return {
    endpoint: d.endpoint,
    project: d.project,
    event_id: d.eventId,
    kind: d.kind,
    repository: d.repository,
    content_type: d.contentType,
    body: d.body,
    status: 'pending',
    attempts: 0,
    next_attempt_at: d.createdAt,
    last_status_code: null,
    last_error: null,
    last_latency_ms: null,
    created_at: d.createdAt,
    delivered_at: null,
    redelivery_of: redeliveryOf,
  };
}

async function insertDeliveries(db: AnyDb<WebhookTables>, rows: Omit<DeliveryRow, 'id'>[]): Promise<void> {
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    await db
      .insertInto('webhook_deliveries')
      .values(rows.slice(i, i + INSERT_CHUNK))
      .execute();
  }
}

/** The consumer's view inside the transaction that moves its cursor. */
class WebhookTxQueries implements WebhookTxRows {
  constructor(private readonly trx: Transaction<WebhookTables>) {}

  async enabledPolicies(projects: string[]) {
    if (projects.length === 0) return [];
    const rows = await this.trx
      .selectFrom('webhook_policies')
      .selectAll()
      .where('project', 'in', projects)
      .where('enabled', '=', 1)
      .orderBy('id')
      .execute();
    return rows.map((row) => policyOf(row, () => null));
  }

  async enqueue(deliveries: NewDelivery[]): Promise<void> {
    await insertDeliveries(
      this.trx,
      deliveries.map((d) => newRow(d)),
    );
  }

  async publicProjects(projects: string[]): Promise<Set<string>> {
    if (projects.length === 0) return new Set();
    const trx = this.trx as unknown as Transaction<ProjectVisibility>;
    const rows = await trx.selectFrom('projects').select('name').where('name', 'in', projects).where('public', '=', 1).execute();
    return new Set(rows.map((r) => r.name));
  }
}

/**
 * WebhookStore on Kysely, for SQLite, PostgreSQL and MySQL alike. A policy's Authorization
 * header and signing secret are sealed with the SecretSealer the composition root passes,
 * bound to their row and column, and opened only when read for the delivery worker or the API
 * (which never renders them).
 */
export class KyselyWebhookStore implements WebhookStore {
  private readonly db: Db;

  constructor(
    db: Kysely<Database>,
    private readonly dialect: Dialect,
    private readonly sealer: SecretSealer,
    private readonly transactionOf: (tx: MetadataTx) => Transaction<Database>,
  ) {
    this.db = db as unknown as Db;
  }

  within(tx: MetadataTx): WebhookTxRows {
    return new WebhookTxQueries(this.transactionOf(tx) as unknown as Transaction<WebhookTables>);
  }

  private opened(row: PolicyRow): WebhookPolicy {
    return policyOf(row, (stored, column) => (stored === null ? null : this.sealer.open(stored, sealContext(Number(row.id), column))));
  }

  private sealedColumns(id: number, input: WebhookPolicyInput) {
    const seal = (value: string | null, column: 'auth_header' | 'secret') =>
      value === null ? null : this.sealer.seal(value, sealContext(id, column));
    return { auth_header: seal(input.authHeader, 'auth_header'), secret: seal(input.secret, 'secret') };
  }

  private static plainColumns(input: WebhookPolicyInput) {
    return {
      name: input.name,
      url: input.url,
      format: input.format,
      events: JSON.stringify(input.events),
      repositories: JSON.stringify(input.repositories),
      tags: JSON.stringify(input.tags),
      enabled: input.enabled ? 1 : 0,
    };
  }

  async policies(project: string): Promise<WebhookPolicy[]> {
    const rows = await this.db.selectFrom('webhook_policies').selectAll().where('project', '=', project).orderBy('id').execute();
    return rows.map((row) => this.opened(row));
  }

  async policy(project: string, id: number): Promise<WebhookPolicy | null> {
    const row = await this.db
      .selectFrom('webhook_policies')
      .selectAll()
      .where('project', '=', project)
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? this.opened(row) : null;
  }

  async policyById(id: number): Promise<WebhookPolicy | null> {
    const row = await this.db.selectFrom('webhook_policies').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? this.opened(row) : null;
  }

  async createPolicy(project: string, input: WebhookPolicyInput, now: number): Promise<WebhookPolicy> {
    return writeTransaction(this.db, async (trx) => {
      // The id is part of the sealing context: insert first, then store the sealed values on the row.
      const values = {
        project,
        ...KyselyWebhookStore.plainColumns(input),
        auth_header: null,
        secret: null,
        created_at: now,
        updated_at: now,
      };
      const id = await insertReturningId(trx.insertInto('webhook_policies').values(values), this.dialect);
      await trx.updateTable('webhook_policies').set(this.sealedColumns(id, input)).where('id', '=', id).execute();
      return { ...input, id, project, createdAt: now, updatedAt: now };
    });
  }

  async updatePolicy(project: string, id: number, input: WebhookPolicyInput, now: number): Promise<WebhookPolicy | null> {
    const result = await this.db
      .updateTable('webhook_policies')
      .set({ ...KyselyWebhookStore.plainColumns(input), ...this.sealedColumns(id, input), updated_at: now })
      .where('project', '=', project)
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0 ? this.policy(project, id) : null;
  }

  async deletePolicy(project: string, id: number): Promise<boolean> {
    const result = await this.db.deleteFrom('webhook_policies').where('project', '=', project).where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async dueEndpoints(now: number, limit: number): Promise<string[]> {
    const rows = await sql<{ endpoint: string }>`
      select d.endpoint from webhook_deliveries d
      join (select endpoint, min(id) as head from webhook_deliveries where status = 'pending' group by endpoint) h on d.id = h.head
      where d.next_attempt_at <= ${now}
      order by d.next_attempt_at
      limit ${limit}`.execute(this.db);
    return rows.rows.map((r) => r.endpoint);
  }

  async head(endpoint: string): Promise<Delivery | null> {
    const row = await this.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('status', '=', 'pending')
      .where('endpoint', '=', endpoint)
      .orderBy('id')
      .limit(1)
      .executeTakeFirst();
    return row ? deliveryOf(row) : null;
  }

  async recordAttempt(id: number, attempts: number, outcome: AttemptOutcome): Promise<boolean> {
    const result = await this.db
      .updateTable('webhook_deliveries')
      .set({
        status: outcome.status,
        attempts: attempts + 1,
        next_attempt_at: outcome.nextAttemptAt,
        last_status_code: outcome.statusCode,
        last_error: outcome.error,
        last_latency_ms: outcome.latencyMs,
        delivered_at: outcome.status === 'delivered' ? outcome.at : null,
      })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .where('attempts', '=', attempts)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async abandon(endpoint: string, reason: string, now: number): Promise<number> {
    const result = await this.db
      .updateTable('webhook_deliveries')
      .set({ status: 'failed', last_error: reason, next_attempt_at: now })
      .where('endpoint', '=', endpoint)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  async deliveries(query: DeliveryQuery): Promise<Delivery[]> {
    let q = this.db.selectFrom('webhook_deliveries').selectAll();
    if (query.endpoint !== undefined) q = q.where('endpoint', '=', query.endpoint);
    if (query.project !== undefined) q = q.where('project', '=', query.project);
    if (query.status !== undefined) q = q.where('status', '=', query.status);
    if (query.before !== undefined) q = q.where('id', '<', query.before);
    const rows = await q.orderBy('id', 'desc').limit(query.limit).execute();
    return rows.map(deliveryOf);
  }

  async delivery(id: number): Promise<Delivery | null> {
    const row = await this.db.selectFrom('webhook_deliveries').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? deliveryOf(row) : null;
  }

  async redeliver(id: number, now: number): Promise<Delivery | null> {
    const original = await this.delivery(id);
    if (!original) return null;
    const newId = await insertReturningId(
      this.db.insertInto('webhook_deliveries').values(newRow({ ...original, createdAt: now }, id)),
      this.dialect,
    );
    return this.delivery(newId);
  }

  async sealStoredSecrets(): Promise<number> {
    const rows = await this.db.selectFrom('webhook_policies').select(['id', 'auth_header', 'secret']).execute();
    let sealed = 0;
    for (const row of rows) {
      for (const column of ['auth_header', 'secret'] as const) {
        const stored = row[column];
        if (stored === null || !this.sealer.needsSealing(stored)) continue;
        const context = sealContext(Number(row.id), column);
        // Compare-and-set: a replica starting at the same moment (or an API change) may have written it meanwhile.
        const result = await this.db
          .updateTable('webhook_policies')
          .set({ [column]: this.sealer.seal(this.sealer.open(stored, context), context) })
          .where('id', '=', row.id)
          .where(column, '=', stored)
          .executeTakeFirst();
        sealed += Number(result.numUpdatedRows);
      }
    }
    return sealed;
  }

  async prune(before: number): Promise<number> {
    const result = await this.db
      .deleteFrom('webhook_deliveries')
      .where('status', '<>', 'pending')
      .where('created_at', '<', before)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async pendingCounts(): Promise<Record<string, number>> {
    const rows = await this.db
      .selectFrom('webhook_deliveries')
      .select((eb) => ['endpoint', eb.fn.countAll<number>().as('pending')])
      .where('status', '=', 'pending')
      .groupBy('endpoint')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.endpoint, Number(r.pending)]));
  }
}
