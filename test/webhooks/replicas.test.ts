import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { RegistryClient, makeImage } from '../helpers/registry-client.js';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { Receiver, fastWebhooks, json, type Received } from './support.js';

const REPLICAS = 3;
const idOf = (r: Received): string => String(r.headers['x-berth-event-id']);
const targetOf = (r: Received): { repository: string; tag: string } => json(r).events[0].target;

/**
 * Three Berth servers on one PostgreSQL database and one storage directory, each running the
 * outbox dispatcher and the delivery job: every event is delivered once (per-endpoint leases),
 * in order per repository, even with a receiver that fails now and then.
 */
describe('webhooks: three replicas on PostgreSQL deliver each event once', () => {
  let db: TestDatabase;
  let storage: string;
  let receiver: Receiver;
  const replicas: TestServer[] = [];

  before(async () => {
    db = await createTestDatabase('berth_webhooks');
    storage = tempDir('berth-webhook-replicas-');
    receiver = await Receiver.start();
    let answered = 0;
    // Every fifth answer is a 500 and every answer takes 30 ms: retries and slow sends overlap the replicas' rounds.
    receiver.respond = () => (++answered % 5 === 0 ? 500 : 200);
    receiver.delay = () => 30;
    const config = {
      ...fastWebhooks([{ name: 'ci', url: receiver.url('/hook'), backoff: '100ms', ignore: { actions: ['pull'] } }]),
      metadata: { driver: 'postgres', url: db.url },
      storage: { filesystem: { rootdirectory: storage } },
    };
    for (let i = 0; i < REPLICAS; i++) replicas.push(await startTestServer(config));
  });
  after(async () => {
    await Promise.allSettled(replicas.map((r) => r.destroy()));
    await receiver?.stop();
    await db?.drop();
    rmSync(storage, { recursive: true, force: true });
  });

  it('pushes spread over the replicas: each event delivered exactly once, in push order per repository', async () => {
    const pushes: { repository: string; tag: string }[] = [];
    for (let i = 0; i < 12; i++) pushes.push({ repository: `ha/app${i % 2}`, tag: `t${i}` });
    for (const [i, push] of pushes.entries()) {
      const client = new RegistryClient(replicas[i % REPLICAS]!.url);
      await client.pushImage(push.repository, push.tag, makeImage({ layers: 1, layerSize: 32 }));
    }
    await receiver.waitFor('all 12 events', () => receiver.delivered('/hook').length >= pushes.length, 30_000);
    // A duplicate would come after the originals: give the replicas a few more rounds.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const delivered = receiver.delivered('/hook');
    assert.equal(delivered.length, pushes.length, 'no event delivered twice');
    assert.equal(new Set(delivered.map(idOf)).size, pushes.length);
    assert.ok(
      receiver.requests.some((r) => r.status === 500),
      'some attempts failed and were retried',
    );
    for (const repository of ['ha/app0', 'ha/app1']) {
      const expected = pushes.filter((p) => p.repository === repository).map((p) => p.tag);
      assert.deepEqual(
        delivered
          .map(targetOf)
          .filter((t) => t.repository === repository)
          .map((t) => t.tag),
        expected,
        `${repository} in push order`,
      );
    }
  });
});
