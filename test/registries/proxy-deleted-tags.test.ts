import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OciClient } from '../../src/client/index.js';
import { ADMIN_PASSWORD, adminAuth, api } from '../auth/support.js';
import { startDistribution, type DistributionServer } from '../helpers/distribution.js';
import { OCI_MANIFEST, makeImage } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { CountingProxy } from './upstream-proxy.js';
import { pushImage } from './support.js';

interface Pulled {
  status: number;
  digest: string | null;
  errors: { code: string; message: string }[];
}

async function pull(server: TestServer, repository: string, reference: string): Promise<Pulled> {
  const res = await fetch(`${server.url}/v2/${repository}/manifests/${reference}`, {
    headers: { authorization: adminAuth(), accept: OCI_MANIFEST },
  });
  const body = res.status === 200 ? null : ((await res.json()) as { errors: { code: string; message: string }[] });
  if (res.status === 200) await res.arrayBuffer();
  return { status: res.status, digest: res.headers.get('docker-content-digest'), errors: body?.errors ?? [] };
}

async function tags(server: TestServer, repository: string): Promise<string[]> {
  const res = await fetch(`${server.url}/v2/${repository}/tags/list`, { headers: { authorization: adminAuth() } });
  assert.equal(res.status, 200);
  return ((await res.json()) as { tags: string[] | null }).tags ?? [];
}

/**
 * A tag deleted upstream (CNCF Distribution, deleted by digest) seen by a revalidation (tag TTL 0):
 * with `proxy.keepdeletedtags` (default true) or a binding's `keepDeletedTags: true` the cached
 * copy stays pullable; with false the tag is deleted from the cache (tags/list drops it), the pull
 * answers 404 MANIFEST_UNKNOWN naming the upstream, and the manifest stays pullable by digest.
 * An upstream that is down, rate-limiting or hung never deletes anything.
 */
describe('pull-through cache: tags deleted upstream', () => {
  let upstream: DistributionServer;
  let proxy: CountingProxy;
  /** Default configuration (keepdeletedtags: true): `keep` follows it, `drop` overrides it with false. */
  let byDefault: TestServer;
  /** `proxy.keepdeletedtags: false`: `drop` follows it, `keep` overrides it with true. */
  let dropping: TestServer;
  const v1 = makeImage({ layers: 1 });
  const v2 = makeImage({ layers: 1 });

  const bind = async (server: TestServer, project: string, keepDeletedTags: boolean | null) => {
    const res = await api(server, 'PUT', `/projects/${project}/proxy-cache`, adminAuth(), {
      endpoint: 'up',
      tagTtlSeconds: 0,
      ...(keepDeletedTags === null ? {} : { keepDeletedTags }),
    });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    assert.equal((JSON.parse(text) as { keepDeletedTags: boolean | null }).keepDeletedTags, keepDeletedTags);
  };

  before(async () => {
    upstream = await startDistribution();
    proxy = await CountingProxy.start(upstream.url);
    const pusher = new OciClient({ baseUrl: upstream.url, retry: { attempts: 1 } });
    await pushImage(pusher, 'lib/app', 'v1', v1);
    await pushImage(pusher, 'lib/app', 'v2', v2);
    [byDefault, dropping] = await Promise.all([
      startTestServer({ auth: { mode: 'basic', admin: { password: ADMIN_PASSWORD } }, proxy: { upstreamtimeout: '1500ms' } }),
      startTestServer({
        auth: { mode: 'basic', admin: { password: ADMIN_PASSWORD } },
        proxy: { upstreamtimeout: '1500ms', keepdeletedtags: false },
      }),
    ]);
    for (const server of [byDefault, dropping]) {
      const add = await api(server, 'POST', '/registries', adminAuth(), { name: 'up', url: proxy.url, kind: 'distribution' });
      assert.equal(add.status, 201, await add.text());
    }
    await bind(byDefault, 'keep', null);
    await bind(byDefault, 'drop', false);
    await bind(dropping, 'keep', true);
    await bind(dropping, 'drop', null);
  });
  after(async () => {
    await Promise.all([byDefault?.destroy(), dropping?.destroy(), proxy?.stop(), upstream?.stop()]);
  });

  const cases = () =>
    [byDefault, dropping].flatMap((server) => [
      {
        server,
        name: `${server === byDefault ? 'default config' : 'keepdeletedtags: false'}, project keep`,
        repository: 'keep/lib/app',
        keeps: true,
      },
      {
        server,
        name: `${server === byDefault ? 'default config' : 'keepdeletedtags: false'}, project drop`,
        repository: 'drop/lib/app',
        keeps: false,
      },
    ]);

  it('caches both tags, then an upstream delete that the upstream cannot confirm (down, 429, hung) deletes nothing', async () => {
    for (const c of cases()) {
      assert.equal((await pull(c.server, c.repository, 'v1')).digest, v1.manifest.digest, c.name);
      assert.equal((await pull(c.server, c.repository, 'v2')).digest, v2.manifest.digest, c.name);
      assert.deepEqual(await tags(c.server, c.repository), ['v1', 'v2'], c.name);
      const blob = await fetch(`${c.server.url}/v2/${c.repository}/blobs/${v1.layers[0]!.digest}`, {
        headers: { authorization: adminAuth() },
      });
      assert.equal(blob.status, 200, c.name);
      await blob.arrayBuffer();
    }
    // Deleted upstream (Distribution 2.8 deletes by digest: only v1 points to it).
    await new OciClient({ baseUrl: upstream.url, retry: { attempts: 1 } }).deleteManifest('lib/app', v1.manifest.digest);
    const head = await fetch(`${upstream.url}/v2/lib/app/manifests/v1`, { method: 'HEAD', headers: { accept: OCI_MANIFEST } });
    assert.equal(head.status, 404, 'the upstream no longer has v1');
    try {
      for (const mode of ['down', 'ratelimit', 'hang'] as const) {
        proxy.mode = mode;
        for (const c of cases()) {
          const got = await pull(c.server, c.repository, 'v1');
          assert.equal(got.status, 200, `${mode}, ${c.name}: ${JSON.stringify(got.errors)}`);
          assert.equal(got.digest, v1.manifest.digest);
          assert.deepEqual(await tags(c.server, c.repository), ['v1', 'v2'], `${mode}, ${c.name}: nothing deleted`);
        }
      }
    } finally {
      proxy.mode = 'pass';
    }
  });

  it('a definite 404 on revalidation: kept where configured, deleted from the cache (404 naming the upstream) where not', async () => {
    for (const c of cases()) {
      const got = await pull(c.server, c.repository, 'v1');
      if (c.keeps) {
        assert.equal(got.status, 200, `${c.name}: ${JSON.stringify(got.errors)}`);
        assert.equal(got.digest, v1.manifest.digest, `${c.name}: the cached copy stays pullable`);
        assert.deepEqual(await tags(c.server, c.repository), ['v1', 'v2'], c.name);
        continue;
      }
      assert.equal(got.status, 404, c.name);
      assert.equal(got.errors[0]?.code, 'MANIFEST_UNKNOWN', c.name);
      assert.match(
        got.errors[0]!.message,
        new RegExp(`tag v1 of ${c.repository} was deleted upstream in up \\(http://127\\.0\\.0\\.1:\\d+\\)`),
        c.name,
      );
      assert.deepEqual(await tags(c.server, c.repository), ['v2'], `${c.name}: tags/list drops the tag`);
      const history = await api(c.server, 'GET', `/repositories/${encodeURIComponent(c.repository)}/tag-history?tag=v1`, adminAuth());
      const entries = (
        (await history.json()) as { entries: { tag: string; oldDigest: string | null; newDigest: string | null; via: string }[] }
      ).entries;
      assert.equal(entries[0]!.via, 'proxy-cache', `${c.name}: a system delete by the cache`);
      assert.equal(entries[0]!.oldDigest, v1.manifest.digest);
      assert.equal(entries[0]!.newDigest, null);
      // Asked again: still the same answer (the upstream is asked, has nothing, nothing is stored).
      const again = await pull(c.server, c.repository, 'v1');
      assert.equal(again.status, 404, c.name);
      assert.match(again.errors[0]!.message, /was deleted upstream in up/, c.name);
      // The content is still cached: by digest it is served without the upstream (which no longer has it).
      proxy.reset();
      const byDigest = await pull(c.server, c.repository, v1.manifest.digest);
      assert.equal(byDigest.status, 200, `${c.name}: by digest ${JSON.stringify(byDigest.errors)}`);
      assert.equal(byDigest.digest, v1.manifest.digest);
      const blob = await fetch(`${c.server.url}/v2/${c.repository}/blobs/${v1.layers[0]!.digest}`, {
        headers: { authorization: adminAuth() },
      });
      assert.equal(blob.status, 200, `${c.name}: a blob of the manifest`);
      assert.ok(Buffer.from(await blob.arrayBuffer()).equals(v1.layers[0]!.data));
      assert.deepEqual(proxy.requests, [], `${c.name}: cached content by digest does not go upstream`);
      // The other tag is untouched and still revalidates.
      assert.equal((await pull(c.server, c.repository, 'v2')).digest, v2.manifest.digest, c.name);
    }
  });
});
