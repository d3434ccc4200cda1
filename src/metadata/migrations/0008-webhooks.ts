import { type Kysely } from 'kysely';
import { schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * Webhooks (docs/observability.md#webhooks):
 * - `webhook_policies`: per-project webhook policies of the admin API. `auth_header` and
 *   `secret` are sealed with the secrets key (SecretSealer) when one is configured; `events`,
 *   `repositories` and `tags` are JSON arrays.
 * - `webhook_deliveries`: one row per event and endpoint, inserted by the outbox consumer in
 *   the transaction that moves its cursor (so exactly once), with the rendered body; the
 *   delivery job sends each endpoint's oldest pending row and records every attempt on it.
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const pg = ctx.dialect === 'postgres';
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);

  await db.schema
    .createTable('webhook_policies')
    .addColumn('id', t.serialId, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('project', t.key(255), (c) => c.notNull())
    .addColumn('name', t.key(255), (c) => c.notNull())
    .addColumn('url', t.text, (c) => c.notNull())
    .addColumn('format', t.plainKey(32), (c) => c.notNull())
    .addColumn('events', t.text, (c) => c.notNull())
    .addColumn('repositories', t.text, (c) => c.notNull())
    .addColumn('tags', t.text, (c) => c.notNull())
    .addColumn('enabled', 'integer', (c) => c.notNull())
    .addColumn('auth_header', t.text)
    .addColumn('secret', t.text)
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('webhook_policies_project_name').on('webhook_policies').columns(['project', 'name']).unique().execute();

  await db.schema
    .createTable('webhook_deliveries')
    .addColumn('id', t.serialId, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('endpoint', t.key(255), (c) => c.notNull())
    .addColumn('project', t.key(255))
    .addColumn('event_id', t.plainKey(64), (c) => c.notNull())
    .addColumn('kind', t.plainKey(64), (c) => c.notNull())
    .addColumn('repository', t.text)
    .addColumn('content_type', t.text, (c) => c.notNull())
    .addColumn('body', t.text, (c) => c.notNull())
    .addColumn('status', t.plainKey(16), (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
    .addColumn('last_status_code', 'integer')
    .addColumn('last_error', t.text)
    .addColumn('last_latency_ms', 'integer')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('delivered_at', 'bigint')
    .addColumn('redelivery_of', 'bigint')
    .execute();
  // The worker's head-of-line lookup (oldest pending per endpoint) and the log's listings.
  await db.schema.createIndex('webhook_deliveries_queue').on('webhook_deliveries').columns(['status', 'endpoint', 'id']).execute();
  await db.schema.createIndex('webhook_deliveries_endpoint').on('webhook_deliveries').columns(['endpoint', 'id']).execute();
  await db.schema.createIndex('webhook_deliveries_project').on('webhook_deliveries').columns(['project', 'id']).execute();
}
