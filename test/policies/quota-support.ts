import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { adminAuth, api, type HasUrl } from '../auth/support.js';
import type { TestServer } from '../helpers/server.js';

/** A project's quota as GET /api/v1/projects/:project/quota answers it. */
export interface QuotaAnswer {
  project: string;
  used: number;
  limit: number | null;
  percent: number | null;
}

export async function getQuota(server: HasUrl, project: string, authorization = adminAuth()): Promise<QuotaAnswer> {
  const res = await api(server, 'GET', `/projects/${project}/quota`, authorization);
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as QuotaAnswer;
}

export async function setQuota(server: HasUrl, project: string, limit: number | string | null): Promise<QuotaAnswer> {
  const res = await api(server, 'PUT', `/projects/${project}/quota`, adminAuth(), { limit });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as QuotaAnswer;
}

/** Outbox events of `type` (payloads), oldest first. */
export async function outboxEvents<T = Record<string, unknown>>(server: TestServer, type: string): Promise<T[]> {
  const { rows } = await sql<{ payload: string }>`select payload from events where type = ${type} order by id`.execute(
    server.stores.metadata.db,
  );
  return rows.map((r) => JSON.parse(r.payload) as T);
}

/** Polls until `read` returns something truthy (bounded: fails after `ms`). */
export async function eventually<T>(read: () => Promise<T | null | undefined | false>, what: string, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
