import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RegistryClient, makeImage } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { Receiver, fastWebhooks, json, type Received } from './support.js';

const tagOf = (r: Received): string => json(r).events[0].target.tag;

/** Delivery semantics against a real receiver that fails, goes down, or answers slowly. */
describe('webhooks: delivery, retries, order, isolation', () => {
  let receiver: Receiver;
  let server: TestServer;
  let client: RegistryClient;
  const fails = new Map<string, number>();

  before(async () => {
    receiver = await Receiver.start();
    const endpoint = (name: string, extra: Record<string, unknown> = {}) => ({
      name,
      url: receiver.url(`/${name}`),
      backoff: '200ms',
      ...extra,
    });
    server = await startTestServer(
      fastWebhooks([
        endpoint('flaky', { ignore: { actions: ['pull', 'delete'] } }),
        endpoint('dead', { maxattempts: 2, backoff: '100ms', ignore: { actions: ['pull', 'delete'] } }),
        endpoint('slow', { timeout: '10s', ignore: { actions: ['pull', 'delete'] } }),
        endpoint('fast', { ignore: { actions: ['pull', 'delete'] } }),
      ]),
    );
    client = new RegistryClient(server.url);
    receiver.respond = (r) => {
      if (r.path === '/dead') return 500;
      const left = fails.get(r.path) ?? 0;
      if (left > 0) {
        fails.set(r.path, left - 1);
        return 500;
      }
      return 200;
    };
  });
  after(async () => {
    await server?.destroy();
    await receiver?.stop();
  });

  it('a receiver answering 500 is retried with growing spacing, and later events wait behind the failing one (order kept)', async () => {
    fails.set('/flaky', 3);
    await client.pushImage('ord/app', 'a1', makeImage({ layers: 1, layerSize: 32 }));
    await client.pushImage('ord/app', 'a2', makeImage({ layers: 1, layerSize: 32 }));
    await receiver.waitFor('a1 and a2 on /flaky', () => receiver.delivered('/flaky').length === 2);
    const attempts = receiver.requests.filter((r) => r.path === '/flaky');
    assert.deepEqual(
      attempts.map((r) => [tagOf(r), r.status]),
      [
        ['a1', 500],
        ['a1', 500],
        ['a1', 500],
        ['a1', 200],
        ['a2', 200],
      ],
    );
    const gaps = attempts.slice(1, 4).map((r, i) => r.at - attempts[i]!.at);
    // backoff 200 ms doubling: no retry before 200, 400, 800 ms (a loaded machine only adds to them).
    const floors = [200, 400, 800];
    assert.ok(
      gaps.every((gap, i) => gap >= floors[i]! - 15),
      `spacing at least ${floors.join(', ')} ms: ${gaps.join(', ')} ms`,
    );

    const log = await server.composition.webhooks.service.deliveries({ endpoint: 'config:flaky', limit: 10 });
    const first = log.find((d) => d.body.includes('"tag":"a1"'))!;
    assert.equal(first.status, 'delivered');
    assert.equal(first.attempts, 4);
    assert.equal(first.lastStatusCode, 200);
    assert.ok(first.lastLatencyMs !== null && first.lastLatencyMs >= 0);
  });

  it('gives up after maxattempts (status failed, last error kept) and a manual redelivery sends the same event again', async () => {
    await receiver.waitFor('two attempts on /dead', () => receiver.requests.filter((r) => r.path === '/dead').length >= 4);
    const log = await server.composition.webhooks.service.deliveries({ endpoint: 'config:dead', limit: 10 });
    assert.ok(log.length >= 2);
    const failed = log.find((d) => d.status === 'failed')!;
    assert.ok(failed, JSON.stringify(log.map((d) => [d.status, d.attempts])));
    assert.equal(failed.attempts, 2);
    assert.equal(failed.lastStatusCode, 500);
    assert.equal(failed.lastError, 'HTTP 500');
    receiver.respond = () => 200;
    const again = await server.composition.webhooks.service.redeliver(failed.id);
    assert.equal(again.redeliveryOf, failed.id);
    assert.equal(again.eventId, failed.eventId);
    await receiver.waitFor('the redelivery', () =>
      receiver.delivered('/dead').some((r) => r.headers['x-berth-event-id'] === failed.eventId),
    );
    const original = await server.composition.webhooks.service.delivery(failed.id);
    assert.equal(original.status, 'failed', 'the original keeps its log');
  });

  it('a slow receiver delays neither the push nor another endpoint', async () => {
    receiver.delay = (r) => (r.path === '/slow' ? 4_000 : 0);
    await client.pushImage('iso/app', 's1', makeImage({ layers: 1, layerSize: 32 }));
    const pushed = Date.now();
    await receiver.waitFor('s1 on /slow', () => receiver.delivered('/slow').some((r) => tagOf(r) === 's1'));
    const slowAnswered = receiver.delivered('/slow').find((r) => tagOf(r) === 's1')!.answeredAt;
    const fast = receiver.delivered('/fast').find((r) => tagOf(r) === 's1');
    // Structural, not wall-clock (CI machines are loaded): had anything waited for /slow, it would come after its answer.
    assert.ok(pushed < slowAnswered, 'the push returned while /slow held its answer');
    assert.ok(fast && fast.at < slowAnswered, `/fast got s1 ${fast ? slowAnswered - fast.at : '-'} ms before /slow answered`);
    receiver.delay = () => 0;
  });

  it('a receiver that is down gets every event, in push order, once it is back', async () => {
    await receiver.stop();
    const tags = ['d1', 'd2', 'd3', 'd4'];
    for (const tag of tags) await client.pushImage('down/app', tag, makeImage({ layers: 1, layerSize: 32 }));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const pending = await server.composition.webhooks.service.deliveries({ endpoint: 'config:fast', status: 'pending', limit: 10 });
    assert.ok(pending.length >= 4, 'queued while the receiver is down');
    assert.ok(
      pending.some((d) => d.attempts > 0 && d.lastError?.startsWith('request failed')),
      'attempts failed with a connection error',
    );
    await receiver.listen();
    await receiver.waitFor('d1..d4 on /fast', () => tags.every((t) => receiver.delivered('/fast').some((r) => tagOf(r) === t)));
    const order = receiver
      .delivered('/fast')
      .map(tagOf)
      .filter((t) => tags.includes(t));
    assert.deepEqual(order, tags);
  });
});
