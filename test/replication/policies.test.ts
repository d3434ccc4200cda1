import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OciClient } from '../../src/client/index.js';
import { ADMIN_PASSWORD, addUser, adminAuth, api, basic } from '../auth/support.js';
import { startDistribution, type DistributionServer } from '../helpers/distribution.js';
import { makeImage, type Image } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { FAST_RETRY, pushImage, pushReferrer, skopeoRaw } from './support.js';

/**
 * Replication policies over real HTTP: a Berth (basic auth) replicating to a second Berth
 * (token auth) and from CNCF Distribution (htpasswd), run by the leased `replication` job;
 * executions and per-artifact tasks through /api/v1/replication; every refusal of the API.
 */

const N = 50;
const UPSTREAM_ADMIN = 'upstream-admin-1';
const SIG = 'application/vnd.dev.cosign.artifact.sig.v1+json';

describe('replication policies', () => {
  let server: TestServer;
  let upstream: TestServer;
  let distribution: DistributionServer;
  let local: OciClient;
  let remote: OciClient;
  let dist: OciClient;
  const images: Image[] = [];

  const call = async (method: string, path: string, body?: unknown, authorization = adminAuth()) => {
    const res = await api(server, method, path, authorization, body);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const finished = async (id: number, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await call('GET', `/replication/executions/${id}`);
      assert.equal(res.status, 200);
      if (!['pending', 'running'].includes(res.body.status)) return res.body;
      if (Date.now() > deadline) assert.fail(`execution ${id} still ${res.body.status}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const run = async (name: string, timeoutMs?: number) => {
    const res = await call('POST', `/replication/policies/${name}/run`);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.status, 'pending');
    return finished(res.body.id, timeoutMs);
  };

  before(async () => {
    distribution = await startDistribution({ user: { username: 'dist', password: 'dist-pass-1' } });
    upstream = await startTestServer({ auth: { mode: 'token', admin: { password: UPSTREAM_ADMIN } } });
    server = await startTestServer({
      auth: { mode: 'basic', admin: { password: ADMIN_PASSWORD } },
      replication: { interval: '100ms', chunksize: 1024 * 1024, backoff: '20ms', attempts: 3, taskattempts: 2 },
    });
    await addUser(server, 'ursula', 'ursula-pass-1');
    local = new OciClient({ baseUrl: server.url, credentials: { username: 'admin', password: ADMIN_PASSWORD }, retry: FAST_RETRY });
    remote = new OciClient({ baseUrl: upstream.url, credentials: { username: 'admin', password: UPSTREAM_ADMIN }, retry: FAST_RETRY });
    dist = new OciClient({ baseUrl: distribution.url, credentials: distribution.credentials, retry: FAST_RETRY });
    for (let i = 0; i < N; i++) {
      const image = makeImage({ layers: 2, layerSize: 20_000 + i });
      images.push(image);
      await pushImage(local, `prod/team/app${i % 4}`, `v${i}`, image);
    }
    await pushReferrer(local, 'prod/team/app0', images[0]!.manifest, SIG);
    await pushImage(local, 'prod/team/app0', 'dev-1', makeImage({ layers: 1 }));
    for (const [name, url, username, credential, kind] of [
      ['dr', upstream.url, 'admin', UPSTREAM_ADMIN, 'berth'],
      ['dist', distribution.url, 'dist', 'dist-pass-1', 'distribution'],
    ]) {
      const res = await call('POST', '/registries', { name, url, username, credential, kind });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
  });
  after(async () => {
    await Promise.all([server?.destroy(), upstream?.destroy(), distribution?.stop()]);
  });

  it('push policy: N images to a second Berth (token auth), byte-identical, namespace rewritten, signatures along', async () => {
    const created = await call('POST', '/replication/policies', {
      name: 'dr-copy',
      direction: 'push',
      registry: 'dr',
      repositories: ['prod/**'],
      tags: ['v*'],
      destNamespace: 'dr',
      flatten: 1,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.trigger, 'manual');
    const execution = await run('dr-copy', 240_000);
    assert.equal(execution.status, 'succeeded', JSON.stringify(execution));
    assert.equal(execution.copied, N);
    assert.equal(execution.failed, 0);
    assert.ok(execution.bytes > N * 40_000, `bytes ${execution.bytes}`);
    const tasks = await call('GET', `/replication/executions/${execution.id}/tasks`);
    assert.equal(tasks.body.length, N, 'dev-1 is filtered out by the tag glob');
    for (const task of tasks.body) {
      assert.equal(task.status, 'copied');
      assert.match(task.destRepository, /^dr\/team\/app\d$/);
      assert.ok(task.bytes > 0 && task.durationMs >= 0 && task.digest);
    }
    const creds = { username: 'admin', password: UPSTREAM_ADMIN };
    for (const i of [0, 7, N - 1]) {
      const raw = await skopeoRaw(upstream.url, `dr/team/app${i % 4}:v${i}`, creds);
      assert.equal(raw, images[i]!.manifest.data.toString());
    }
    const refs = await remote.referrers('dr/team/app0', images[0]!.manifest.digest);
    assert.equal(refs.manifests.length, 1, 'the signature came along');
    assert.equal(await remote.headManifest('dr/team/app0', 'dev-1'), null);
  });

  it('a re-run moves 0 blob bytes: every artifact skipped', async () => {
    const execution = await run('dr-copy');
    assert.equal(execution.status, 'succeeded');
    assert.equal(execution.skipped, N);
    assert.equal(execution.copied, 0);
    assert.equal(execution.bytes, 0);
  });

  it('override off: a destination tag pointing elsewhere fails with the reason, the rest succeeds (partial)', async () => {
    await pushImage(remote, 'dr/team/app1', 'v1', makeImage({ layers: 1 }));
    const execution = await run('dr-copy');
    assert.equal(execution.status, 'partial');
    assert.equal(execution.failed, 1);
    const failed = await call('GET', `/replication/executions/${execution.id}/tasks?status=failed`);
    assert.equal(failed.body.length, 1);
    assert.equal(failed.body[0].reference, 'v1');
    assert.match(failed.body[0].reason, /override is off/);
    assert.equal((await call('PUT', '/replication/policies/dr-copy', { override: true })).status, 200);
    const forced = await run('dr-copy');
    assert.equal(forced.status, 'succeeded');
    assert.equal(forced.copied, 1);
    assert.equal((await remote.headManifest('dr/team/app1', 'v1'))?.digest, images[1]!.manifest.digest);
  });

  it('pull policy from Distribution (htpasswd) into this Berth', async () => {
    const pulled: Image[] = [];
    for (let i = 0; i < 3; i++) {
      const image = makeImage({ layers: 2, layerSize: 10_000 + i });
      pulled.push(image);
      await pushImage(dist, 'lib/tool', `1.${i}`, image);
    }
    const created = await call('POST', '/replication/policies', {
      name: 'from-dist',
      direction: 'pull',
      registry: 'dist',
      repositories: ['lib/tool'],
      destNamespace: 'mirror',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const execution = await run('from-dist');
    assert.equal(execution.status, 'succeeded', JSON.stringify((await call('GET', `/replication/executions/${execution.id}/tasks`)).body));
    assert.equal(execution.copied, 3);
    for (const [i, image] of pulled.entries()) {
      assert.equal(
        await skopeoRaw(server.url, `mirror/lib/tool:1.${i}`, { username: 'admin', password: ADMIN_PASSWORD }),
        image.manifest.data.toString(),
      );
    }
    assert.equal((await run('from-dist')).bytes, 0);
  });

  it('pull policy from a docker-hub endpoint: a single-segment name is library/<name> upstream, and keeps its own name here', async () => {
    const image = makeImage({ layers: 1, layerSize: 12_345 });
    await pushImage(dist, 'library/busybox', '1.36', image);
    const endpoint = await call('POST', '/registries', {
      name: 'hub',
      url: distribution.url,
      username: 'dist',
      credential: 'dist-pass-1',
      kind: 'docker-hub',
    });
    assert.equal(endpoint.status, 201, JSON.stringify(endpoint.body));
    const created = await call('POST', '/replication/policies', {
      name: 'from-hub',
      direction: 'pull',
      registry: 'hub',
      repositories: ['busybox'],
      destNamespace: 'hub',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const execution = await run('from-hub');
    assert.equal(execution.status, 'succeeded', JSON.stringify((await call('GET', `/replication/executions/${execution.id}/tasks`)).body));
    assert.equal(execution.copied, 1);
    assert.equal(
      await skopeoRaw(server.url, 'hub/busybox:1.36', { username: 'admin', password: ADMIN_PASSWORD }),
      image.manifest.data.toString(),
    );
  });

  it('deletion propagation removes destination tags gone at the source', async () => {
    await call('PUT', '/replication/policies/from-dist', { deletion: true });
    const digest = (await dist.headManifest('lib/tool', '1.2'))!.digest;
    await dist.deleteManifest('lib/tool', digest);
    const execution = await run('from-dist');
    assert.equal(execution.deleted, 1, JSON.stringify(execution));
    assert.equal(await local.headManifest('mirror/lib/tool', '1.2'), null);
    assert.ok(await local.headManifest('mirror/lib/tool', '1.1'));
  });

  it('filters: only signed artifacts, and by artifact type, with the reason on each skipped task', async () => {
    assert.equal(
      (
        await call('POST', '/replication/policies', {
          name: 'signed',
          direction: 'push',
          registry: 'dr',
          repositories: ['prod/team/app0'],
          tags: ['v0', 'v4'],
          onlySigned: true,
          destNamespace: 'signed',
          flatten: -1,
        })
      ).status,
      201,
    );
    const execution = await run('signed');
    assert.equal(execution.status, 'succeeded');
    const tasks = (await call('GET', `/replication/executions/${execution.id}/tasks`)).body as {
      reference: string;
      status: string;
      reason: string | null;
    }[];
    const byTag = Object.fromEntries(tasks.map((t) => [t.reference, t]));
    assert.equal(byTag.v0?.status, 'copied', 'v0 carries a cosign signature referrer');
    assert.equal(byTag.v4?.status, 'skipped');
    assert.match(byTag.v4?.reason ?? '', /not signed/);
    assert.ok(await remote.headManifest('signed/app0', 'v0'));
    assert.equal(await remote.headManifest('signed/app0', 'v4'), null);
    assert.equal(
      (await call('PUT', '/replication/policies/signed', { onlySigned: false, artifactTypes: ['application/vnd.example.other'] })).status,
      200,
    );
    const typed = await run('signed');
    const typedTasks = (await call('GET', `/replication/executions/${typed.id}/tasks`)).body as { status: string; reason: string }[];
    assert.ok(
      typedTasks.every(
        (t) => t.status === 'skipped' && /artifact type application\/vnd.oci.image.config.v1\+json is not one of/.test(t.reason),
      ),
      JSON.stringify(typedTasks),
    );
    assert.equal((await call('DELETE', '/replication/policies/signed')).status, 204);
  });

  it('a source repository that cannot be listed is a failed task with the reason', async () => {
    assert.equal(
      (await call('POST', '/replication/policies', { name: 'missing', direction: 'pull', registry: 'dist', repositories: ['lib/missing'] }))
        .status,
      201,
    );
    const execution = await run('missing');
    assert.equal(execution.status, 'failed');
    const tasks = await call('GET', `/replication/executions/${execution.id}/tasks`);
    assert.equal(tasks.body.length, 1);
    assert.match(tasks.body[0].reason, /listing tags: .*404/);
    assert.equal((await call('DELETE', '/replication/policies/missing')).status, 204);
  });

  it('event trigger: a push queues an execution for that repository and tag', async () => {
    const created = await call('POST', '/replication/policies', {
      name: 'on-push',
      direction: 'push',
      registry: 'dr',
      repositories: ['hot/**'],
      trigger: 'event',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const image = makeImage({ layers: 1 });
    await pushImage(local, 'hot/app', 'live', image);
    const deadline = Date.now() + 30_000;
    let list;
    do {
      await new Promise((r) => setTimeout(r, 100));
      list = await call('GET', '/replication/executions?policy=on-push');
    } while (list.body.length === 0 && Date.now() < deadline);
    assert.equal(list.body[0].trigger, 'event');
    const execution = await finished(list.body[0].id);
    assert.equal(execution.status, 'succeeded');
    assert.equal((await remote.headManifest('hot/app', 'live'))?.digest, image.manifest.digest);
  });

  it('cron trigger: the leased job queues and runs an execution when the expression comes due', async () => {
    // Croner takes a seconds field: every second here, so the test does not wait for a minute boundary.
    const created = await call('POST', '/replication/policies', {
      name: 'nightly',
      direction: 'push',
      registry: 'dr',
      repositories: ['prod/team/app0'],
      tags: ['v0'],
      destNamespace: 'dr',
      flatten: 1,
      trigger: 'cron',
      cron: '* * * * * *',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const deadline = Date.now() + 30_000;
    let list;
    do {
      await new Promise((r) => setTimeout(r, 200));
      list = await call('GET', '/replication/executions?policy=nightly');
    } while (list.body.length === 0 && Date.now() < deadline);
    assert.equal(list.body[0]?.trigger, 'cron');
    const execution = await finished(list.body[list.body.length - 1].id);
    assert.equal(execution.status, 'succeeded');
    const tasks = (await call('GET', `/replication/executions/${execution.id}/tasks`)).body;
    assert.deepEqual(
      tasks.map((t: { reference: string; status: string; bytes: number }) => [t.reference, t.status, t.bytes]),
      [['v0', 'skipped', 0]],
      JSON.stringify({ execution, tasks }),
    );
    assert.equal((await call('PUT', '/replication/policies/nightly', { enabled: false })).status, 200);
    // Disabled: no new cron run is queued; the ones queued already run to their end.
    for (const e of (await call('GET', '/replication/executions?policy=nightly')).body) await finished(e.id);
    const count = (await call('GET', '/replication/executions?policy=nightly')).body.length;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await call('GET', '/replication/executions?policy=nightly')).body.length, count, 'a disabled cron policy is not queued');
    assert.equal((await call('DELETE', '/replication/policies/nightly')).status, 204);
  });

  it('the job records its runs; metrics count executions', async () => {
    const jobs = await call('GET', '/jobs');
    assert.equal(jobs.status, 200);
    assert.ok(JSON.stringify(jobs.body).includes('replication'));
    const metrics = await (await fetch(`${server.url}/metrics`, { headers: { authorization: adminAuth() } })).text();
    assert.match(metrics, /berth_replication_executions_total\{direction="push",status="succeeded"\} [1-9]/);
    assert.match(metrics, /berth_replication_executions_total\{direction="push",status="partial"\} 1/);
    assert.match(metrics, /berth_replication_artifacts_total\{direction="pull",status="deleted"\} 1/);
    assert.match(metrics, /berth_replication_bytes_total\{direction="push"\} [1-9]/);
    // One replication.finished event per execution, in the outbox (webhooks, audit sinks read it there).
    const executions = await call('GET', '/replication/executions?limit=1000');
    const ended = executions.body.filter((e: { status: string }) => !['pending', 'running'].includes(e.status)).length;
    const deadline = Date.now() + 10_000;
    let finishedEvents: { policy: string; status: string; bytes: number }[] = [];
    while (Date.now() < deadline) {
      const stored = await server.stores.outbox.read(0, 100_000);
      finishedEvents = stored.map((e) => e.event).filter((e) => e.type === 'replication.finished') as unknown as typeof finishedEvents;
      if (finishedEvents.length >= ended) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(finishedEvents.length, ended);
    assert.ok(finishedEvents.some((e) => e.policy === 'dr-copy' && e.status === 'succeeded' && e.bytes > 0));
  });

  it('refuses what it must, with the right status (real HTTP)', async () => {
    const user = basic('ursula', 'ursula-pass-1');
    assert.equal((await call('GET', '/replication/policies', undefined, '')).status, 401);
    for (const [method, path] of [
      ['GET', '/replication/policies'],
      ['POST', '/replication/policies'],
      ['GET', '/replication/policies/dr-copy'],
      ['PUT', '/replication/policies/dr-copy'],
      ['DELETE', '/replication/policies/dr-copy'],
      ['POST', '/replication/policies/dr-copy/run'],
      ['GET', '/replication/executions'],
      ['GET', '/replication/executions/1'],
      ['GET', '/replication/executions/1/tasks'],
    ] as const) {
      assert.equal(
        (await call(method, path, method === 'POST' || method === 'PUT' ? {} : undefined, user)).status,
        403,
        `${method} ${path} as a non-admin`,
      );
    }
    assert.equal((await call('GET', '/replication/policies/nope')).status, 404);
    assert.equal((await call('POST', '/replication/policies/nope/run')).status, 404);
    assert.equal((await call('PUT', '/replication/policies/nope', { enabled: false })).status, 404);
    assert.equal((await call('DELETE', '/replication/policies/nope')).status, 404);
    assert.equal((await call('GET', '/replication/executions/999999')).status, 404);
    assert.equal((await call('GET', '/replication/executions/abc')).status, 400);
    assert.equal((await call('GET', '/replication/executions/1/tasks?status=bogus')).status, 400);
    assert.equal((await call('POST', '/replication/policies', { name: 'dr-copy', direction: 'push', registry: 'dr' })).status, 409);
    assert.equal((await call('POST', '/replication/policies', { name: 'x', direction: 'push', registry: 'no-such-endpoint' })).status, 400);
    assert.equal((await call('POST', '/replication/policies', { name: 'x', direction: 'sideways', registry: 'dr' })).status, 400);
    assert.equal(
      (await call('POST', '/replication/policies', { name: 'x', direction: 'push', registry: 'dr', trigger: 'cron', cron: 'not a cron' }))
        .status,
      400,
    );
    assert.equal(
      (await call('POST', '/replication/policies', { name: 'x', direction: 'pull', registry: 'dr', trigger: 'event' })).status,
      400,
    );
    assert.equal(
      (await call('POST', '/replication/policies', { name: 'x', direction: 'push', registry: 'dr', unknownField: 1 })).status,
      400,
    );
    assert.equal((await call('DELETE', '/registries/dr')).status, 409, 'an endpoint in use by a policy is not deleted');
    const removed = await call('DELETE', '/replication/policies/on-push');
    assert.equal(removed.status, 204);
  });
});
