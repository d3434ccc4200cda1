import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Kysely } from 'kysely';
import { makeImage, RegistryClient, type Image } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

type PullStats = { pull_stats: { repository_id: number; digest: string; pulls: number; last_pulled_at: number } };

describe('pull counts', () => {
  let server: TestServer;
  let client: RegistryClient;
  const image: Image = makeImage();

  before(async () => {
    server = await startTestServer({ gc: { enabled: false }, events: { pullflushinterval: '1h' } });
    client = new RegistryClient(server.url);
    await client.pushImage('team/app', 'v1', image);
  });
  after(async () => server?.destroy());

  async function counted(): Promise<{ pulls: number; last: number }[]> {
    const db = server.stores.metadata.db as unknown as Kysely<PullStats>;
    const rows = await db
      .selectFrom('pull_stats')
      .select(['pulls', 'last_pulled_at'])
      .where('digest', '=', image.manifest.digest)
      .execute();
    return rows.map((r) => ({ pulls: Number(r.pulls), last: Number(r.last_pulled_at) }));
  }

  it('manifest GETs by tag and digest count as pulls of that manifest; HEADs and blob reads do not', async () => {
    const started = Date.now();
    for (const ref of ['v1', 'v1', image.manifest.digest]) {
      assert.equal((await client.fetch(`/v2/team/app/manifests/${ref}`, { headers: { accept: image.mediaType } })).status, 200);
    }
    assert.equal((await client.fetch('/v2/team/app/manifests/v1', { method: 'HEAD', headers: { accept: image.mediaType } })).status, 200);
    assert.equal((await client.fetch(`/v2/team/app/blobs/${image.config.digest}`)).status, 200);
    assert.deepEqual(await counted(), [], 'nothing is written per pull');
    assert.equal(await server.composition.pulls.flush(), 1);
    const [row] = await counted();
    assert.equal(row?.pulls, 3);
    assert.ok(row!.last >= started && row!.last <= Date.now());
    assert.equal(await server.composition.pulls.flush(), 0, 'a flush with nothing new writes nothing');
  });

  it('counts add up across flushes, and a clean shutdown flushes what is left', async () => {
    await client.fetch('/v2/team/app/manifests/v1', { headers: { accept: image.mediaType } });
    await server.composition.pulls.flush();
    await client.fetch('/v2/team/app/manifests/v1', { headers: { accept: image.mediaType } });
    await server.close();
    server = await startTestServer({ data: { dir: server.dataDir }, gc: { enabled: false } });
    assert.equal((await counted())[0]?.pulls, 5);
  });
});
