import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { OciClient, RegistryClientError, referrersTag } from '../../src/client/index.js';
import { jsonBlob, makeBlob, makeImage, OCI_INDEX, OCI_MANIFEST } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { FAST_RETRY, readAll } from './support.js';

/** A stream of `size` bytes in uneven pieces, as a file or socket would deliver them. */
function streamOf(data: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0; offset < data.length; offset += 7_777) yield data.subarray(offset, offset + 7_777);
    })(),
  );
}

describe('client against Berth: push, pull, list, delete', () => {
  let server: TestServer;
  let client: OciClient;
  before(async () => {
    server = await startTestServer();
    client = new OciClient({ baseUrl: server.url, retry: FAST_RETRY });
  });
  after(() => server.destroy());

  it('ping answers true for an open registry', async () => {
    assert.equal(await client.ping(), true);
  });

  for (const mode of ['post-put', 'single', 'chunked'] as const) {
    it(`pushes a Buffer (${mode}) and pulls it back with the digest checked`, async () => {
      const blob = makeBlob(300_000);
      const pushed = await client.pushBlob('push/buffer', blob.data, { mode, chunkSize: 64 * 1024 });
      assert.equal(pushed.digest, blob.digest);
      assert.equal(pushed.mounted, false);
      assert.deepEqual(await client.headBlob('push/buffer', blob.digest), { digest: blob.digest, size: blob.size });
      assert.ok((await readAll(client.getBlob('push/buffer', blob.digest))).equals(blob.data));
    });

    it(`pushes a stream with a known digest (${mode})`, async () => {
      const blob = makeBlob(200_001);
      const pushed = await client.pushBlob('push/stream', streamOf(blob.data), {
        mode,
        digest: blob.digest,
        size: mode === 'chunked' ? undefined : blob.size,
        chunkSize: 50_000,
      });
      assert.equal(pushed.digest, blob.digest);
      assert.ok((await client.getBlobBytes('push/stream', blob.digest)).equals(blob.data));
    });
  }

  it('a stream without a digest is refused before any request', async () => {
    await assert.rejects(client.pushBlob('push/stream', streamOf(Buffer.from('x'))), TypeError);
  });

  it('a pushed wrong digest is the registry DIGEST_INVALID error', async () => {
    const blob = makeBlob(100);
    const err = await client.pushBlob('push/bad', blob.data, { digest: makeBlob(100).digest }).catch((e: unknown) => e);
    assert.ok(err instanceof RegistryClientError);
    assert.equal(err.status, 400);
    assert.equal(err.code, 'DIGEST_INVALID');
    assert.equal(err.method, 'PUT');
    assert.match(err.url, /\/v2\/push\/bad\/blobs\/uploads\//);
  });

  it('headBlob answers null for an unknown blob; getBlob fails with BLOB_UNKNOWN', async () => {
    const unknown = makeBlob(10).digest;
    assert.equal(await client.headBlob('push/buffer', unknown), null);
    await assert.rejects(
      readAll(client.getBlob('push/buffer', unknown)),
      (err: RegistryClientError) => err.status === 404 && err.code === 'BLOB_UNKNOWN',
    );
  });

  it('mounts a blob from another repository, and falls back to an upload when the source lacks it', async () => {
    const blob = makeBlob(5000);
    await client.pushBlob('mount/source', blob.data);
    const mounted = await client.pushBlob('mount/target', blob.data, { mountFrom: 'mount/source' });
    assert.equal(mounted.mounted, true);
    assert.ok(await client.headBlob('mount/target', blob.digest));

    const fresh = makeBlob(5000);
    const uploaded = await client.pushBlob('mount/target', fresh.data, { mountFrom: 'mount/source' });
    assert.equal(uploaded.mounted, false);
    assert.ok((await client.getBlobBytes('mount/target', fresh.digest)).equals(fresh.data));
  });

  it('pushes an image, reads the manifest by tag and by digest, and HEADs it', async () => {
    const image = makeImage();
    for (const blob of [image.config, ...image.layers]) await client.pushBlob('img/app', blob.data);
    const digest = await client.putManifest('img/app', 'v1', image.manifest.data, OCI_MANIFEST);
    assert.equal(digest, image.manifest.digest);
    const byTag = await client.getManifest('img/app', 'v1');
    assert.equal(byTag?.digest, digest);
    assert.equal(byTag?.mediaType, OCI_MANIFEST);
    assert.ok(byTag?.bytes.equals(image.manifest.data));
    assert.equal((await client.getManifest('img/app', digest))?.digest, digest);
    assert.deepEqual(await client.headManifest('img/app', 'v1'), { digest, mediaType: OCI_MANIFEST, size: image.manifest.size });
    assert.equal(await client.getManifest('img/app', 'nope'), null);
    assert.equal(await client.headManifest('img/app', 'nope'), null);
  });

  it('putManifest without a media type takes it from the manifest body', async () => {
    const image = makeImage({ layers: 0 });
    await client.pushBlob('img/typed', image.config.data);
    await client.putManifest('img/typed', 'v1', image.manifest.data);
    assert.equal((await client.headManifest('img/typed', 'v1'))?.mediaType, OCI_MANIFEST);
  });

  it('lists tags across pages by following Link rel="next"', async () => {
    const image = makeImage({ layers: 1 });
    for (const blob of [image.config, ...image.layers]) await client.pushBlob('tags/many', blob.data);
    const tags = Array.from({ length: 7 }, (_, i) => `t${i}`);
    for (const tag of tags) await client.putManifest('tags/many', tag, image.manifest.data, OCI_MANIFEST);
    const pages: string[][] = [];
    for await (const page of client.tagPages('tags/many', { pageSize: 3 })) pages.push(page);
    assert.deepEqual(
      pages.map((p) => p.length),
      [3, 3, 1],
    );
    assert.deepEqual(await client.listTags('tags/many', { pageSize: 2 }), tags);
    assert.deepEqual(await client.listTags('tags/many'), tags);
  });

  it('lists the catalog across pages', async () => {
    const all = await client.catalog({ pageSize: 2 });
    assert.deepEqual(all, [...all].sort());
    for (const repo of ['img/app', 'mount/target', 'tags/many']) assert.ok(all.includes(repo), repo);
    assert.deepEqual(await client.catalog(), all);
  });

  it('lists referrers, filtered by artifactType', async () => {
    const subject = makeImage({ layers: 1 });
    for (const blob of [subject.config, ...subject.layers]) await client.pushBlob('ref/app', blob.data);
    await client.putManifest('ref/app', 'v1', subject.manifest.data, OCI_MANIFEST);
    const descriptor = { mediaType: OCI_MANIFEST, digest: subject.manifest.digest, size: subject.manifest.size };
    const sig = makeImage({ layers: 1, subject: descriptor, artifactType: 'application/vnd.example.sig' });
    const sbom = makeImage({ layers: 1, subject: descriptor, artifactType: 'application/vnd.example.sbom' });
    for (const art of [sig, sbom]) {
      for (const blob of [art.config, ...art.layers]) await client.pushBlob('ref/app', blob.data);
      await client.putManifest('ref/app', art.manifest.digest, art.manifest.data, OCI_MANIFEST);
    }
    const all = await client.referrers('ref/app', subject.manifest.digest);
    assert.equal(all.mediaType, OCI_INDEX);
    assert.deepEqual(all.manifests.map((m) => m.digest).sort(), [sig.manifest.digest, sbom.manifest.digest].sort());
    const sigs = await client.referrers('ref/app', subject.manifest.digest, { artifactType: 'application/vnd.example.sig' });
    assert.deepEqual(
      sigs.manifests.map((m) => m.digest),
      [sig.manifest.digest],
    );
    assert.deepEqual((await client.referrers('ref/app', makeBlob(4).digest)).manifests, []);
  });

  it('deletes a manifest and a blob', async () => {
    const image = makeImage({ layers: 1 });
    for (const blob of [image.config, ...image.layers]) await client.pushBlob('del/app', blob.data);
    await client.putManifest('del/app', 'v1', image.manifest.data, OCI_MANIFEST);
    await client.deleteManifest('del/app', image.manifest.digest);
    assert.equal(await client.headManifest('del/app', image.manifest.digest), null);
    await client.deleteBlob('del/app', image.layers[0]!.digest);
    assert.equal(await client.headBlob('del/app', image.layers[0]!.digest), null);
    const err = await client.deleteManifest('del/app', image.manifest.digest).catch((e: unknown) => e);
    assert.ok(err instanceof RegistryClientError && err.status === 404 && err.code === 'MANIFEST_UNKNOWN');
  });

  it('a manifest pulled by digest is verified against that digest', async () => {
    // The referrers tag schema names an index by its subject: check the tag form is what the fallback reads.
    assert.equal(referrersTag(`sha256:${'a'.repeat(64)}`), `sha256-${'a'.repeat(64)}`);
    const config = jsonBlob({ nonce: randomBytes(4).toString('hex') });
    await client.pushBlob('verify/app', config.data);
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
        layers: [],
      }),
    );
    const digest = await client.putManifest('verify/app', 'v1', body, OCI_MANIFEST);
    assert.equal(digest, `sha256:${createHash('sha256').update(body).digest('hex')}`);
    assert.ok((await client.getManifest('verify/app', digest))?.bytes.equals(body));
  });
});
