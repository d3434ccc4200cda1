import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { OciClient, RegistryClientError, referrersTag } from '../../src/client/index.js';
import { makeBlob, makeImage, OCI_INDEX, OCI_MANIFEST, type Image } from '../helpers/registry-client.js';
import { startDistribution, type DistributionServer } from '../helpers/distribution.js';
import { FAST_RETRY, readAll } from './support.js';

/**
 * The same client against CNCF Distribution 2.8 (the Debian docker-registry package):
 * what works against Berth must work against the reference implementation, including its
 * differences (no referrers API, `_state` in upload Locations, POST ?digest= ignored).
 */

async function pushImage(client: OciClient, repo: string, tag: string, image: Image): Promise<void> {
  for (const blob of [image.config, ...image.layers]) await client.pushBlob(repo, blob.data);
  await client.putManifest(repo, tag, image.manifest.data, OCI_MANIFEST);
}

for (const withAuth of [false, true]) {
  describe(`client against CNCF Distribution (${withAuth ? 'htpasswd' : 'no'} auth)`, () => {
    let registry: DistributionServer;
    let client: OciClient;
    before(async () => {
      registry = await startDistribution(withAuth ? { user: { username: 'user', password: 'pass-word-1' } } : {});
      client = new OciClient({ baseUrl: registry.url, credentials: registry.credentials, retry: FAST_RETRY });
    });
    after(() => registry.stop());

    it('pushes an image and pulls it back verified', async () => {
      const image = makeImage({ layers: 2, layerSize: 100_000 });
      await pushImage(client, 'lib/app', 'v1', image);
      const manifest = await client.getManifest('lib/app', 'v1');
      assert.equal(manifest?.digest, image.manifest.digest);
      assert.equal(manifest?.mediaType, OCI_MANIFEST);
      for (const layer of image.layers) assert.ok((await readAll(client.getBlob('lib/app', layer.digest))).equals(layer.data));
      assert.deepEqual(await client.headBlob('lib/app', image.config.digest), { digest: image.config.digest, size: image.config.size });
    });

    it('uploads chunked, from a stream, and with the single-request form (falling back to PUT)', async () => {
      const chunked = makeBlob(150_000);
      await client.pushBlob('lib/up', chunked.data, { mode: 'chunked', chunkSize: 64 * 1024 });
      const streamed = makeBlob(80_000);
      await client.pushBlob('lib/up', Readable.from([streamed.data.subarray(0, 30_000), streamed.data.subarray(30_000)]), {
        digest: streamed.digest,
        size: streamed.size,
      });
      const single = makeBlob(1000);
      await client.pushBlob('lib/up', single.data, { mode: 'single' });
      for (const blob of [chunked, streamed, single]) assert.ok((await client.getBlobBytes('lib/up', blob.digest)).equals(blob.data));
    });

    it('lists tags, and the catalog across pages', async () => {
      const image = makeImage({ layers: 1 });
      for (const tag of ['a', 'b', 'c', 'd', 'e']) await pushImage(client, 'lib/tags', tag, image);
      const pages: string[][] = [];
      for await (const page of client.tagPages('lib/tags', { pageSize: 2 })) pages.push(page);
      // Distribution 2.8 ignores `n` on tags/list (tag pagination came with 3.0) and
      // lists in directory order: every tag, once, in one page.
      assert.deepEqual(pages.flat().sort(), ['a', 'b', 'c', 'd', 'e']);
      // Its catalog does paginate with Link headers.
      const catalog: string[][] = [];
      for await (const page of client.catalogPages({ pageSize: 1 })) catalog.push(page);
      assert.ok(catalog.length > 1, `${catalog.length} catalog pages`);
      assert.ok(catalog.flat().includes('lib/tags'));
    });

    it('mounts a blob across repositories', async () => {
      const blob = makeBlob(4000);
      await client.pushBlob('lib/src', blob.data);
      assert.equal((await client.pushBlob('lib/dst', blob.data, { mountFrom: 'lib/src' })).mounted, true);
      assert.ok(await client.headBlob('lib/dst', blob.digest));
    });

    it('falls back to the referrers tag schema where the API answers 404', async () => {
      const subject = makeImage({ layers: 1 });
      await pushImage(client, 'lib/ref', 'v1', subject);
      const sig = makeImage({ layers: 1, artifactType: 'application/vnd.example.sig' });
      await pushImage(client, 'lib/ref', 'sig', sig);
      assert.deepEqual((await client.referrers('lib/ref', subject.manifest.digest)).manifests, []);
      const descriptor = {
        mediaType: OCI_MANIFEST,
        digest: sig.manifest.digest,
        size: sig.manifest.size,
        artifactType: 'application/vnd.example.sig',
      };
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [descriptor] }));
      await client.putManifest('lib/ref', referrersTag(subject.manifest.digest), index, OCI_INDEX);
      assert.deepEqual((await client.referrers('lib/ref', subject.manifest.digest)).manifests, [descriptor]);
      assert.deepEqual((await client.referrers('lib/ref', subject.manifest.digest, { artifactType: 'other' })).manifests, []);
    });

    it('deletes a manifest and a blob', async () => {
      const image = makeImage({ layers: 1 });
      await pushImage(client, 'lib/del', 'v1', image);
      await client.deleteManifest('lib/del', image.manifest.digest);
      assert.equal(await client.headManifest('lib/del', image.manifest.digest), null);
      await client.deleteBlob('lib/del', image.layers[0]!.digest);
      assert.equal(await client.headBlob('lib/del', image.layers[0]!.digest), null);
    });

    if (withAuth) {
      it('without credentials, or with wrong ones, the answer is 401 UNAUTHORIZED', async () => {
        for (const credentials of [undefined, { username: 'user', password: 'wrong' }]) {
          const err = await new OciClient({ baseUrl: registry.url, credentials, retry: FAST_RETRY })
            .listTags('lib/app')
            .catch((e: unknown) => e);
          assert.ok(err instanceof RegistryClientError);
          assert.equal(err.status, 401);
          assert.equal(err.code, 'UNAUTHORIZED');
        }
      });
    }
  });
}
