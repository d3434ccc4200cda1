import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, jsonBlob, makeBlob, sha256 } from '../helpers/registry-client.js';
import { useServer } from '../helpers/use-server.js';
import { bytesOf, openUpload, patchChunk, withDigest } from './support.js';

const PARALLEL = 10;

describe('concurrency: simultaneous pushes leave a consistent state', () => {
  const reg = useServer();

  it(`${PARALLEL} concurrent monolithic pushes of the same blob all succeed and the blob is pullable and correct`, async () => {
    const blob = makeBlob(256 * 1024);
    const results = await Promise.all(Array.from({ length: PARALLEL }, () => reg.client.pushBlob('conc/mono', blob)));
    assert.deepEqual(
      results.map((r) => r.status),
      Array(PARALLEL).fill(201),
    );
    const res = await reg.client.fetch(`/v2/conc/mono/blobs/${blob.digest}`);
    assert.equal(res.status, 200);
    const pulled = await bytesOf(res);
    assert.equal(sha256(pulled), blob.digest);
    assert.deepEqual(pulled, blob.data);
  });

  it(`${PARALLEL} concurrent chunked pushes of the same blob into different repositories all succeed`, async () => {
    const blob = makeBlob(300 * 1024);
    const repos = Array.from({ length: PARALLEL }, (_, i) => `conc/chunked-${i}`);
    const results = await Promise.all(repos.map((repo) => reg.client.pushBlobChunked(repo, blob, 64 * 1024)));
    assert.deepEqual(
      results.map((r) => r.status),
      Array(PARALLEL).fill(201),
    );
    for (const repo of repos) {
      const res = await reg.client.fetch(`/v2/${repo}/blobs/${blob.digest}`);
      assert.deepEqual(await bytesOf(res), blob.data);
    }
  });

  it(`${PARALLEL} concurrent pushes of the same tag (different manifests) leave the tag on one of them, intact`, async () => {
    const config = jsonBlob({ architecture: 'amd64', os: 'linux' });
    const layer = makeBlob(1000);
    for (const blob of [config, layer]) assert.equal((await reg.client.pushBlob('conc/tag', blob)).status, 201);
    const manifests = Array.from({ length: PARALLEL }, (_, i) =>
      jsonBlob({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
        layers: [{ mediaType: OCI_LAYER, digest: layer.digest, size: layer.size }],
        annotations: { writer: String(i) },
      }),
    );
    const results = await Promise.all(manifests.map((m) => reg.client.pushManifest('conc/tag', 'latest', m)));
    assert.deepEqual(
      results.map((r) => r.status),
      Array(PARALLEL).fill(201),
    );
    const res = await reg.client.fetch('/v2/conc/tag/manifests/latest');
    assert.equal(res.status, 200);
    const body = await bytesOf(res);
    const digest = res.headers.get('docker-content-digest');
    assert.equal(sha256(body), digest);
    assert.ok(
      manifests.some((m) => m.digest === digest),
      'tag points at one of the pushed manifests',
    );
    // Every manifest was stored, whichever won the tag.
    for (const m of manifests) assert.equal((await reg.client.fetch(`/v2/conc/tag/manifests/${m.digest}`, { method: 'HEAD' })).status, 200);
    const tags = (await (await reg.client.fetch('/v2/conc/tag/tags/list')).json()) as { tags: string[] };
    assert.deepEqual(tags.tags, ['latest']);
  });

  it('two simultaneous PATCHes of the same chunk on one session: exactly one is applied', async () => {
    const blob = makeBlob(200_000);
    const location = await openUpload(reg.client, 'conc/session');
    const results = await Promise.all([patchChunk(reg.client, location, blob.data, 0), patchChunk(reg.client, location, blob.data, 0)]);
    const statuses = results.map((r) => r.status).sort();
    // The loser is refused either while the winner writes (400 BLOB_UPLOAD_INVALID) or after it (416).
    assert.equal(statuses.filter((s) => s === 202).length, 1, `statuses ${statuses}`);
    assert.ok([400, 416].includes(statuses.find((s) => s !== 202)!), `statuses ${statuses}`);
    const status = await reg.client.fetch(location);
    assert.equal(status.headers.get('range'), `0-${blob.size - 1}`);
    assert.equal((await reg.client.fetch(withDigest(location, blob.digest), { method: 'PUT' })).status, 201);
    assert.deepEqual(await bytesOf(await reg.client.fetch(`/v2/conc/session/blobs/${blob.digest}`)), blob.data);
  });
});
