import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errorCode, makeImage } from '../helpers/registry-client.js';
import { useServer } from '../helpers/use-server.js';

describe('smoke: push and pull an image over HTTP', () => {
  const reg = useServer();

  it('GET /v2/ answers 200 with the API version header', async () => {
    const res = await reg.client.fetch('/v2/');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  });

  it('pushes an image and pulls the manifest back byte-identical by tag and digest', async () => {
    const image = makeImage();
    const put = await reg.client.pushImage('smoke/app', 'v1', image);
    assert.equal(put.headers.get('docker-content-digest'), image.manifest.digest);
    for (const ref of ['v1', image.manifest.digest]) {
      const res = await reg.client.fetch(`/v2/smoke/app/manifests/${ref}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), image.mediaType);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), image.manifest.data);
    }
  });

  it('a manifest that references a missing blob is refused with MANIFEST_BLOB_UNKNOWN', async () => {
    const image = makeImage();
    const res = await reg.client.pushManifest('smoke/app', 'broken', image.manifest);
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), 'MANIFEST_BLOB_UNKNOWN');
  });
});
