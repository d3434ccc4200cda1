import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { deny } from '../../src/core/policies.js';
import { createS3Client } from '../../src/storage/s3.js';
import { RegistryClient, makeBlob, makeImage, type Blob } from '../helpers/registry-client.js';
import { localS3Settings, startLocalS3, type LocalS3 } from '../helpers/s3.js';
import { startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { useServer } from '../helpers/use-server.js';
import { assertBytes } from './contract.js';

/** The whole registry with blobs in S3 (s3rver), whatever BERTH_TEST_STORAGE says. */

const MiB = 1024 * 1024;
let s3: LocalS3;
before(async () => {
  s3 = await startLocalS3();
});
after(async () => s3.close());

async function keysUnder(prefix: string): Promise<string[]> {
  const client = createS3Client(localS3Settings(s3, ''));
  try {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
    return (listed.Contents ?? []).map((o) => o.Key!);
  } finally {
    client.destroy();
  }
}

async function pullBlob(client: RegistryClient, repo: string, blob: Blob, range?: string): Promise<Response> {
  return client.fetch(`/v2/${repo}/blobs/${blob.digest}`, range ? { headers: { range } } : {});
}

describe('registry on S3: push and pull over HTTP', () => {
  const reg = useServer(() => ({ storage: { s3: localS3Settings(s3, 'in-process') } }));

  it('pushes layers chunked and monolithically, then pulls every byte back, ranges included', async () => {
    const image = makeImage({ layers: 1, layerSize: 64 * 1024 });
    const big = makeBlob(12 * MiB + 5);
    const chunked = await reg.client.pushBlobChunked('s3/app', big, 3 * MiB);
    assert.equal(chunked.status, 201, await chunked.clone().text());
    const tiny = await reg.client.pushBlobChunked('s3/app', makeBlob(10), 4);
    assert.equal(tiny.status, 201);
    await reg.client.pushImage('s3/app', 'v1', image);

    const manifest = await reg.client.fetch('/v2/s3/app/manifests/v1');
    assert.equal(manifest.status, 200);
    assertBytes(Buffer.from(await manifest.arrayBuffer()), image.manifest.data, 'manifest');
    for (const blob of [big, image.config, ...image.layers]) {
      const res = await pullBlob(reg.client, 's3/app', blob);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('docker-content-digest'), blob.digest);
      assertBytes(Buffer.from(await res.arrayBuffer()), blob.data, blob.digest);
    }
    for (const [start, end] of [
      [0, 0],
      [5 * MiB - 1, 5 * MiB + 1],
      [big.size - 10, big.size - 1],
    ] as const) {
      const res = await pullBlob(reg.client, 's3/app', big, `bytes=${start}-${end}`);
      assert.equal(res.status, 206);
      assertBytes(Buffer.from(await res.arrayBuffer()), big.data.subarray(start, end + 1), `range ${start}-${end}`);
    }
  });

  it('the bytes live in the bucket under rootdirectory, and finished uploads leave no staging behind', async () => {
    const blob = makeBlob(2 * MiB);
    assert.equal((await reg.client.pushBlob('s3/layout', blob)).status, 201);
    const hex = blob.digest.slice('sha256:'.length);
    assert.deepEqual(await keysUnder(`in-process/blobs/sha256/${hex.slice(0, 2)}/${hex}`), [
      `in-process/blobs/sha256/${hex.slice(0, 2)}/${hex}`,
    ]);
    assert.deepEqual(await keysUnder('in-process/uploads/'), []);
  });

  it('a commit whose record fails (where a crash would stop it) leaves the session completable: 204 with its Range, then the PUT succeeds', async () => {
    // A DeleteObjects of the segments sent before the record would still run at S3 after a
    // crash: the session would answer 204 and then fail for want of its bytes (issue 20).
    let failNext = true;
    reg.server.composition.policies.register({
      name: 'crash-before-record',
      hooks: {
        'blob.commit': ({ phase }) => {
          if (phase === 'commit' && failNext) {
            failNext = false;
            throw deny('crash-before-record', 'UNAVAILABLE', 'the record of this commit fails once');
          }
        },
      },
    });
    const blob = makeBlob(6 * MiB + 7);
    const started = await reg.client.fetch('/v2/s3/record/blobs/uploads/', { method: 'POST' });
    assert.equal(started.status, 202);
    const location = started.headers.get('location')!;
    const id = location.split('/').pop()!.split('?')[0]!;
    const patched = await reg.client.fetch(location, {
      method: 'PATCH',
      body: new Uint8Array(blob.data),
      headers: { 'content-range': `0-${blob.size - 1}` },
    });
    assert.equal(patched.status, 202);
    const sep = location.includes('?') ? '&' : '?';
    const failed = await reg.client.fetch(`${location}${sep}digest=${blob.digest}`, { method: 'PUT' });
    assert.equal(failed.status, 503, await failed.text());
    const status = await reg.client.fetch(location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), `0-${blob.size - 1}`);
    assert.ok((await keysUnder(`in-process/uploads/${id}/`)).length > 0, 'the staged segments are still there');
    const put = await reg.client.fetch(`${location}${sep}digest=${blob.digest}`, { method: 'PUT' });
    assert.equal(put.status, 201, await put.text());
    assertBytes(Buffer.from(await (await pullBlob(reg.client, 's3/record', blob)).arrayBuffer()), blob.data, blob.digest);
    assert.deepEqual(await keysUnder(`in-process/uploads/${id}/`), [], 'freed once the blob is recorded');
  });
});

describe('registry on S3: replicas share uploads', () => {
  const dataDir = tempDir();
  const env = {
    BERTH_DATA_DIR: dataDir,
    BERTH_STORAGE_S3_BUCKET: '',
    BERTH_STORAGE_S3_REGIONENDPOINT: '',
    BERTH_STORAGE_S3_FORCEPATHSTYLE: 'true',
    BERTH_STORAGE_S3_ACCESSKEY: '',
    BERTH_STORAGE_S3_SECRETKEY: '',
    BERTH_STORAGE_S3_ROOTDIRECTORY: 'replicas',
    BERTH_STORAGE_S3_CHUNKSIZE: String(5 * MiB),
  };
  const replicas: BerthProcess[] = [];
  before(async () => {
    Object.assign(env, {
      BERTH_STORAGE_S3_BUCKET: s3.bucket,
      BERTH_STORAGE_S3_REGIONENDPOINT: s3.endpoint,
      BERTH_STORAGE_S3_ACCESSKEY: s3.accessKeyId,
      BERTH_STORAGE_S3_SECRETKEY: s3.secretAccessKey,
    });
    // Two `berth serve` processes over one metadata database and one bucket.
    replicas.push(await startBerthProcess(env));
    replicas.push(await startBerthProcess(env));
  });
  after(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('an upload started on one replica continues on the other and completes on the first', async () => {
    const [a, b] = replicas.map((r) => new RegistryClient(r.url)) as [RegistryClient, RegistryClient];
    const blob = makeBlob(11 * MiB + 3);
    const started = await a.fetch('/v2/s3/replicated/blobs/uploads/', { method: 'POST' });
    assert.equal(started.status, 202);
    let location = started.headers.get('location')!;
    const cuts = [0, 3 * MiB, 8 * MiB, blob.size];
    for (let i = 0; i < cuts.length - 1; i++) {
      const [from, to] = [cuts[i]!, cuts[i + 1]!];
      const replica = i % 2 === 0 ? a : b;
      const res = await replica.fetch(location, {
        method: 'PATCH',
        body: new Uint8Array(blob.data.subarray(from, to)),
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${from}-${to - 1}` },
      });
      assert.equal(res.status, 202, await res.clone().text());
      assert.equal(res.headers.get('range'), `0-${to - 1}`);
      location = res.headers.get('location')!;
    }
    const done = await a.fetch(`${location}${location.includes('?') ? '&' : '?'}digest=${blob.digest}`, { method: 'PUT' });
    assert.equal(done.status, 201, await done.clone().text());
    for (const replica of [a, b]) {
      const res = await pullBlob(replica, 's3/replicated', blob);
      assert.equal(res.status, 200);
      assertBytes(Buffer.from(await res.arrayBuffer()), blob.data, 'pulled blob');
    }
    const hex = blob.digest.slice('sha256:'.length);
    assert.equal((await keysUnder(`replicas/blobs/sha256/${hex.slice(0, 2)}/${hex}`)).length, 1);
    assert.deepEqual(await keysUnder('replicas/uploads/'), []);
  });
});

describe('registry on S3 with storage.s3.redirect', () => {
  const reg = useServer(() => ({ storage: { s3: { ...localS3Settings(s3, 'redirect'), redirect: true } } }));

  it('answers blob GET with 307 to a presigned URL that serves the exact bytes; HEAD and manifests stay local', async () => {
    const image = makeImage({ layers: 1, layerSize: 32 * 1024 });
    await reg.client.pushImage('s3/redirect', 'v1', image);
    const layer = image.layers[0]!;

    const res = await reg.client.fetch(`/v2/s3/redirect/blobs/${layer.digest}`, { redirect: 'manual' });
    assert.equal(res.status, 307);
    const location = res.headers.get('location')!;
    assert.match(location, /X-Amz-Signature=/);
    const direct = await fetch(location);
    assert.equal(direct.status, 200);
    assertBytes(Buffer.from(await direct.arrayBuffer()), layer.data, 'presigned blob');

    const head = await reg.client.fetch(`/v2/s3/redirect/blobs/${layer.digest}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(layer.size));
    // A manifest fetched through the blobs endpoint lives in the metadata DB: never redirected.
    const viaBlobs = await reg.client.fetch(`/v2/s3/redirect/blobs/${image.manifest.digest}`, { redirect: 'manual' });
    assert.equal(viaBlobs.status, 200);
    // An unknown blob is still a 404, not a redirect to nothing.
    const unknown = await reg.client.fetch(`/v2/s3/redirect/blobs/${makeBlob(8).digest}`, { redirect: 'manual' });
    assert.equal(unknown.status, 404);
  });
});

describe('registry on S3: the storage going away mid-read is the storage failing, not the client', () => {
  let relay: TcpProxy;
  before(async () => {
    relay = await TcpProxy.start({ host: '127.0.0.1', port: Number(new URL(s3.endpoint).port) });
  });
  after(() => relay.close());
  const reg = useServer(() => ({ storage: { s3: { ...localS3Settings(s3, 'cut'), regionendpoint: `http://127.0.0.1:${relay.port}` } } }));

  it('a staged segment read back while S3 resets the connection: 503 UNAVAILABLE, the session intact, the retry stores every byte', async () => {
    // The first half (1 MiB) is staged as one segment under S3's 5 MiB part minimum, so the
    // PUT of the rest reads it back to rewrite it with the new bytes: that read is cut.
    const blob = makeBlob(MiB + 100 * 1024);
    const start = await reg.client.fetch('/v2/s3/cut/blobs/uploads/', { method: 'POST' });
    assert.equal(start.status, 202);
    const location = start.headers.get('location')!;
    const patch = await reg.client.fetch(location, {
      method: 'PATCH',
      body: new Uint8Array(blob.data.subarray(0, MiB)),
      headers: { 'content-range': `0-${MiB - 1}`, 'content-type': 'application/octet-stream' },
    });
    assert.equal(patch.status, 202, await patch.text());
    const put = (body: Buffer) =>
      reg.client.fetch(`${location}${location.includes('?') ? '&' : '?'}digest=${blob.digest}`, {
        method: 'PUT',
        body: new Uint8Array(body),
      });

    relay.resetNextReply('GET ', 64 * 1024);
    const cut = await put(blob.data.subarray(MiB));
    const text = await cut.text();
    assert.equal(relay.repliesCut, 1, 'the segment read was cut');
    assert.equal(cut.status, 503, text);
    assert.equal((JSON.parse(text) as { errors: { code: string }[] }).errors[0]!.code, 'UNAVAILABLE');

    const status = await reg.client.fetch(location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), `0-${MiB - 1}`, 'the staged first half is still there');
    const retry = await put(blob.data.subarray(MiB));
    assert.equal(retry.status, 201, await retry.text());
    const pulled = await reg.client.fetch(`/v2/s3/cut/blobs/${blob.digest}`);
    assertBytes(Buffer.from(await pulled.arrayBuffer()), blob.data, 'the blob');
  });
});
