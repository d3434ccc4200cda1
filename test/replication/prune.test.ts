import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OciClient } from '../../src/client/index.js';
import { ADMIN_PASSWORD, adminAuth, api } from '../auth/support.js';
import { makeImage } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { FAST_RETRY, pushImage } from './support.js';

/**
 * Stopping an execution through the API, and the bounded history. The history is bounded: `replication-prune` deletes finished executions older than
 * replication.retention with their task results, and keeps the newest of each policy (cron
 * scheduling counts from it). A Berth replicates into itself (prod/… → copy/prod/…).
 */
describe('replication: stopping executions, pruning the history', () => {
  let server: TestServer;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await api(server, method, path, adminAuth(), body);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const run = async (name: string) => {
    const started = await call('POST', `/replication/policies/${name}/run`);
    assert.equal(started.status, 202, JSON.stringify(started.body));
    for (const deadline = Date.now() + 60_000; ;) {
      const res = await call('GET', `/replication/executions/${started.body.id}`);
      if (!['pending', 'running'].includes(res.body.status)) return res.body as { id: number; status: string };
      if (Date.now() > deadline) assert.fail(`execution ${started.body.id} still ${res.body.status}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  before(async () => {
    // Retention 1 ms: every finished execution is old enough at once; the job runs when the test says.
    server = await startTestServer({
      auth: { mode: 'basic', admin: { password: ADMIN_PASSWORD } },
      replication: { interval: '100ms', retention: '1ms' },
    });
    const local = new OciClient({ baseUrl: server.url, credentials: { username: 'admin', password: ADMIN_PASSWORD }, retry: FAST_RETRY });
    await pushImage(local, 'prod/app', 'v1', makeImage({ layers: 1 }));
    assert.equal(
      (await call('POST', '/registries', { name: 'self', url: server.url, username: 'admin', credential: ADMIN_PASSWORD, kind: 'berth' }))
        .status,
      201,
    );
    for (const name of ['a', 'b']) {
      const created = await call('POST', '/replication/policies', {
        name,
        direction: 'push',
        registry: 'self',
        repositories: ['prod/app'],
        destNamespace: `copy-${name}`,
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
    }
  });
  after(async () => {
    await server?.destroy();
  });

  it('a running execution stops before its next artifact (stopping → stopped); a stopped or finished one answers 409, an unknown one 404', async () => {
    const local = new OciClient({ baseUrl: server.url, credentials: { username: 'admin', password: ADMIN_PASSWORD }, retry: FAST_RETRY });
    for (let i = 0; i < 6; i++) await pushImage(local, 'slow/app', `v${i}`, makeImage({ layers: 1, layerSize: 150_000 + i }));
    // 100 kB/s: each artifact takes over a second, so the stop lands while it runs.
    const created = await call('POST', '/replication/policies', {
      name: 'slow',
      direction: 'push',
      registry: 'self',
      repositories: ['slow/app'],
      destNamespace: 'copy-slow',
      concurrency: 1,
      bandwidth: 100_000,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const started = await call('POST', '/replication/policies/slow/run');
    assert.equal(started.status, 202);
    const id = started.body.id as number;
    for (const deadline = Date.now() + 30_000; (await call('GET', `/replication/executions/${id}`)).body.status !== 'running';) {
      if (Date.now() > deadline) assert.fail('the execution never started');
      await new Promise((r) => setTimeout(r, 50));
    }
    const stop = await call('POST', `/replication/executions/${id}/stop`);
    assert.equal(stop.status, 202, JSON.stringify(stop.body));
    assert.ok(['stopping', 'stopped'].includes(stop.body.status), stop.body.status);
    let execution: { status: string; copied: number };
    for (const deadline = Date.now() + 30_000; ;) {
      execution = (await call('GET', `/replication/executions/${id}`)).body;
      if (execution.status === 'stopped') break;
      if (Date.now() > deadline) assert.fail(`still ${execution.status}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(execution.copied < 6, `stopped before the end: ${execution.copied} of 6 copied`);
    assert.equal((await call('POST', `/replication/executions/${id}/stop`)).status, 409);
    assert.equal((await call('POST', '/replication/executions/999999/stop')).status, 404);
    const refused = await fetch(`${server.url}/api/v1/replication/executions/${id}/stop`, { method: 'POST' });
    assert.equal(refused.status, 401, 'anonymous');
  });

  it('older finished executions go with their tasks; the newest of each policy stays', async () => {
    const a1 = await run('a');
    const a2 = await run('a');
    const b1 = await run('b');
    for (const e of [a1, a2, b1]) assert.equal(e.status, 'succeeded');
    assert.equal((await call('GET', `/replication/executions/${a1.id}/tasks`)).body.length, 1, 'one task: prod/app:v1');
    await server.scheduler.runNow('replication-prune');
    assert.equal((await call('GET', `/replication/executions/${a1.id}`)).status, 404, 'the older execution of a is gone');
    assert.equal((await call('GET', `/replication/executions/${a1.id}/tasks`)).status, 404, 'with its tasks');
    assert.equal((await call('GET', `/replication/executions/${a2.id}`)).status, 200, 'the newest of a stays');
    assert.equal((await call('GET', `/replication/executions/${b1.id}`)).status, 200, 'the only one of b stays');
    const runs = await call('GET', '/jobs');
    const prune = (runs.body.runs as { job: string; summary: { pruned?: number } }[]).find(
      (r) => r.job === 'replication-prune' && r.summary?.pruned,
    );
    assert.equal(prune?.summary.pruned, 1);
  });
});
