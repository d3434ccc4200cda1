import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OciClient } from '../../src/client/index.js';
import { CopyEngine, MemoryCheckpoints, type CopyStats } from '../../src/replication/engine.js';
import { parseManifest, rewriteRepository } from '../../src/replication/graph.js';
import { makeImage, type Image } from '../helpers/registry-client.js';
import { startDistribution, type DistributionServer } from '../helpers/distribution.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { CuttingProxy, readAll } from '../client/support.js';
import {
  bigImage,
  FAST_RETRY,
  pushImage,
  pushIndex,
  pushReferrer,
  RecordingFront,
  respawnDistribution,
  skopeoRaw,
  type SeededIndex,
} from './support.js';

/**
 * The copy engine between real registries: a Berth (token-less, anonymous) and CNCF
 * Distribution 2.8 with htpasswd auth, in both directions, over real sockets.
 */

const SIG = 'application/vnd.dev.cosign.artifact.sig.v1+json';
const SBOM = 'application/spdx+json';
const MiB = 1024 * 1024;

describe('replication copy engine', () => {
  let berth: TestServer;
  let second: TestServer;
  let distribution: DistributionServer;
  let front: RecordingFront;
  let src: OciClient;
  let dst: OciClient;
  let dstRecorded: OciClient;
  const images: Image[] = [];
  let index: SeededIndex;
  let signature: Image;
  let sbom: Image;

  before(async () => {
    berth = await startTestServer();
    second = await startTestServer();
    distribution = await startDistribution({ user: { username: 'repl', password: 'repl-pass-1' } });
    front = await RecordingFront.start(distribution.url);
    src = new OciClient({ baseUrl: berth.url, retry: FAST_RETRY });
    dst = new OciClient({ baseUrl: distribution.url, credentials: distribution.credentials, retry: FAST_RETRY });
    dstRecorded = new OciClient({ baseUrl: front.url, credentials: distribution.credentials, retry: FAST_RETRY });
    // Three images sharing nothing but a repository, one index, a signature and an SBOM on image 0.
    for (let i = 0; i < 3; i++) {
      const image = makeImage({ layers: 2, layerSize: 50_000 + i });
      images.push(image);
      await pushImage(src, 'prod/team/app', `v${i}`, image);
    }
    index = await pushIndex(src, 'prod/team/multi', 'latest');
    signature = await pushReferrer(src, 'prod/team/app', images[0]!.manifest, SIG);
    sbom = await pushReferrer(src, 'prod/team/app', images[0]!.manifest, SBOM);
  });
  after(async () => {
    await front.close();
    await Promise.all([berth.destroy(), second.destroy(), distribution.stop()]);
  });

  it('rewrites destination names (namespace + flattening)', () => {
    assert.equal(rewriteRepository('prod/team/app', {}), 'prod/team/app');
    assert.equal(rewriteRepository('prod/team/app', { namespace: 'dr' }), 'dr/prod/team/app');
    assert.equal(rewriteRepository('prod/team/app', { namespace: 'dr', flatten: 1 }), 'dr/team/app');
    assert.equal(rewriteRepository('prod/team/app', { namespace: 'dr/', flatten: -1 }), 'dr/app');
  });

  it('parses graphs: index children, image blobs, subject, artifact type', () => {
    const g = parseManifest(index.index.data);
    assert.deepEqual(
      g.children.map((c) => c.digest),
      index.children.map((c) => c.manifest.digest),
    );
    assert.equal(g.blobs.length, 0);
    const s = parseManifest(signature.manifest.data);
    assert.equal(s.subject?.digest, images[0]!.manifest.digest);
    assert.equal(s.artifactType, SIG);
    assert.deepEqual(
      s.blobs.map((b) => b.digest),
      [signature.config.digest, signature.layers[0]!.digest],
    );
  });

  it('push Berth → Distribution: whole graphs in order (blobs, children, parent, referrers, tag last)', async () => {
    const engine = new CopyEngine({ baseDelayMs: 5, concurrency: 3 });
    const results = [];
    for (const tag of ['v0', 'v1', 'v2'])
      results.push(
        await engine.copy({ client: src, repository: 'prod/team/app' }, { client: dstRecorded, repository: 'dr/team/app' }, tag),
      );
    results.push(
      await engine.copy({ client: src, repository: 'prod/team/multi' }, { client: dstRecorded, repository: 'dr/team/multi' }, 'latest'),
    );
    for (const r of results) assert.equal(r.status, 'copied', r.reason);
    const total = sum(results.map((r) => r.stats));
    // 3 images × (config + 2 layers) + 2 referrers × 2 + 2 children (5 blobs) = 18 blobs.
    assert.equal(total.blobsCopied + total.blobsMounted, 18);
    assert.equal(total.referrersCopied, 2);
    assert.equal(total.manifestsCopied, 3 + 2 + 2 + 1);

    // The order, as Distribution saw the requests.
    const seen = front.seen.map((r) => `${r.method} ${decodeURIComponent(r.url)}`);
    const at = (pattern: string) => seen.findIndex((line) => line.includes(pattern));
    const manifestPut = (repo: string, ref: string) => at(`PUT /v2/${repo}/manifests/${ref}`);
    const blobDone = (digest: string) =>
      seen.findIndex(
        (line) =>
          (line.startsWith('PUT ') && line.includes(`digest=${digest}`)) || (line.startsWith('POST ') && line.includes(`mount=${digest}`)),
      );
    for (const [i, image] of images.entries()) {
      const put = manifestPut('dr/team/app', image.manifest.digest);
      assert.ok(put > 0, `manifest of v${i} put by digest`);
      for (const blob of [image.config, ...image.layers])
        assert.ok(blobDone(blob.digest) >= 0 && blobDone(blob.digest) < put, `blob ${blob.digest} before its manifest`);
      assert.ok(manifestPut('dr/team/app', `v${i}`) > put, `tag v${i} after the manifest`);
    }
    const indexPut = manifestPut('dr/team/multi', index.index.digest);
    for (const child of index.children)
      assert.ok(manifestPut('dr/team/multi', child.manifest.digest) < indexPut, 'children before the index');
    assert.ok(manifestPut('dr/team/multi', 'latest') > indexPut);
    for (const referrer of [signature, sbom])
      assert.ok(
        manifestPut('dr/team/app', referrer.manifest.digest) > manifestPut('dr/team/app', images[0]!.manifest.digest),
        'referrer after its subject',
      );
    // Distribution 2.8 has no referrers API: the engine keeps the referrers tag for it.
    const fallback = await dst.referrers('dr/team/app', images[0]!.manifest.digest);
    assert.deepEqual(fallback.manifests.map((m) => m.digest).sort(), [signature.manifest.digest, sbom.manifest.digest].sort());

    // Byte-identical, as skopeo sees both registries.
    for (const tag of ['v0', 'v1', 'v2'])
      assert.equal(
        await skopeoRaw(distribution.url, `dr/team/app:${tag}`, distribution.credentials),
        await skopeoRaw(berth.url, `prod/team/app:${tag}`),
      );
    assert.equal(await skopeoRaw(distribution.url, 'dr/team/multi:latest', distribution.credentials), index.index.data.toString());
    for (const layer of images[1]!.layers) assert.ok((await readAll(dst.getBlob('dr/team/app', layer.digest))).equals(layer.data));
  });

  it('a re-run moves no blob bytes and re-points no tag', async () => {
    const before = front.seen.length;
    const engine = new CopyEngine({ baseDelayMs: 5 });
    const results = [];
    for (const tag of ['v0', 'v1', 'v2'])
      results.push(
        await engine.copy({ client: src, repository: 'prod/team/app' }, { client: dstRecorded, repository: 'dr/team/app' }, tag),
      );
    results.push(
      await engine.copy({ client: src, repository: 'prod/team/multi' }, { client: dstRecorded, repository: 'dr/team/multi' }, 'latest'),
    );
    for (const r of results) assert.equal(r.status, 'skipped', r.reason);
    const total = sum(results.map((r) => r.stats));
    assert.equal(total.bytes, 0);
    assert.equal(total.blobsCopied + total.blobsMounted, 0);
    const writes = front.seen
      .slice(before)
      .filter((r) => r.method !== 'GET' && r.method !== 'HEAD')
      .map((r) => `${r.method} ${r.url}`);
    assert.deepEqual(writes, [], 'no write request at all');
  });

  it('pull Distribution → a second Berth: same bytes, referrers through the API', async () => {
    const engine = new CopyEngine({ baseDelayMs: 5 });
    const target = new OciClient({ baseUrl: second.url, retry: FAST_RETRY });
    for (const tag of ['v0', 'v1', 'v2']) {
      const r = await engine.copy({ client: dst, repository: 'dr/team/app' }, { client: target, repository: 'mirror/app' }, tag);
      assert.equal(r.status, 'copied', r.reason);
      assert.equal(await skopeoRaw(second.url, `mirror/app:${tag}`), await skopeoRaw(berth.url, `prod/team/app:${tag}`));
    }
    const refs = await target.referrers('mirror/app', images[0]!.manifest.digest);
    assert.deepEqual(refs.manifests.map((m) => m.digest).sort(), [signature.manifest.digest, sbom.manifest.digest].sort());
    // The same copy into another repository of the same Berth mounts instead of uploading.
    const again = await engine.copy({ client: dst, repository: 'dr/team/app' }, { client: target, repository: 'mirror/app-copy' }, 'v1');
    assert.equal(again.status, 'copied');
    assert.equal(again.stats.bytes, 0);
    assert.equal(again.stats.blobsMounted, 3);
  });

  it('never re-points a destination tag that points elsewhere unless override is on', async () => {
    const engine = new CopyEngine({ baseDelayMs: 5 });
    const other = makeImage({ layers: 1 });
    await pushImage(dst, 'dr/team/app', 'v9', other);
    await pushImage(src, 'prod/team/app', 'v9', images[2]!);
    const refused = await engine.copy({ client: src, repository: 'prod/team/app' }, { client: dst, repository: 'dr/team/app' }, 'v9');
    assert.equal(refused.status, 'failed');
    assert.match(refused.reason!, /points at .* override is off/);
    assert.equal((await dst.headManifest('dr/team/app', 'v9'))?.digest, other.manifest.digest);
    const forced = await new CopyEngine({ override: true }).copy(
      { client: src, repository: 'prod/team/app' },
      { client: dst, repository: 'dr/team/app' },
      'v9',
    );
    assert.equal(forced.status, 'copied', forced.reason);
    assert.equal((await dst.headManifest('dr/team/app', 'v9'))?.digest, images[2]!.manifest.digest);
    assert.equal(forced.stats.bytes, 0, 'blobs already there');
  });

  it('deletion: a tag alone on Berth; on Distribution 2.8 by digest, unless another tag shares the manifest', async () => {
    const engine = new CopyEngine();
    const target = new OciClient({ baseUrl: second.url, retry: FAST_RETRY });
    assert.equal(await engine.deleteTag({ client: target, repository: 'mirror/app' }, 'v1'), true);
    assert.equal(await target.headManifest('mirror/app', 'v1'), null);
    assert.ok(await target.headManifest('mirror/app', images[1]!.manifest.digest), 'Berth deleted the tag only');
    // v9 and v2 point at the same manifest at Distribution, which cannot delete a tag alone.
    await assert.rejects(engine.deleteTag({ client: dst, repository: 'dr/team/app' }, 'v9'), /shares its manifest with tag v2/);
    assert.ok(await dst.headManifest('dr/team/app', 'v2'));
    assert.equal(await engine.deleteTag({ client: dst, repository: 'dr/team/app' }, 'v0'), true);
    assert.equal(await dst.headManifest('dr/team/app', 'v0'), null);
    assert.equal(await engine.deleteTag({ client: dst, repository: 'dr/team/app' }, 'v0'), false, 'already gone');
  });

  it('a bandwidth limit holds over the copy (token bucket, one second of burst)', async () => {
    const image = bigImage(12 * MiB);
    await pushImage(src, 'prod/slow', 'v1', image);
    const started = Date.now();
    const r = await new CopyEngine({ bandwidth: 4 * MiB, chunkSize: 2 * MiB }).copy(
      { client: src, repository: 'prod/slow' },
      { client: dst, repository: 'dr/slow' },
      'v1',
    );
    const seconds = (Date.now() - started) / 1000;
    assert.equal(r.status, 'copied', r.reason);
    // 12 MiB at 4 MiB/s with a 4 MiB burst: at least 2 s.
    assert.ok(seconds >= 1.9, `12 MiB took ${seconds} s at 4 MiB/s`);
  });

  it('a cut source connection mid-blob resumes with Range: every byte is sent once', async () => {
    const image = bigImage(24 * MiB);
    await pushImage(src, 'prod/big', 'cut', image);
    const proxy = await CuttingProxy.start(berth.url);
    try {
      const viaProxy = new OciClient({ baseUrl: proxy.url, retry: FAST_RETRY });
      proxy.cutAfter(10 * MiB);
      const r = await new CopyEngine({ baseDelayMs: 5, chunkSize: 4 * MiB }).copy(
        { client: viaProxy, repository: 'prod/big' },
        { client: dst, repository: 'dr/big' },
        'cut',
      );
      assert.equal(r.status, 'copied', r.reason);
      assert.equal(proxy.cuts, 1);
      assert.equal(r.stats.bytes, image.layers[0]!.size + image.config.size, 'no byte sent twice');
      assert.ok((await readAll(dst.getBlob('dr/big', image.layers[0]!.digest))).equals(image.layers[0]!.data));
    } finally {
      await proxy.close();
    }
  });

  it('kill -9 of the source mid-blob: the next run continues the blob where it stopped', async () => {
    const size = 96 * MiB;
    const image = bigImage(size);
    const source = await startDistribution();
    let restarted: { stop(): Promise<void> } | undefined;
    try {
      const from = new OciClient({ baseUrl: source.url, retry: FAST_RETRY });
      await pushImage(from, 'big/app', 'v1', image);
      const checkpoints = new MemoryCheckpoints();
      const to = new OciClient({ baseUrl: second.url, retry: FAST_RETRY });
      // Kill the source once 40 MiB arrived; slow the copy down (bandwidth limit) so the kill lands mid-blob.
      let killed = false;
      const put = checkpoints.put.bind(checkpoints);
      checkpoints.put = async (key, session) => {
        await put(key, session);
        if (!killed && session.offset >= 40 * MiB) {
          killed = true;
          process.kill(source.pid, 'SIGKILL');
        }
      };
      const first = await new CopyEngine({ checkpoints, chunkSize: 4 * MiB, attempts: 2, baseDelayMs: 5, bandwidth: 64 * MiB }).copy(
        { client: from, repository: 'big/app' },
        { client: to, repository: 'dr/big' },
        'v1',
      );
      assert.equal(first.status, 'failed');
      assert.ok(killed);
      assert.ok(first.stats.bytes >= 40 * MiB && first.stats.bytes < size, `first run sent ${first.stats.bytes}`);
      assert.equal(await to.headManifest('dr/big', 'v1'), null, 'no manifest without its blob');

      restarted = await respawnDistribution(source.dataDir, source.url);
      const second_ = await new CopyEngine({ checkpoints, chunkSize: 4 * MiB, baseDelayMs: 5 }).copy(
        { client: from, repository: 'big/app' },
        { client: to, repository: 'dr/big' },
        'v1',
      );
      assert.equal(second_.status, 'copied', second_.reason);
      const layer = image.layers[0]!;
      assert.ok(second_.stats.resumedBytes >= 40 * MiB, `resumed at byte ${second_.stats.resumedBytes}`);
      assert.equal(first.stats.bytes + second_.stats.bytes, layer.size + image.config.size, 'the blob was not started over');
      console.log(
        `kill -9 of the source: run 1 sent ${first.stats.bytes} B, run 2 resumed at ${second_.stats.resumedBytes} B and sent ${second_.stats.bytes} B of ${layer.size}`,
      );
      const pulled = await to.getManifest('dr/big', 'v1');
      assert.equal(pulled?.digest, image.manifest.digest);
      assert.deepEqual(await to.headBlob('dr/big', layer.digest), { digest: layer.digest, size: layer.size });
    } finally {
      await restarted?.stop();
      await source.stop();
    }
  });
});

function sum(list: CopyStats[]): CopyStats {
  const total = { ...list[0]! };
  for (const s of list.slice(1)) for (const k of Object.keys(total) as (keyof CopyStats)[]) total[k] += s[k];
  return total;
}
