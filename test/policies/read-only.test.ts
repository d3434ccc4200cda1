import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jsonBlob, makeBlob, makeImage, RegistryClient, type Image } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** The error body's first entry. */
async function firstError(res: Response): Promise<{ code: string; message: string }> {
  const body = (await res.json()) as { errors: { code: string; message: string }[] };
  return body.errors[0]!;
}

describe('read-only mode (storage.maintenance.readonly.enabled), over HTTP', () => {
  let server: TestServer;
  let client: RegistryClient;
  const image: Image = makeImage({ layers: 2 });
  let eventsBefore: number;

  before(async () => {
    // Content pushed while writable, then the same data served read-only.
    const writable = await startTestServer({ gc: { enabled: false } });
    await new RegistryClient(writable.url).pushImage('team/app', 'v1', image);
    await writable.close();
    server = await startTestServer({
      data: { dir: writable.dataDir },
      gc: { enabled: false },
      storage: { maintenance: { readonly: { enabled: true } } },
    });
    client = new RegistryClient(server.url);
    await server.stores.outbox.sequence(10_000);
    eventsBefore = (await server.stores.outbox.status()).lastSeq;
  });
  after(async () => server?.destroy());

  it('pulls, tag lists and the catalog keep working', async () => {
    const manifest = await client.fetch('/v2/team/app/manifests/v1', { headers: { accept: image.mediaType } });
    assert.equal(manifest.status, 200);
    assert.equal(Buffer.from(await manifest.arrayBuffer()).equals(image.manifest.data), true);
    const layer = await client.fetch(`/v2/team/app/blobs/${image.layers[0]!.digest}`);
    assert.equal(layer.status, 200);
    assert.equal(Buffer.from(await layer.arrayBuffer()).equals(image.layers[0]!.data), true);
    assert.deepEqual(await (await client.fetch('/v2/team/app/tags/list')).json(), { name: 'team/app', tags: ['v1'] });
  });

  const refusals: [string, (c: RegistryClient) => Promise<Response>][] = [
    ['starting an upload', (c) => c.fetch('/v2/team/app/blobs/uploads/', { method: 'POST' })],
    ['a monolithic upload', (c) => c.pushBlob('team/app', makeBlob(100))],
    [
      'a cross-repository mount',
      (c) => c.fetch(`/v2/team/other/blobs/uploads/?mount=${image.layers[0]!.digest}&from=team/app`, { method: 'POST' }),
    ],
    ['a manifest push', (c) => c.pushManifest('team/app', 'v2', image.manifest, image.mediaType)],
    [
      'moving a tag',
      (c) =>
        c.pushManifest(
          'team/app',
          'v1',
          jsonBlob({ ...JSON.parse(image.manifest.data.toString()), annotations: { moved: 'yes' } }),
          image.mediaType,
        ),
    ],
    ['deleting a tag', (c) => c.fetch('/v2/team/app/manifests/v1', { method: 'DELETE' })],
    ['deleting a manifest', (c) => c.fetch(`/v2/team/app/manifests/${image.manifest.digest}`, { method: 'DELETE' })],
    ['deleting a blob', (c) => c.fetch(`/v2/team/app/blobs/${image.layers[0]!.digest}`, { method: 'DELETE' })],
  ];
  for (const [what, request] of refusals) {
    it(`refuses ${what} with 405 UNSUPPORTED naming the policy`, async () => {
      const res = await request(client);
      assert.equal(res.status, 405);
      const error = await firstError(res);
      assert.equal(error.code, 'UNSUPPORTED');
      assert.match(error.message, /read-only mode/);
      assert.match(error.message, /policy: read-only/);
    });
  }

  it('nothing changed: same tags, same manifest, same blobs, no event recorded', async () => {
    assert.deepEqual(await (await client.fetch('/v2/team/app/tags/list')).json(), { name: 'team/app', tags: ['v1'] });
    assert.equal((await client.fetch(`/v2/team/app/manifests/${image.manifest.digest}`, { method: 'HEAD' })).status, 200);
    assert.equal(
      (await client.fetch(`/v2/team/other/blobs/${image.layers[0]!.digest}`, { method: 'HEAD' })).status,
      404,
      'the refused mount linked nothing',
    );
    assert.deepEqual(await (await client.fetch('/v2/_catalog')).json(), { repositories: ['team/app'] });
    await server.stores.outbox.sequence(10_000);
    assert.equal((await server.stores.outbox.status()).lastSeq, eventsBefore);
  });
});
