import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RegistryClient, errorCode, makeImage } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('smoke: push and pull an image over HTTP', () => {
  let server: TestServer;
  let client: RegistryClient;
  before(async () => {
    server = await startTestServer();
    client = new RegistryClient(server.url);
  });
  after(async () => server.destroy());

  it('GET /v2/ answers 200 with the API version header', async () => {
    const res = await client.fetch('/v2/');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  });

  it('pushes an image and pulls the manifest back byte-identical by tag and digest', async () => {
    const image = makeImage();
    const put = await client.pushImage('smoke/app', 'v1', image);
    assert.equal(put.headers.get('docker-content-digest'), image.manifest.digest);
    for (const ref of ['v1', image.manifest.digest]) {
      const res = await client.fetch(`/v2/smoke/app/manifests/${ref}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), image.mediaType);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), image.manifest.data);
    }
  });

  it('a manifest that references a missing blob is refused with MANIFEST_BLOB_UNKNOWN', async () => {
    const image = makeImage();
    const res = await client.pushManifest('smoke/app', 'broken', image.manifest);
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), 'MANIFEST_BLOB_UNKNOWN');
  });
});
