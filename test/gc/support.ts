import assert from 'node:assert/strict';
import type { GcReport } from '../../src/gc/report.js';
import { OCI_INDEX, OCI_LAYER, RegistryClient, jsonBlob, makeImage, sha256, type Blob, type Image } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * A test server whose collector runs only when a test asks (no schedule), grace period 0 unless given.
 * Tag history does not protect manifests here (GC alone; test/policies/tag-history.test.ts tests the protection).
 */
export async function startGcServer(
  gc: Record<string, unknown> = {},
  overrides: Record<string, unknown> = {},
): Promise<{ server: TestServer; client: RegistryClient }> {
  const server = await startTestServer({
    gc: { enabled: false, graceperiod: 0, ...gc },
    tags: { history: { protectgc: false } },
    ...overrides,
  });
  return { server, client: new RegistryClient(server.url) };
}

export async function runGc(server: TestServer, dryRun = false): Promise<GcReport> {
  const report = await server.gc.collector.run({ dryRun });
  assert.equal(report.ran, true, 'the collector should have taken the lease');
  assert.equal(report.completed, true, `gc run failed: ${report.error}`);
  return report;
}

/** True when the blob's bytes are in storage. */
export async function bytesStored(server: TestServer, digest: string): Promise<boolean> {
  return (await server.stores.blobs.stat(digest)) !== null;
}

export async function manifestStatus(client: RegistryClient, repo: string, reference: string): Promise<number> {
  const res = await client.fetch(`/v2/${repo}/manifests/${reference}`, { method: 'HEAD' });
  return res.status;
}

export async function blobStatus(client: RegistryClient, repo: string, digest: string): Promise<number> {
  const res = await client.fetch(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
  return res.status;
}

/** Pushes `images` by digest, then an index over them under `tag`. */
export async function pushIndex(client: RegistryClient, repo: string, tag: string, images: Image[]): Promise<Blob> {
  for (const image of images) {
    for (const blob of [image.config, ...image.layers]) {
      const res = await client.pushBlob(repo, blob);
      assert.equal(res.status, 201);
    }
    const res = await client.pushManifest(repo, image.manifest.digest, image.manifest, image.mediaType);
    assert.equal(res.status, 201);
  }
  const index = jsonBlob({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: images.map((image, i) => ({
      mediaType: image.mediaType,
      digest: image.manifest.digest,
      size: image.manifest.size,
      platform: { architecture: `arch${i}`, os: 'linux' },
    })),
  });
  const res = await client.pushManifest(repo, tag, index, OCI_INDEX);
  assert.equal(res.status, 201, await res.text());
  return index;
}

/** Every digest in the image (config, layers, manifest). */
export function imageBlobs(image: Image): Blob[] {
  return [image.config, ...image.layers];
}

/** An OCI image manifest (with a fresh config) over the given layers, e.g. to share a layer between images. */
export function imageOver(layers: Blob[]): Image {
  const base = makeImage({ layers: 0 });
  const manifest = JSON.parse(base.manifest.data.toString()) as { layers: unknown[] };
  manifest.layers = layers.map((l) => ({ mediaType: OCI_LAYER, digest: l.digest, size: l.size }));
  const data = Buffer.from(JSON.stringify(manifest));
  return { ...base, layers, manifest: { data, size: data.length, digest: sha256(data) } };
}

/** Every recorded blob has its bytes; every manifest reference resolves inside its repository. */
export async function assertConsistent(server: TestServer): Promise<void> {
  const db = server.stores.metadata.db;
  for (const row of await db.selectFrom('blobs').select(['digest', 'size']).execute()) {
    const stat = await server.stores.blobs.stat(row.digest);
    assert.equal(stat?.size, Number(row.size), `blob ${row.digest} is recorded but its bytes are missing`);
  }
  const dangling = await db
    .selectFrom('manifest_references as mr')
    .leftJoin('repository_blobs as rb', (j) =>
      j.onRef('rb.repository_id', '=', 'mr.repository_id').onRef('rb.digest', '=', 'mr.child_digest'),
    )
    .leftJoin('manifests as m', (j) => j.onRef('m.repository_id', '=', 'mr.repository_id').onRef('m.digest', '=', 'mr.child_digest'))
    .select(['mr.manifest_digest', 'mr.child_digest'])
    .where((eb) => eb.and([eb('rb.digest', 'is', null), eb('m.digest', 'is', null)]))
    .execute();
  assert.deepEqual(dangling, [], 'manifests reference content missing from their repository');
}
