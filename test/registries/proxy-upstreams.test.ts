import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OciClient, RegistryClientError } from '../../src/client/index.js';
import { ADMIN_PASSWORD, adminAuth, api } from '../auth/support.js';
import { startDistribution, type DistributionServer } from '../helpers/distribution.js';
import { makeBlob, makeImage, sha256 } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { FAST, pushImage, readAll } from './support.js';

/**
 * Cache projects with a second Berth as the upstream (token auth, Bearer flow): Docker-Hub-style
 * `library/` mapping and an explicit namespace; an endpoint in use cannot be deleted; and
 * `proxy.remoteurl` (Berth as a whole a Distribution-style mirror of docker-registry).
 */
describe('pull-through cache: a Berth upstream with token auth, Docker Hub names, and proxy.remoteurl', () => {
  let upstream: TestServer;
  let cache: TestServer;
  let dist: DistributionServer;
  let mirror: TestServer;
  let cacheClient: OciClient;
  const alpine = makeImage({ layers: 1, layerSize: 50_000 });
  const team = makeImage({ layers: 1, layerSize: 20_000 });
  const app = makeImage({ layers: 2, layerSize: 40_000 });

  before(async () => {
    upstream = await startTestServer({ auth: { mode: 'token', admin: { password: 'upstream-admin-1' } } });
    const upClient = new OciClient({
      baseUrl: upstream.url,
      credentials: { username: 'admin', password: 'upstream-admin-1' },
      retry: FAST,
    });
    await pushImage(upClient, 'library/alpine', '3', alpine);
    await pushImage(upClient, 'team/tool', 'v1', team);
    cache = await startTestServer({ auth: { mode: 'basic', admin: { password: ADMIN_PASSWORD } } });
    cacheClient = new OciClient({ baseUrl: cache.url, credentials: { username: 'admin', password: ADMIN_PASSWORD }, retry: FAST });
    dist = await startDistribution();
    await pushImage(new OciClient({ baseUrl: dist.url, retry: FAST }), 'lib/app', 'v1', app);
    mirror = await startTestServer({ proxy: { remoteurl: dist.url } });
  });
  after(async () => {
    await mirror?.destroy();
    await cache?.destroy();
    await upstream?.destroy();
    await dist?.stop();
  });

  it('docker-hub kind: hub/alpine pulls library/alpine from the upstream (token auth)', async () => {
    assert.equal(
      (
        await api(cache, 'POST', '/registries', adminAuth(), {
          name: 'hub',
          url: upstream.url,
          kind: 'docker-hub',
          username: 'admin',
          credential: 'upstream-admin-1',
        })
      ).status,
      201,
    );
    assert.equal((await api(cache, 'PUT', '/projects/hub/proxy-cache', adminAuth(), { endpoint: 'hub' })).status, 200);
    const manifest = await cacheClient.getManifest('hub/alpine', '3');
    assert.equal(manifest?.digest, alpine.manifest.digest);
    assert.ok((await readAll(cacheClient.getBlob('hub/alpine', alpine.layers[0]!.digest))).equals(alpine.layers[0]!.data));
    const view = (await (await api(cache, 'GET', '/projects/hub/proxy-cache', adminAuth())).json()) as {
      endpoint: string;
      tagTtlSeconds: number;
    };
    assert.equal(view.endpoint, 'hub');
    assert.equal(view.tagTtlSeconds, 300, 'proxy.tagttl is the default');
  });

  it('a namespace maps mirror/tool to team/tool upstream', async () => {
    assert.equal(
      (await api(cache, 'PUT', '/projects/mirror/proxy-cache', adminAuth(), { endpoint: 'hub', namespace: 'team' })).status,
      200,
    );
    const manifest = await cacheClient.getManifest('mirror/tool', 'v1');
    assert.equal(manifest?.digest, team.manifest.digest);
    assert.equal(sha256(await readAll(cacheClient.getBlob('mirror/tool', team.layers[0]!.digest))), team.layers[0]!.digest);
    const unknown = await fetch(`${cache.url}/v2/mirror/nothing/manifests/v1`, { headers: { authorization: adminAuth() } });
    assert.equal(unknown.status, 404, 'a manifest the upstream does not have is MANIFEST_UNKNOWN');
  });

  it('an endpoint in use cannot be deleted (409 naming the cache project); bindings refuse unknown endpoints', async () => {
    const res = await api(cache, 'DELETE', '/registries/hub', adminAuth());
    assert.equal(res.status, 409);
    assert.match(await res.text(), /in use by cache project hub/);
    assert.equal((await api(cache, 'PUT', '/projects/x/proxy-cache', adminAuth(), { endpoint: 'nope' })).status, 400);
    assert.equal((await api(cache, 'GET', '/projects/normal/proxy-cache', adminAuth())).status, 404);
    const listed = (await (await api(cache, 'GET', '/proxy-cache', adminAuth())).json()) as { project: string }[];
    assert.deepEqual(
      listed.map((p) => p.project),
      ['hub', 'mirror'],
    );
    assert.equal((await fetch(`${cache.url}/api/v1/proxy-cache`)).status, 401);
  });

  it('unbinding a project makes it a normal project again', async () => {
    assert.equal((await api(cache, 'DELETE', '/projects/mirror/proxy-cache', adminAuth())).status, 204);
    assert.equal((await api(cache, 'DELETE', '/projects/mirror/proxy-cache', adminAuth())).status, 404);
    const blob = makeBlob(64);
    const pushed = await cacheClient.pushBlob('mirror/own', blob.data);
    assert.equal(pushed.digest, blob.digest, 'pushes are accepted again');
  });

  it('proxy.remoteurl: every repository reads through docker-registry; pushes answer 405 UNSUPPORTED', async () => {
    const client = new OciClient({ baseUrl: mirror.url, retry: FAST });
    const manifest = await client.getManifest('lib/app', 'v1');
    assert.equal(manifest?.digest, app.manifest.digest);
    for (const layer of app.layers) assert.ok((await readAll(client.getBlob('lib/app', layer.digest))).equals(layer.data));
    const byDigest = await client.getManifest('lib/app', app.manifest.digest);
    assert.ok(byDigest?.bytes.equals(app.manifest.data));
    await assert.rejects(client.pushBlob('lib/app', makeBlob(10).data), (err: RegistryClientError) => {
      assert.equal(err.status, 405);
      assert.equal(err.code, 'UNSUPPORTED');
      assert.match(err.message, /pull-through mirror of http:\/\/127\.0\.0\.1:\d+ \(proxy\.remoteurl\)/);
      return true;
    });
  });
});
