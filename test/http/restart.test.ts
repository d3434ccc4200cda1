import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { RegistryClient, makeBlob, makeImage } from '../helpers/registry-client.js';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { bytesOf, expectError, openUpload, patchChunk, streamBody, withDigest } from './support.js';

/**
 * Upload sessions survive a restart: their bytes are staged on disk and their size in the
 * database, and the new process rebuilds the running sha256 from the staged bytes (it cannot
 * hold the old process's hash state), so the final digest check still holds.
 */
describe('restart: an upload continues on a new server over the same data directory', () => {
  const dataDir = tempDir();
  let server: TestServer | undefined;
  const restart = async (): Promise<RegistryClient> => {
    await server?.close();
    server = await startTestServer({ data: { dir: dataDir } });
    return new RegistryClient(server.url);
  };
  after(async () => {
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('half a chunked upload, restart, GET shows the Range, finish, and the blob pulls byte-identical', async () => {
    const blob = makeBlob(3 * 1024 * 1024 + 17);
    const half = Math.floor(blob.size / 2);
    let client = await restart();
    const location = await openUpload(client, 'restart/app');
    assert.equal((await patchChunk(client, location, blob.data.subarray(0, 1_000_000), 0)).status, 202);
    assert.equal((await patchChunk(client, location, blob.data.subarray(1_000_000, half), 1_000_000)).status, 202);

    client = await restart();
    const status = await client.fetch(location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), `0-${half - 1}`);
    assert.equal((await patchChunk(client, location, blob.data.subarray(half), half)).status, 202);
    const put = await client.fetch(withDigest(location, blob.digest), { method: 'PUT' });
    assert.equal(put.status, 201, await put.text());
    const pulled = await client.fetch(`/v2/restart/app/blobs/${blob.digest}`);
    assert.deepEqual(await bytesOf(pulled), blob.data);
  });

  it('the hash is rebuilt across two restarts, with a streamed chunk and a final PUT body', async () => {
    const blob = makeBlob(900_000);
    let client = await restart();
    const location = await openUpload(client, 'restart/app');
    assert.equal((await patchChunk(client, location, blob.data.subarray(0, 300_000), 0)).status, 202);
    client = await restart();
    const streamed = await client.fetch(location, {
      method: 'PATCH',
      ...streamBody([blob.data.subarray(300_000, 450_000), blob.data.subarray(450_000, 600_000)]),
    } as RequestInit);
    assert.equal(streamed.status, 202);
    assert.equal(streamed.headers.get('range'), '0-599999');
    client = await restart();
    const put = await client.fetch(withDigest(location, blob.digest), { method: 'PUT', body: new Uint8Array(blob.data.subarray(600_000)) });
    assert.equal(put.status, 201, await put.text());
    assert.deepEqual(await bytesOf(await client.fetch(`/v2/restart/app/blobs/${blob.digest}`)), blob.data);
  });

  it('after a restart a wrong digest is still detected (400 DIGEST_INVALID, nothing committed)', async () => {
    const blob = makeBlob(100_000);
    const claimed = makeBlob(100_000);
    let client = await restart();
    const location = await openUpload(client, 'restart/app');
    assert.equal((await patchChunk(client, location, blob.data, 0)).status, 202);
    client = await restart();
    await expectError(await client.fetch(withDigest(location, claimed.digest), { method: 'PUT' }), 400, 'DIGEST_INVALID');
    assert.equal((await client.fetch(`/v2/restart/app/blobs/${claimed.digest}`, { method: 'HEAD' })).status, 404);
  });

  it('blobs, manifests and tags pushed before a restart are served after it', async () => {
    const image = makeImage();
    let client = await restart();
    await client.pushImage('restart/image', 'v1', image);
    client = await restart();
    const res = await client.fetch('/v2/restart/image/manifests/v1');
    assert.equal(res.status, 200);
    assert.deepEqual(await bytesOf(res), image.manifest.data);
    for (const layer of image.layers) {
      assert.deepEqual(await bytesOf(await client.fetch(`/v2/restart/image/blobs/${layer.digest}`)), layer.data);
    }
  });
});
