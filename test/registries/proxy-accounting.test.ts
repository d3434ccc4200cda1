import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { OciClient, RegistryClientError } from '../../src/client/index.js';
import { fsckStores } from '../../src/cli/fsck.js';
import { corruptionCount } from '../../src/fsck/types.js';
import { QuotaService } from '../../src/quotas/service.js';
import type { RetentionRun } from '../../src/retention/ports.js';
import { ADMIN_PASSWORD, addProject, adminAuth, api } from '../auth/support.js';
import { bytesStored, runGc } from '../gc/support.js';
import { startDistribution, type DistributionServer } from '../helpers/distribution.js';
import { OCI_INDEX, OCI_MANIFEST, makeImage, sha256, type Image } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { runRetention } from '../policies/retention-support.js';
import { eventually, getQuota, setQuota } from '../policies/quota-support.js';
import { CountingProxy } from './upstream-proxy.js';
import { FAST, pushImage, pushTwoPlatformIndex, readAll } from './support.js';

const PULL_FLUSH_MS = 100;
const DAY_MS = 86_400_000;

/** Every byte an image adds to a project's usage: manifest, config and layers. */
function sizeOf(image: Image): number {
  return [image.manifest, image.config, ...image.layers].reduce((sum, b) => sum + b.size, 0);
}

/**
 * Cached content is core content (issue 15): what a cache project fetched from a real upstream
 * (CNCF Distribution) is listed by tags/list and the catalog, counts against the project's quota
 * (a fill into a full quota is refused like a push), and is removed by the default retention
 * (proxy.ttl: not pulled within it) and then by GC, after which a pull fetches it again.
 */
describe('pull-through cache content in core: listings, quota, default retention, GC', () => {
  let upstream: DistributionServer;
  let proxy: CountingProxy;
  let server: TestServer;
  let pusher: OciClient;
  let berth: OciClient;

  /**
   * Pulls an image through the cache the way a client does (manifest by tag, then every blob),
   * then waits until its blobs are linked: a client has the last bytes a moment before the fill
   * has stored them.
   */
  async function pull(repo: string, tag: string, image: Image): Promise<void> {
    const manifest = await berth.getManifest(repo, tag);
    assert.equal(manifest?.digest, image.manifest.digest);
    for (const blob of [image.config, ...image.layers]) assert.equal(sha256(await readAll(berth.getBlob(repo, blob.digest))), blob.digest);
    for (const blob of [image.config, ...image.layers]) {
      await eventually(() => server.stores.metadata.repositories.linkedBlob(repo, blob.digest), `${blob.digest} linked into ${repo}`);
    }
  }

  before(async () => {
    upstream = await startDistribution();
    proxy = await CountingProxy.start(upstream.url);
    server = await startTestServer({
      auth: { mode: 'basic', admin: { password: ADMIN_PASSWORD } },
      // proxy.ttl 2d: a cache project bound without a policy keeps what was pulled within 2 days.
      proxy: { upstreamtimeout: '5s', ttl: '48h' },
      gc: { enabled: false, graceperiod: 0 },
      events: { pullflushinterval: `${PULL_FLUSH_MS}ms` },
      tags: { history: { protectgc: false } },
    });
    pusher = new OciClient({ baseUrl: upstream.url, retry: FAST });
    berth = new OciClient({ baseUrl: server.url, credentials: { username: 'admin', password: ADMIN_PASSWORD }, retry: FAST });
    const add = await api(server, 'POST', '/registries', adminAuth(), { name: 'up', url: proxy.url, kind: 'distribution' });
    assert.equal(add.status, 201, await add.text());
    for (const project of ['hub', 'capped']) {
      await addProject(server, project);
      const bind = await api(server, 'PUT', `/projects/${project}/proxy-cache`, adminAuth(), { endpoint: 'up', tagTtlSeconds: 3600 });
      assert.equal(bind.status, 200, await bind.text());
    }
  });
  after(async () => {
    await Promise.all([server?.destroy(), proxy?.stop(), upstream?.stop()]);
  });

  it('binding gives the project the default retention policy from proxy.ttl (pulled within 2 days, daily)', async () => {
    const res = await api(server, 'GET', '/projects/hub/retention', adminAuth());
    assert.equal(res.status, 200);
    const policy = (await res.json()) as { rules: { template: string; days: number }[]; schedule: string };
    assert.deepEqual(
      policy.rules.map((r) => [r.template, r.days]),
      [['nDaysSinceLastPull', 2]],
    );
    assert.equal(policy.schedule, '0 0 * * *');
    // A policy the admin set is kept when the binding changes.
    const custom = await api(server, 'PUT', '/projects/capped/retention', adminAuth(), {
      rules: [{ template: 'latestPulledN', count: 5 }],
      schedule: null,
    });
    assert.equal(custom.status, 200, await custom.text());
    const rebind = await api(server, 'PUT', '/projects/capped/proxy-cache', adminAuth(), { endpoint: 'up', tagTtlSeconds: 3600 });
    assert.equal(rebind.status, 200);
    const kept = (await (await api(server, 'GET', '/projects/capped/retention', adminAuth())).json()) as { rules: { template: string }[] };
    assert.deepEqual(
      kept.rules.map((r) => r.template),
      ['latestPulledN'],
    );
  });

  it('tags/list and the catalog list the cached repositories and tags; usage grows by the cached bytes', async () => {
    const v1 = makeImage({ layers: 2, layerSize: 50_000 });
    const v2 = makeImage({ layers: 1, layerSize: 70_000 });
    const other = makeImage({ layers: 1, layerSize: 30_000 });
    await pushImage(pusher, 'lib/app', 'v1', v1);
    await pushImage(pusher, 'lib/app', 'v2', v2);
    await pushImage(pusher, 'lib/other', 'x', other);
    assert.equal((await getQuota(server, 'hub')).used, 0);
    await pull('hub/lib/app', 'v1', v1);
    assert.equal((await getQuota(server, 'hub')).used, sizeOf(v1), 'usage = the cached manifest, config and layers');
    await pull('hub/lib/app', 'v2', v2);
    await pull('hub/lib/other', 'x', other);
    assert.equal((await getQuota(server, 'hub')).used, sizeOf(v1) + sizeOf(v2) + sizeOf(other));

    const tags = await fetch(`${server.url}/v2/hub/lib/app/tags/list`, { headers: { authorization: adminAuth() } });
    assert.equal(tags.status, 200);
    assert.deepEqual(await tags.json(), { name: 'hub/lib/app', tags: ['v1', 'v2'] });
    const catalog = await fetch(`${server.url}/v2/_catalog`, { headers: { authorization: adminAuth() } });
    const repositories = ((await catalog.json()) as { repositories: string[] }).repositories;
    for (const repo of ['hub/lib/app', 'hub/lib/other']) assert.ok(repositories.includes(repo), `${repo} in ${repositories.join(', ')}`);
    // Users still cannot delete cached content.
    const del = await fetch(`${server.url}/v2/hub/lib/app/manifests/${v1.manifest.digest}`, {
      method: 'DELETE',
      headers: { authorization: adminAuth() },
    });
    assert.equal(del.status, 403);
  });

  it('a fill into a full quota is refused like a push (403 DENIED naming the quota); what is cached stays pullable', async () => {
    const cached = makeImage({ layers: 1, layerSize: 40_000 });
    const big = makeImage({ layers: 1, layerSize: 200_000 });
    const later = makeImage({ layers: 1, layerSize: 1_000 });
    await pushImage(pusher, 'lib/cached', 'v1', cached);
    await pushImage(pusher, 'lib/big', 'v1', big);
    await pushImage(pusher, 'lib/later', 'v1', later);
    await pull('capped/lib/cached', 'v1', cached);
    const used = (await getQuota(server, 'capped')).used;
    assert.equal(used, sizeOf(cached));
    // Room for big's manifest and config, not for its layer.
    await setQuota(server, 'capped', used + big.manifest.size + big.config.size + 1_000);
    const manifest = await berth.getManifest('capped/lib/big', 'v1');
    assert.equal(manifest?.digest, big.manifest.digest, 'the manifest fits');
    proxy.reset();
    await assert.rejects(readAll(berth.getBlob('capped/lib/big', big.layers[0]!.digest)), (err: RegistryClientError) => {
      assert.equal(err.status, 403);
      assert.equal(err.code, 'DENIED');
      assert.match(err.message, /storage quota of project capped exceeded: adding .* \(policy: quota\)/);
      return true;
    });
    assert.equal(
      await server.stores.metadata.repositories.linkedBlob('capped/lib/big', big.layers[0]!.digest),
      null,
      'the refused blob is not stored',
    );
    assert.equal(await bytesStored(server, big.layers[0]!.digest), false);
    assert.ok((await getQuota(server, 'capped')).used <= (await getQuota(server, 'capped')).limit!);

    // Full: a new manifest is refused too, before anything is stored.
    const full = (await getQuota(server, 'capped')).used;
    await setQuota(server, 'capped', full);
    const refused = await fetch(`${server.url}/v2/capped/lib/later/manifests/v1`, {
      headers: { authorization: adminAuth(), accept: OCI_MANIFEST },
    });
    assert.equal(refused.status, 403);
    assert.match(
      ((await refused.json()) as { errors: { message: string }[] }).errors[0]!.message,
      /storage quota of project capped exceeded/,
    );
    const listed = await fetch(`${server.url}/v2/capped/lib/later/tags/list`, { headers: { authorization: adminAuth() } });
    assert.equal(listed.status, 404, 'nothing of the refused fill was stored');
    await pull('capped/lib/cached', 'v1', cached);
    assert.equal((await getQuota(server, 'capped')).used, full, 'pulling cached content adds nothing');

    // Raised: the same pulls now fill.
    await setQuota(server, 'capped', null);
    await pull('capped/lib/big', 'v1', big);
    await pull('capped/lib/later', 'v1', later);
    assert.equal((await getQuota(server, 'capped')).used, sizeOf(cached) + sizeOf(big) + sizeOf(later));
  });

  it('the default retention removes what was not pulled within proxy.ttl, GC frees its blobs, a pull fetches it again', async () => {
    const keep = makeImage({ layers: 1, layerSize: 20_000 });
    const stale = makeImage({ layers: 2, layerSize: 60_000 });
    await pushImage(pusher, 'lib/keep', 'v1', keep);
    await pushImage(pusher, 'lib/stale', 'v1', stale);
    await pull('hub/lib/keep', 'v1', keep);
    await pull('hub/lib/stale', 'v1', stale);
    // The pulls reach pull_stats within one flush interval.
    const db = server.stores.metadata.db;
    const staleRepo = (await db.selectFrom('repositories').select('id').where('name', '=', 'hub/lib/stale').executeTakeFirstOrThrow()).id;
    await eventually(
      async () =>
        (await sql`select pulls from pull_stats where repository_id = ${staleRepo} and digest = ${stale.manifest.digest}`.execute(db)).rows
          .length > 0,
      'the pull in pull_stats',
    );
    // Last pulled three days ago, as far as the metadata knows: outside the 2-day window.
    await sql`update pull_stats set last_pulled_at = ${Date.now() - 3 * DAY_MS} where repository_id = ${staleRepo}`.execute(db);
    const usedBefore = (await getQuota(server, 'hub')).used;

    const run: RetentionRun = await runRetention(server, 'hub', false);
    const removed = run.report!.repositories.flatMap((r) => r.removed.map((x) => `${r.repository}:${x.tag}`));
    assert.deepEqual(removed, ['hub/lib/stale:v1'], 'only the artifact not pulled within 2 days');
    const tags = await fetch(`${server.url}/v2/hub/lib/stale/tags/list`, { headers: { authorization: adminAuth() } });
    assert.deepEqual(((await tags.json()) as { tags: string[] | null }).tags ?? [], []);

    const gc = await runGc(server);
    assert.ok(gc.counts.bytesFreed >= stale.layers[0]!.size + stale.layers[1]!.size, `GC freed ${gc.counts.bytesFreed} bytes`);
    for (const layer of stale.layers) assert.equal(await bytesStored(server, layer.digest), false, `${layer.digest} was freed`);
    assert.equal(await bytesStored(server, keep.layers[0]!.digest), true, 'what was pulled recently stays');
    assert.equal((await getQuota(server, 'hub')).used, usedBefore - sizeOf(stale), 'usage gives the removed bytes back');

    proxy.reset();
    await pull('hub/lib/stale', 'v1', stale);
    assert.equal(proxy.count('GET', '/manifests/v1'), 1, 'the manifest came from the upstream again');
    for (const layer of stale.layers) assert.equal(proxy.count('GET', `/blobs/${layer.digest}`), 1, 'and every layer');
    assert.equal((await getQuota(server, 'hub')).used, usedBefore);
    assert.deepEqual(await new QuotaService(server.stores.quotas).verify(), [], 'kept usage equals a recount of core content');
  });

  it('an index whose other children were never pulled is not corruption for berth fsck', async () => {
    const { amd } = await pushTwoPlatformIndex(pusher, 'lib/multi', 'latest');
    assert.equal((await berth.getManifest('hub/lib/multi', 'latest'))?.mediaType, OCI_INDEX);
    await pull('hub/lib/multi', amd.manifest.digest, amd);
    const report = await fsckStores(server.config, { repair: false, verifyContent: false, graceMs: 0 });
    assert.equal(corruptionCount(report), 0, JSON.stringify(report.problems));
    assert.ok(
      report.skipped.some((s) => /references of pull-through cache repositories not fetched/.test(s)),
      report.skipped.join('; '),
    );
  });
});
