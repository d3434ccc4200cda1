import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OciClient, RegistryClientError } from '../../src/client/index.js';
import { ADMIN_PASSWORD, adminAuth, api } from '../auth/support.js';
import { ClientSandbox, registryHost, requireTools } from '../helpers/clients.js';
import { startDistribution, type DistributionServer } from '../helpers/distribution.js';
import { OCI_INDEX, OCI_MANIFEST, jsonBlob, makeBlob, makeImage, sha256 } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { CountingProxy } from './upstream-proxy.js';
import { FAST, pushImage, pushTwoPlatformIndex, readAll } from './support.js';

/**
 * Pull-through cache projects against a real upstream (CNCF Distribution, docker-registry) behind
 * a counting proxy: skopeo pulls byte-identical content through the cache; later pulls are
 * local; 20 concurrent pulls of an uncached image make one upstream fetch per blob; an upstream
 * that is down, hung or rate-limiting still lets cached content be pulled, and a never-cached
 * tag answers an error naming the upstream; multi-arch works on the first pull; pushes are refused.
 */
describe('pull-through cache projects', () => {
  let upstream: DistributionServer;
  let proxy: CountingProxy;
  let server: TestServer;
  let pusher: OciClient;
  let berth: OciClient;
  let sandbox: ClientSandbox;
  const image = makeImage({ layers: 2, layerSize: 300_000 });

  before(async () => {
    requireTools(['skopeo']);
    upstream = await startDistribution();
    proxy = await CountingProxy.start(upstream.url);
    server = await startTestServer({ auth: { mode: 'basic', admin: { password: ADMIN_PASSWORD } }, proxy: { upstreamtimeout: '1500ms' } });
    pusher = new OciClient({ baseUrl: upstream.url, retry: FAST });
    berth = new OciClient({ baseUrl: server.url, credentials: { username: 'admin', password: ADMIN_PASSWORD }, retry: FAST });
    sandbox = ClientSandbox.create();
    await pushImage(pusher, 'lib/app', 'v1', image);
    const add = await api(server, 'POST', '/registries', adminAuth(), { name: 'up', url: proxy.url, kind: 'distribution' });
    assert.equal(add.status, 201, await add.text());
    const bind = await api(server, 'PUT', '/projects/hub/proxy-cache', adminAuth(), {
      endpoint: 'up',
      namespace: null,
      tagTtlSeconds: 3600,
    });
    assert.equal(bind.status, 200, await bind.text());
  });
  after(async () => {
    sandbox?.destroy();
    await Promise.all([server?.destroy(), proxy?.stop(), upstream?.stop()]);
  });

  it('skopeo pulls through the cache byte-identical; a second pull never reaches the upstream', async () => {
    const out = sandbox.path('first');
    await sandbox.skopeo([
      'copy',
      '--src-tls-verify=false',
      '--src-creds',
      `admin:${ADMIN_PASSWORD}`,
      `docker://${registryHost(server.url)}/hub/lib/app:v1`,
      `dir:${out}`,
    ]);
    for (const blob of [image.config, ...image.layers]) {
      assert.ok(readFileSync(path.join(out, blob.digest.slice('sha256:'.length))).equals(blob.data), `${blob.digest} is byte-identical`);
    }
    assert.ok(readFileSync(path.join(out, 'manifest.json')).equals(image.manifest.data), 'the manifest is byte-identical');
    for (const blob of image.layers) assert.equal(proxy.count('GET', blob.digest), 1, 'one upstream GET per layer');
    proxy.reset();
    const again = sandbox.path('second');
    await sandbox.skopeo([
      'copy',
      '--src-tls-verify=false',
      '--src-creds',
      `admin:${ADMIN_PASSWORD}`,
      `docker://${registryHost(server.url)}/hub/lib/app:v1`,
      `dir:${again}`,
    ]);
    for (const blob of image.layers) assert.ok(readFileSync(path.join(again, blob.digest.slice(7))).equals(blob.data));
    assert.deepEqual(proxy.requests, [], 'within the tag TTL and with blobs cached, nothing goes upstream');
  });

  it('20 concurrent pulls of an uncached image make one upstream fetch per blob', async () => {
    const big = makeImage({ layers: 3, layerSize: 4 * 1024 * 1024 });
    await pushImage(pusher, 'lib/big', 'v1', big);
    proxy.reset();
    const pull = async () => {
      const manifest = await berth.getManifest('hub/lib/big', 'v1');
      assert.equal(manifest?.digest, big.manifest.digest);
      for (const blob of [big.config, ...big.layers]) {
        const bytes = await readAll(berth.getBlob('hub/lib/big', blob.digest));
        assert.equal(sha256(bytes), blob.digest);
      }
    };
    await Promise.all(Array.from({ length: 20 }, pull));
    for (const blob of [big.config, ...big.layers])
      assert.equal(proxy.count('GET', `/blobs/${blob.digest}`), 1, `one upstream GET of ${blob.digest}: ${proxy.requests.join('\n')}`);
    assert.equal(proxy.count('GET', '/manifests/v1'), 1, 'one upstream GET of the manifest');
  });

  it('a client that disconnects mid-blob does not corrupt the stored copy', async () => {
    const layer = makeBlob(12 * 1024 * 1024);
    const config = jsonBlob({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size }],
      }),
    );
    await pusher.pushBlob('lib/cut', layer.data);
    await pusher.pushBlob('lib/cut', config.data);
    await pusher.putManifest('lib/cut', 'v1', manifest, OCI_MANIFEST);
    proxy.reset();
    const controller = new AbortController();
    const res = await fetch(`${server.url}/v2/hub/lib/cut/blobs/${layer.digest}`, {
      headers: { authorization: adminAuth() },
      signal: controller.signal,
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    // The fill finishes without the client; the next pull is served locally and is whole.
    let bytes: Buffer | null = null;
    for (let i = 0; i < 50 && bytes === null; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (await server.stores.metadata.repositories.linkedBlob('hub/lib/cut', layer.digest))
        bytes = await readAll(berth.getBlob('hub/lib/cut', layer.digest));
    }
    assert.ok(bytes, 'the blob was stored although the client left');
    assert.equal(sha256(bytes), layer.digest);
    assert.equal(proxy.count('GET', `/blobs/${layer.digest}`), 1);
  });

  it('a corrupted byte from the upstream (20 MiB layer) cuts the client short and stores nothing', async () => {
    const layer = makeBlob(20 * 1024 * 1024);
    await pusher.pushBlob('lib/bad', layer.data);
    proxy.reset();
    proxy.mode = 'corrupt';
    let received = 0;
    try {
      const res = await fetch(`${server.url}/v2/hub/lib/bad/blobs/${layer.digest}`, { headers: { authorization: adminAuth() } });
      assert.equal(res.status, 200);
      await assert.rejects(
        (async () => {
          for await (const chunk of res.body!) received += chunk.length;
        })(),
        'the response is cut, not completed',
      );
    } finally {
      proxy.mode = 'pass';
    }
    assert.ok(received < layer.size, `the client got ${received} of ${layer.size} bytes`);
    assert.equal(proxy.count('GET', `/blobs/${layer.digest}`), 1);
    assert.equal(await server.stores.metadata.repositories.linkedBlob('hub/lib/bad', layer.digest), null, 'nothing linked');
    assert.equal(await server.stores.blobs.stat(layer.digest), null, 'nothing stored');
    // The upstream sends the right bytes again: the next pull downloads and stores them.
    const bytes = await readAll(berth.getBlob('hub/lib/bad', layer.digest));
    assert.equal(sha256(bytes), layer.digest);
    assert.equal(proxy.count('GET', `/blobs/${layer.digest}`), 2);
  });

  it('multi-arch: an index, then a child manifest and its blobs, on the first pull', async () => {
    const { arm } = await pushTwoPlatformIndex(pusher, 'lib/multi', 'latest');
    const got = await berth.getManifest('hub/lib/multi', 'latest');
    assert.equal(got?.mediaType, OCI_INDEX);
    const child = await berth.getManifest('hub/lib/multi', arm.manifest.digest);
    assert.ok(child?.bytes.equals(arm.manifest.data));
    assert.ok((await readAll(berth.getBlob('hub/lib/multi', arm.layers[0]!.digest))).equals(arm.layers[0]!.data));
  });

  it('pushes and deletes to a cache project are refused with 403 DENIED naming its proxy mode', async () => {
    const blob = makeBlob(100);
    await assert.rejects(berth.pushBlob('hub/lib/app', blob.data), (err: RegistryClientError) => {
      assert.equal(err.status, 403);
      assert.equal(err.code, 'DENIED');
      assert.match(err.message, /project hub is a pull-through cache \(proxy mode\)/);
      return true;
    });
    const put = await fetch(`${server.url}/v2/hub/lib/app/manifests/v2`, {
      method: 'PUT',
      headers: { authorization: adminAuth(), 'content-type': OCI_MANIFEST },
      body: new Uint8Array(image.manifest.data),
    });
    assert.equal(put.status, 403);
    const del = await fetch(`${server.url}/v2/hub/lib/app/manifests/v1`, { method: 'DELETE', headers: { authorization: adminAuth() } });
    assert.equal(del.status, 403);
    assert.match(((await del.json()) as { errors: { message: string }[] }).errors[0]!.message, /pull-through cache \(proxy mode\)/);
    const delBlob = await fetch(`${server.url}/v2/hub/lib/app/blobs/${image.layers[0]!.digest}`, {
      method: 'DELETE',
      headers: { authorization: adminAuth() },
    });
    assert.equal(delBlob.status, 403);
  });

  it('upstream down, hung or rate-limiting: cached content is served, a never-cached tag names the upstream problem', async () => {
    // Make the tag due for revalidation so the cache must ask the (failing) upstream.
    const bind = await api(server, 'PUT', '/projects/hub/proxy-cache', adminAuth(), { endpoint: 'up', tagTtlSeconds: 0 });
    assert.equal(bind.status, 200);
    for (const mode of ['down', 'ratelimit', 'hang'] as const) {
      proxy.mode = mode;
      const manifest = await berth.getManifest('hub/lib/app', 'v1');
      assert.equal(manifest?.digest, image.manifest.digest, `${mode}: the cached tag is served`);
      assert.ok(
        (await readAll(berth.getBlob('hub/lib/app', image.layers[0]!.digest))).equals(image.layers[0]!.data),
        `${mode}: cached blobs are served`,
      );
      const res = await fetch(`${server.url}/v2/hub/lib/never/manifests/v1`, { headers: { authorization: adminAuth() } });
      const body = (await res.json()) as { errors: { code: string; message: string }[] };
      const expected = { down: 502, ratelimit: 503, hang: 504 }[mode];
      assert.equal(res.status, expected, `${mode}: ${JSON.stringify(body)}`);
      assert.match(body.errors[0]!.message, /upstream up \(http:\/\/127\.0\.0\.1:\d+\)/, 'the error names the upstream');
      if (mode === 'ratelimit') assert.match(body.errors[0]!.message, /429/);
      if (mode === 'hang') assert.match(body.errors[0]!.message, /did not answer within 1500 ms/);
    }
    proxy.mode = 'pass';
  });

  it('upstream stopped: cached pulls still work with skopeo; the metrics count hits, misses, bytes and errors', async () => {
    // The docker-registry process itself is stopped (the proxy in front of it then fails every request).
    await upstream.stop();
    const never = await fetch(`${server.url}/v2/hub/lib/gone/manifests/v1`, { headers: { authorization: adminAuth() } });
    assert.equal(never.status, 502, 'a never-cached tag with the upstream stopped');
    const out = sandbox.path('offline');
    await sandbox.skopeo([
      'copy',
      '--src-tls-verify=false',
      '--src-creds',
      `admin:${ADMIN_PASSWORD}`,
      `docker://${registryHost(server.url)}/hub/lib/app:v1`,
      `dir:${out}`,
    ]);
    for (const blob of image.layers) assert.ok(readFileSync(path.join(out, blob.digest.slice(7))).equals(blob.data));
    const metrics = await (await fetch(server.metricsUrl!, { headers: { authorization: adminAuth() } })).text();
    for (const series of [
      'berth_proxy_cache_hits_total{kind="manifest"}',
      'berth_proxy_cache_misses_total{kind="blob"}',
      'berth_proxy_cache_upstream_bytes_total',
      'berth_proxy_cache_upstream_errors_total{reason="timeout"}',
      'berth_proxy_cache_coalesced_total{kind="blob"}',
    ]) {
      assert.match(metrics, new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} [1-9]`, 'm'), series);
    }
  });
});
