import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { transactionOf } from '../../src/metadata/kysely-store.js';
import { KyselyWebhookStore } from '../../src/metadata/webhook-store.js';
import { openSealer } from '../../src/secrets/index.js';
import type { Stores } from '../../src/stores.js';
import type { NewDelivery, WebhookPolicyInput } from '../../src/webhooks/ports.js';
import { deploy, type Backend, type Deployment } from './deployment.js';
import { unique } from './fixtures.js';

/**
 * The webhook port contract (WebhookStore in src/webhooks/ports.ts) on every metadata back end,
 * through the composition root's `stores.webhooks`: policies, the per-endpoint queue (head of
 * line, due endpoints, compare-and-set attempts), the log's filters and redelivery.
 */
export function webhookStoreContract(backend: Backend): void {
  describe(`webhook store contract: ${backend}`, () => {
    let deployment: Deployment;
    let stores: Stores;
    before(async () => {
      deployment = await deploy(backend);
      stores = deployment.stores;
    });
    after(async () => deployment?.destroy());

    const policy = (name: string, extra: Partial<WebhookPolicyInput> = {}): WebhookPolicyInput => ({
      name,
      url: 'https://example.com/hook',
      format: 'harbor',
      events: ['artifact.pushed'],
      repositories: ['app-*'],
      tags: [],
      enabled: true,
      authHeader: 'Bearer t',
      secret: 's3cret',
      ...extra,
    });
    const delivery = (endpoint: string, n: number, project: string | null = null): NewDelivery => ({
      endpoint,
      project,
      eventId: `event-${n}`,
      kind: 'artifact.pushed',
      repository: 'p/app',
      contentType: 'application/json',
      body: `{"n":${n},"text":"ü"}`,
      createdAt: 1_000 + n,
    });
    const enqueue = (rows: NewDelivery[]) => stores.metadata.transaction((tx) => stores.webhooks.within(tx).enqueue(rows));

    it('policies: create, read back (secrets opened), scoped by project, unique names, update, delete', async () => {
      const project = unique('proj');
      const created = await stores.webhooks.createPolicy(project, policy('ci'), 5);
      assert.deepEqual(await stores.webhooks.policy(project, created.id), {
        ...policy('ci'),
        id: created.id,
        project,
        createdAt: 5,
        updatedAt: 5,
      });
      assert.equal(await stores.webhooks.policy(unique('other'), created.id), null, "another project's id");
      assert.equal((await stores.webhooks.policyById(created.id))?.secret, 's3cret');
      await assert.rejects(stores.webhooks.createPolicy(project, policy('ci'), 6), 'one name per project');
      const updated = await stores.webhooks.updatePolicy(
        project,
        created.id,
        policy('ci', { enabled: false, secret: null, tags: ['v*'] }),
        9,
      );
      assert.equal(updated?.enabled, false);
      assert.equal(updated?.secret, null);
      assert.deepEqual(updated?.tags, ['v*']);
      assert.equal(updated?.updatedAt, 9);
      const inTx = await stores.metadata.transaction((tx) => stores.webhooks.within(tx).enabledPolicies([project]));
      assert.deepEqual(inTx, [], 'disabled policies queue nothing');
      assert.equal(await stores.webhooks.deletePolicy(project, created.id), true);
      assert.deepEqual(await stores.webhooks.policies(project), []);
    });

    it('secrets stored before a secrets key was configured are sealed at start, and still open', async () => {
      const project = unique('sealp');
      const plain = await stores.webhooks.createPolicy(project, policy('old'), 1);
      const sealed = new KyselyWebhookStore(
        stores.metadata.db,
        stores.metadata.dialect,
        openSealer({ key: randomBytes(32).toString('base64'), previouskeys: [] }),
        transactionOf,
      );
      assert.ok((await sealed.sealStoredSecrets()) >= 2);
      assert.equal(await sealed.sealStoredSecrets(), 0, 'once');
      const reread = (await sealed.policy(project, plain.id))!;
      assert.deepEqual([reread.secret, reread.authHeader], ['s3cret', 'Bearer t']);
      const raw = await (stores.metadata.db as unknown as import('kysely').Kysely<{ webhook_policies: { id: number; secret: string } }>)
        .selectFrom('webhook_policies')
        .select('secret')
        .where('id', '=', plain.id)
        .executeTakeFirstOrThrow();
      assert.match(raw.secret, /^berth:v1:/);
      await stores.webhooks.deletePolicy(project, plain.id);
    });

    it('the queue: only the oldest pending row of an endpoint is its head; an attempt is a compare-and-set on attempts', async () => {
      const a = unique('config:a');
      const b = unique('config:b');
      await enqueue([delivery(a, 1), delivery(a, 2), delivery(b, 3), delivery(a, 4)]);
      const head = (await stores.webhooks.head(a))!;
      assert.equal(head.eventId, 'event-1');
      assert.equal(head.body, '{"n":1,"text":"ü"}');
      assert.equal(head.status, 'pending');
      assert.equal(head.attempts, 0);
      assert.ok((await stores.webhooks.dueEndpoints(2_000, 1_000)).includes(a));
      // A failed attempt moves the head into backoff: the whole endpoint waits, later rows too.
      assert.equal(
        await stores.webhooks.recordAttempt(head.id, 0, {
          status: 'pending',
          statusCode: 500,
          error: 'HTTP 500',
          latencyMs: 3,
          at: 2_000,
          nextAttemptAt: 9_000,
        }),
        true,
      );
      assert.equal(
        await stores.webhooks.recordAttempt(head.id, 0, {
          status: 'delivered',
          statusCode: 200,
          error: null,
          latencyMs: 3,
          at: 2_000,
          nextAttemptAt: 2_000,
        }),
        false,
        'a stale attempt count loses',
      );
      const due = await stores.webhooks.dueEndpoints(5_000, 1_000);
      assert.ok(!due.includes(a) && due.includes(b));
      assert.equal(
        await stores.webhooks.recordAttempt(head.id, 1, {
          status: 'delivered',
          statusCode: 204,
          error: null,
          latencyMs: 4,
          at: 9_100,
          nextAttemptAt: 9_100,
        }),
        true,
      );
      const done = (await stores.webhooks.delivery(head.id))!;
      assert.deepEqual(
        [done.status, done.attempts, done.lastStatusCode, done.lastError, done.lastLatencyMs, done.deliveredAt],
        ['delivered', 2, 204, null, 4, 9_100],
      );
      assert.equal((await stores.webhooks.head(a))!.eventId, 'event-2');
      assert.equal((await stores.webhooks.pendingCounts())[a], 2);
    });

    it('the log: newest first, filtered by endpoint, project and status, keyset pages; abandon and redeliver', async () => {
      const e = unique('policy:');
      const project = unique('logp');
      await enqueue([delivery(e, 1, project), delivery(e, 2, project), delivery(e, 3, project)]);
      const all = await stores.webhooks.deliveries({ endpoint: e, limit: 10 });
      assert.deepEqual(
        all.map((d) => d.eventId),
        ['event-3', 'event-2', 'event-1'],
      );
      assert.deepEqual(
        (await stores.webhooks.deliveries({ project, limit: 2 })).map((d) => d.eventId),
        ['event-3', 'event-2'],
      );
      assert.deepEqual(
        (await stores.webhooks.deliveries({ endpoint: e, before: all[1]!.id, limit: 10 })).map((d) => d.eventId),
        ['event-1'],
      );
      assert.equal(await stores.webhooks.abandon(e, 'the webhook policy was deleted', 7), 3);
      const failed = await stores.webhooks.deliveries({ endpoint: e, status: 'failed', limit: 10 });
      assert.equal(failed.length, 3);
      assert.equal(failed[0]!.lastError, 'the webhook policy was deleted');
      assert.equal(await stores.webhooks.head(e), null);
      const again = (await stores.webhooks.redeliver(failed[2]!.id, 8))!;
      assert.deepEqual(
        [again.status, again.attempts, again.eventId, again.body, again.redeliveryOf, again.createdAt],
        ['pending', 0, 'event-1', failed[2]!.body, failed[2]!.id, 8],
      );
      assert.equal((await stores.webhooks.head(e))!.id, again.id);
      assert.equal(await stores.webhooks.redeliver(987_654_321, 9), null);
      // Pruning keeps pending rows, whatever their age.
      assert.ok((await stores.webhooks.prune(1_000_000)) >= 3);
      assert.deepEqual(
        (await stores.webhooks.deliveries({ endpoint: e, limit: 10 })).map((d) => d.id),
        [again.id],
      );
    });
  });
}
