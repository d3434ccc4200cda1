import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeBlob, makeImage } from '../helpers/registry-client.js';
import { useServer } from '../helpers/use-server.js';
import { blobStatus, bytesStored, imageBlobs, imageOver, manifestStatus, pushIndex, runGc, startGcServer } from './support.js';

describe('gc: what is collected (grace period 0)', () => {
  // Tag history's GC protection off: these tests are about GC alone (the protection has its own tests).
  const reg = useServer({ gc: { enabled: false, graceperiod: 0 }, tags: { history: { protectgc: false } } });

  it('an image whose tag was deleted is collected down to its bytes', async () => {
    const image = makeImage();
    await reg.client.pushImage('gc/untag', 'v1', image);
    assert.equal((await reg.client.fetch('/v2/gc/untag/manifests/v1', { method: 'DELETE' })).status, 202);
    const report = await runGc(reg.server);
    assert.deepEqual(report.deleted.manifests, [{ repository: 'gc/untag', digest: image.manifest.digest }]);
    assert.equal(await manifestStatus(reg.client, 'gc/untag', image.manifest.digest), 404);
    for (const blob of imageBlobs(image)) {
      assert.equal(await blobStatus(reg.client, 'gc/untag', blob.digest), 404);
      assert.equal(await bytesStored(reg.server, blob.digest), false, `bytes of ${blob.digest} should be gone`);
    }
    assert.equal(
      report.counts.bytesFreed,
      imageBlobs(image).reduce((sum, b) => sum + b.size, 0),
    );
  });

  it('a layer shared with a tagged image survives; only the unshared blobs go', async () => {
    const kept = makeImage({ layers: 2 });
    const droppedImage = imageOver([makeBlob(700), kept.layers[0]!]);
    await reg.client.pushImage('gc/shared', 'keep', kept);
    await reg.client.pushImage('gc/shared', 'drop', droppedImage);
    await reg.client.fetch(`/v2/gc/shared/manifests/${droppedImage.manifest.digest}`, { method: 'DELETE' });
    await runGc(reg.server);
    assert.equal(await blobStatus(reg.client, 'gc/shared', kept.layers[0]!.digest), 200);
    assert.equal(await bytesStored(reg.server, kept.layers[0]!.digest), true);
    assert.equal(await bytesStored(reg.server, droppedImage.layers[0]!.digest), false);
    assert.equal(await manifestStatus(reg.client, 'gc/shared', 'keep'), 200);
  });

  it('a blob deleted from one repository stays stored and pullable from another', async () => {
    const blob = makeBlob(2048);
    const image = imageOver([blob]);
    await reg.client.pushImage('gc/a', 'v1', image);
    await reg.client.pushImage('gc/b', 'v1', image);
    await reg.client.fetch('/v2/gc/a/manifests/v1', { method: 'DELETE' });
    const report = await runGc(reg.server);
    assert.ok(report.deleted.links.some((l) => l.repository === 'gc/a' && l.digest === blob.digest));
    assert.ok(!report.deleted.blobs.some((b) => b.digest === blob.digest));
    assert.equal(await blobStatus(reg.client, 'gc/a', blob.digest), 404);
    const res = await reg.client.fetch(`/v2/gc/b/blobs/${blob.digest}`);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), blob.data);
  });

  it('children of a tagged index live; untagging the index collects index, children and blobs', async () => {
    const children = [makeImage(), makeImage()];
    const index = await pushIndex(reg.client, 'gc/multi', 'latest', children);
    let report = await runGc(reg.server);
    assert.deepEqual(report.deleted.manifests, []);
    for (const child of children) assert.equal(await manifestStatus(reg.client, 'gc/multi', child.manifest.digest), 200);

    await reg.client.fetch('/v2/gc/multi/manifests/latest', { method: 'DELETE' });
    report = await runGc(reg.server);
    const deleted = report.deleted.manifests.map((m) => m.digest).sort();
    assert.deepEqual(deleted, [index.digest, ...children.map((c) => c.manifest.digest)].sort());
    for (const blob of children.flatMap(imageBlobs)) assert.equal(await bytesStored(reg.server, blob.digest), false);
  });

  it('a referrer (signature) of a live image survives; deleting the image collects the referrer', async () => {
    const image = makeImage();
    await reg.client.pushImage('gc/signed', 'v1', image);
    const signature = makeImage({
      layers: 1,
      artifactType: 'application/vnd.dev.cosign.simplesigning.v1+json',
      subject: { digest: image.manifest.digest, size: image.manifest.size, mediaType: image.mediaType },
    });
    await reg.client.pushImage('gc/signed', signature.manifest.digest, signature);
    let report = await runGc(reg.server);
    assert.deepEqual(report.deleted.manifests, []);
    assert.equal(await manifestStatus(reg.client, 'gc/signed', signature.manifest.digest), 200);

    await reg.client.fetch(`/v2/gc/signed/manifests/${image.manifest.digest}`, { method: 'DELETE' });
    report = await runGc(reg.server);
    assert.deepEqual(
      report.deleted.manifests.map((m) => m.digest),
      [signature.manifest.digest],
    );
    assert.equal(await bytesStored(reg.server, signature.layers[0]!.digest), false);
  });

  it('an untagged manifest pushed by digest is garbage once the grace period is over', async () => {
    const image = makeImage();
    await reg.client.pushImage('gc/bydigest', image.manifest.digest, image);
    const report = await runGc(reg.server);
    assert.ok(report.deleted.manifests.some((m) => m.digest === image.manifest.digest));
  });

  it('a blob uploaded but never referenced is collected', async () => {
    const blob = makeBlob(512);
    assert.equal((await reg.client.pushBlob('gc/loose', blob)).status, 201);
    const report = await runGc(reg.server);
    assert.ok(report.deleted.blobs.some((b) => b.digest === blob.digest));
    assert.equal(await bytesStored(reg.server, blob.digest), false);
  });

  it('a run with nothing queued reviews nothing and deletes nothing', async () => {
    await runGc(reg.server);
    const report = await runGc(reg.server);
    assert.equal(report.counts.reviewed, 0);
    assert.equal(report.counts.bytesFreed, 0);
  });
});

describe('gc: grace period and policy', () => {
  const reg = useServer({ gc: { enabled: false, graceperiod: '1h', untagged: 'keep' } });

  it('fresh uploads, mounts and deleted images wait in the queue until the grace period is over', async () => {
    const blob = makeBlob(100);
    await reg.client.pushBlob('grace/src', blob);
    const mount = await reg.client.fetch(`/v2/grace/dst/blobs/uploads/?mount=${blob.digest}&from=grace/src`, { method: 'POST' });
    assert.equal(mount.status, 201);
    const image = makeImage();
    await reg.client.pushImage('grace/img', 'v1', image);
    await reg.client.fetch('/v2/grace/img/manifests/v1', { method: 'DELETE' });
    const report = await runGc(reg.server);
    assert.equal(report.counts.reviewed, 0);
    assert.equal(report.counts.manifests + report.counts.links + report.counts.blobs, 0);
    assert.equal(await blobStatus(reg.client, 'grace/dst', blob.digest), 200);
    assert.equal(await manifestStatus(reg.client, 'grace/img', image.manifest.digest), 200);
    assert.equal(await bytesStored(reg.server, blob.digest), true);
  });

  it('candidates inside the grace period are reported as waiting, with when they become collectable (dry run and real run alike)', async () => {
    const { server, client } = await startGcServer({ graceperiod: '1h' });
    try {
      const before = Date.now();
      const image = makeImage({ layers: 2 });
      await client.pushImage('grace/waiting', 'v1', image);
      assert.equal((await client.fetch('/v2/grace/waiting/manifests/v1', { method: 'DELETE' })).status, 202);
      const after = Date.now();
      const dry = await runGc(server, true);
      const real = await runGc(server);
      assert.equal(real.counts.reviewed, 0, 'nothing is due yet');
      // The manifest and a link per blob (config + 2 layers) wait in the queue.
      assert.equal(real.waiting?.candidates, 4);
      const first = Date.parse(real.waiting!.firstCollectableAt!);
      const last = Date.parse(real.waiting!.lastCollectableAt!);
      assert.ok(
        first >= before + 3_600_000 && last <= after + 3_600_000 && first <= last,
        `${real.waiting!.firstCollectableAt} … ${real.waiting!.lastCollectableAt}`,
      );
      assert.deepEqual(dry.waiting, real.waiting, 'a dry run reports the same');
    } finally {
      await server.destroy();
    }
  });

  it('a run with an empty queue reports nothing waiting', async () => {
    const { server } = await startGcServer({ graceperiod: '1h' });
    try {
      assert.deepEqual((await runGc(server)).waiting, { candidates: 0, firstCollectableAt: null, lastCollectableAt: null });
    } finally {
      await server.destroy();
    }
  });

  it('a layer re-uploaded within the grace period outlives the image that is collected', async () => {
    const { server: short, client: c } = await startGcServer({ graceperiod: '1s' });
    try {
      const image = makeImage({ layers: 1 });
      await c.pushImage('grace/reup', 'v1', image);
      await sleep(1100);
      await c.fetch('/v2/grace/reup/manifests/v1', { method: 'DELETE' });
      await sleep(1100);
      assert.equal((await c.pushBlob('grace/reup', image.layers[0]!)).status, 201);
      const report = await runGc(short);
      assert.deepEqual(
        report.deleted.manifests.map((m) => m.digest),
        [image.manifest.digest],
      );
      assert.deepEqual(
        report.deleted.blobs.map((b) => b.digest),
        [image.config.digest],
      );
      assert.equal(report.counts.postponed, 1);
      assert.equal(await blobStatus(c, 'grace/reup', image.layers[0]!.digest), 200);
      assert.equal(await bytesStored(short, image.layers[0]!.digest), true);
    } finally {
      await short.destroy();
    }
  });

  it('with untagged: keep, an untagged image is kept but a referrer whose subject is gone is not', async () => {
    const { server: keepServer, client: keep } = await startGcServer({ untagged: 'keep' });
    try {
      const image = makeImage();
      await keep.pushImage('keep/app', 'v1', image);
      await keep.fetch('/v2/keep/app/manifests/v1', { method: 'DELETE' });
      const subject = makeImage();
      await keep.pushImage('keep/app', 'v2', subject);
      const sbom = makeImage({
        layers: 1,
        artifactType: 'application/spdx+json',
        subject: { digest: subject.manifest.digest, size: subject.manifest.size, mediaType: subject.mediaType },
      });
      await keep.pushImage('keep/app', sbom.manifest.digest, sbom);
      await keep.fetch(`/v2/keep/app/manifests/${subject.manifest.digest}`, { method: 'DELETE' });
      const report = await runGc(keepServer);
      assert.deepEqual(
        report.deleted.manifests.map((m) => m.digest),
        [sbom.manifest.digest],
      );
      assert.equal(await manifestStatus(keep, 'keep/app', image.manifest.digest), 200);
    } finally {
      await keepServer.destroy();
    }
  });
});
