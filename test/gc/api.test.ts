import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { GcReport } from '../../src/gc/report.js';
import { GC_LEASE } from '../../src/gc/collector.js';
import type { StorageUsage } from '../../src/gc/ports.js';
import { errorCode, makeBlob, makeImage, type RegistryClient } from '../helpers/registry-client.js';
import { useServer } from '../helpers/use-server.js';
import { bytesStored, imageBlobs, imageOver, manifestStatus, pushIndex } from './support.js';

async function postGc(client: RegistryClient, query = ''): Promise<{ status: number; report: GcReport }> {
  const res = await client.fetch(`/api/v1/gc${query}`, { method: 'POST' });
  return { status: res.status, report: (await res.json()) as GcReport };
}

describe('POST /api/v1/gc', () => {
  const reg = useServer({ gc: { enabled: false, graceperiod: 0 }, tags: { history: { protectgc: false } } });

  it('a dry run deletes nothing and reports exactly what the real run then deletes', async () => {
    const untagged = makeImage();
    await reg.client.pushImage('dry/app', 'old', untagged);
    await reg.client.pushImage('dry/app', 'live', makeImage());
    await reg.client.fetch('/v2/dry/app/manifests/old', { method: 'DELETE' });
    const children = [makeImage(), makeImage()];
    await pushIndex(reg.client, 'dry/multi', 'v1', children);
    await reg.client.fetch('/v2/dry/multi/manifests/v1', { method: 'DELETE' });
    const subject = makeImage();
    await reg.client.pushImage('dry/signed', 'v1', subject);
    const signature = makeImage({
      layers: 1,
      subject: { digest: subject.manifest.digest, size: subject.manifest.size, mediaType: subject.mediaType },
    });
    await reg.client.pushImage('dry/signed', signature.manifest.digest, signature);
    await reg.client.fetch(`/v2/dry/signed/manifests/${subject.manifest.digest}`, { method: 'DELETE' });
    await reg.client.pushBlob('dry/loose', makeBlob(3000));

    const dry = await postGc(reg.client, '?dryRun=true');
    assert.equal(dry.status, 200);
    assert.equal(dry.report.dryRun, true);
    assert.equal(await manifestStatus(reg.client, 'dry/app', untagged.manifest.digest), 200, 'a dry run must not delete');
    for (const blob of imageBlobs(untagged)) assert.equal(await bytesStored(reg.server, blob.digest), true);

    const real = await postGc(reg.client);
    assert.equal(real.status, 200);
    assert.equal(real.report.dryRun, false);
    assert.deepEqual(dry.report.deleted, real.report.deleted);
    for (const key of ['manifests', 'links', 'blobs', 'bytesFreed'] as const)
      assert.equal(dry.report.counts[key], real.report.counts[key], key);
    assert.equal(real.report.counts.manifests, 1 + 3 + 1, 'untagged image, index + 2 children, orphaned signature');
    assert.ok(real.report.counts.bytesFreed > 3000);
    for (const blob of real.report.deleted.blobs) assert.equal(await bytesStored(reg.server, blob.digest), false);
  });

  it('answers 409 with the holder while another collector holds the lease, 200 once released', async () => {
    const now = Date.now();
    assert.equal(await reg.server.stores.leases.tryAcquire(GC_LEASE, 'replica-2:42', now, now + 60_000), true);
    try {
      const busy = await postGc(reg.client);
      assert.equal(busy.status, 409);
      assert.equal(busy.report.ran, false);
      assert.equal(busy.report.heldBy, 'replica-2:42');
    } finally {
      await reg.server.stores.leases.release(GC_LEASE, 'replica-2:42');
    }
    assert.equal((await postGc(reg.client)).status, 200);
  });

  it('refuses a malformed dryRun flag with a spec error body', async () => {
    const res = await reg.client.fetch('/api/v1/gc?dryRun=maybe', { method: 'POST' });
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), 'INVALID_ARGUMENT');
  });
});

describe('GET /api/v1/storage', () => {
  const reg = useServer({ gc: { enabled: false, graceperiod: 0 }, tags: { history: { protectgc: false } } });

  const usage = async (): Promise<StorageUsage> => (await (await reg.client.fetch('/api/v1/storage')).json()) as StorageUsage;
  const sizeOf = (...blobs: { size: number }[]) => blobs.reduce((sum, b) => sum + b.size, 0);

  it('reports logical size per repository and project (unique referenced blobs) and the deduplicated physical total', async () => {
    const shared = makeBlob(10_000);
    const imageA = imageOver([makeBlob(2000), shared]);
    const imageB = imageOver([makeBlob(3000), shared]);
    const other = makeImage({ layers: 1, layerSize: 500 });
    await reg.client.pushImage('proj/a', 'v1', imageA);
    await reg.client.pushImage('proj/a', 'v2', imageA); // same image twice: counted once
    await reg.client.pushImage('proj/b', 'v1', imageB);
    await reg.client.pushImage('other', 'v1', other);

    const u = await usage();
    const repo = (name: string) => u.repositories.find((r) => r.repository === name);
    assert.deepEqual(repo('proj/a'), { repository: 'proj/a', blobs: 3, bytes: sizeOf(imageA.config, ...imageA.layers) });
    assert.deepEqual(repo('proj/b'), { repository: 'proj/b', blobs: 3, bytes: sizeOf(imageB.config, ...imageB.layers) });
    assert.deepEqual(repo('other'), { repository: 'other', blobs: 2, bytes: sizeOf(other.config, ...other.layers) });
    const project = u.projects.find((p) => p.project === 'proj');
    assert.deepEqual(project, {
      project: 'proj',
      blobs: 5,
      bytes: sizeOf(imageA.config, imageA.layers[0]!, imageB.config, imageB.layers[0]!, shared),
    });
    const allBlobs = [imageA.config, ...imageA.layers, imageB.config, imageB.layers[0]!, other.config, ...other.layers];
    assert.deepEqual(u.total, { blobs: 7, bytes: sizeOf(...allBlobs) });

    const one = (await (await reg.client.fetch('/api/v1/storage?repository=proj/b')).json()) as unknown;
    assert.deepEqual(one, repo('proj/b'));
  });

  it('follows deletes and garbage collection', async () => {
    const before = await usage();
    const image = before.repositories.find((r) => r.repository === 'proj/b')!;
    const digest = (await reg.client.fetch('/v2/proj/b/manifests/v1', { method: 'HEAD' })).headers.get('docker-content-digest')!;
    assert.equal((await reg.client.fetch(`/v2/proj/b/manifests/${digest}`, { method: 'DELETE' })).status, 202);
    const afterDelete = await usage();
    assert.equal(
      afterDelete.repositories.find((r) => r.repository === 'proj/b'),
      undefined,
      'logical size drops at once',
    );
    assert.deepEqual(afterDelete.total, before.total, 'physical size drops only when GC deletes the bytes');
    await reg.server.gc.collector.run();
    const afterGc = await usage();
    // The shared layer stays (proj/a uses it); proj/b's config and own layer go.
    assert.equal(afterGc.total.blobs, before.total.blobs - 2);
    assert.ok(afterGc.total.bytes < before.total.bytes && afterGc.total.bytes > before.total.bytes - image.bytes);
  });

  it('answers 404 NAME_UNKNOWN for an unknown repository', async () => {
    const res = await reg.client.fetch('/api/v1/storage?repository=no/such');
    assert.equal(res.status, 404);
    assert.equal(await errorCode(res), 'NAME_UNKNOWN');
  });
});
