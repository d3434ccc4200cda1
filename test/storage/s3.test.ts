import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { DeleteObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from '../../src/config/load.js';
import { BlobTooLargeError, domainError } from '../../src/core/errors.js';
import { S3BlobStore, MIN_PART_SIZE, createS3Client, type S3StorageConfig } from '../../src/storage/s3.js';
import { openBlobStore } from '../../src/storage/index.js';
import { localS3Settings, startLocalS3, type LocalS3 } from '../helpers/s3.js';
import { assertBytes, readAll, runBlobStoreContract, sha256 } from './contract.js';

const MiB = 1024 * 1024;
let s3: LocalS3;
before(async () => {
  s3 = await startLocalS3();
});
after(async () => s3.close());

runBlobStoreContract('S3 (s3rver)', async () => {
  const settings = localS3Settings(s3, `contract-${randomUUID()}`);
  return { open: async () => new S3BlobStore(settings), destroy: async () => {} };
});

describe('S3BlobStore specifics', () => {
  let settings: S3StorageConfig;
  let store: S3BlobStore;
  let raw: S3Client;
  before(() => {
    settings = localS3Settings(s3, `/specific-${randomUUID()}/`);
    store = new S3BlobStore(settings);
    raw = createS3Client(settings);
  });
  after(async () => {
    await store.close();
    raw.destroy();
  });

  const root = () => settings.rootdirectory.replace(/^\/|\/$/g, '');
  const keysUnder = async (prefix: string) => {
    const listed = await raw.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${root()}/${prefix}` }));
    return (listed.Contents ?? []).map((o) => o.Key!);
  };
  const stage = async (chunks: Buffer[]) => {
    const id = randomUUID();
    let state = await store.createUpload(id);
    let offset = 0;
    for (const chunk of chunks) {
      state = await store.appendUpload(id, state, offset, Readable.from([chunk]));
      offset += chunk.length;
    }
    return { id, state, data: Buffer.concat(chunks) };
  };
  const requestsDuring = async (fn: () => Promise<unknown>) => {
    const first = s3.requests.length;
    await fn();
    return s3.requests.slice(first);
  };

  it('stages segments under <root>/uploads/<id>/ and commits to <root>/blobs/sha256/<xx>/<hex>', async () => {
    const { id, state, data } = await stage([randomBytes(1000)]);
    assert.equal((await keysUnder(`uploads/${id}/`)).length, 1);
    await store.commitUpload(id, state, sha256(data), data.length);
    const hex = sha256(data).slice('sha256:'.length);
    const head = await raw.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: `${root()}/blobs/sha256/${hex.slice(0, 2)}/${hex}` }));
    assert.equal(head.ContentLength, 1000);
    // The segment stays until core has recorded the blob and frees the staging area.
    assert.equal((await keysUnder(`uploads/${id}/`)).length, 1);
    await store.abortUpload(id, state);
    assert.deepEqual(await keysUnder(`uploads/${id}/`), []);
  });

  it('a small blob costs one PUT and one server-side copy, never a multipart upload', async () => {
    const data = randomBytes(64 * 1024);
    const id = randomUUID();
    const state = await store.createUpload(id);
    const appendRequests = await requestsDuring(async () => {
      const staged = await store.appendUpload(id, state, 0, Readable.from([data]));
      const commitRequests = await requestsDuring(() => store.commitUpload(id, staged, sha256(data), data.length));
      const copies = commitRequests.filter((r) => r.method === 'PUT' && r.copySource);
      assert.equal(copies.length, 1, 'one CopyObject');
      assert.equal(commitRequests.filter((r) => r.method === 'POST' && /[?&]uploads/.test(r.url)).length, 0, 'no CreateMultipartUpload');
      assert.equal(commitRequests.filter((r) => r.method === 'PUT' && !r.copySource).length, 0, 'no bytes uploaded at commit');
    });
    assert.equal(appendRequests.filter((r) => r.method === 'PUT' && !r.copySource).length, 1, 'one PutObject while staging');
  });

  it('every segment but the last is at least 5 MiB, however small the appended chunks', async () => {
    const chunks = [...Array.from({ length: 7 }, () => randomBytes(MiB)), randomBytes(12 * MiB), randomBytes(10)];
    const { id, state, data } = await stage(chunks);
    const segments = (state as { segments: { size: number }[] }).segments;
    assert.ok(segments.length >= 3);
    for (const segment of segments.slice(0, -1)) assert.ok(segment.size >= MIN_PART_SIZE, `segment of ${segment.size} bytes`);
    assert.ok(segments.every((s) => s.size <= settings.chunksize));
    const requests = await requestsDuring(() => store.commitUpload(id, state, sha256(data), data.length));
    assert.equal(requests.filter((r) => r.method === 'PUT' && r.copySource && /partNumber=/.test(r.url)).length, segments.length);
    assertBytes(await readAll(await store.openRange(sha256(data))), data);
  });

  it('abort, after a commit or instead of one, deletes segments no state records (left by failed or superseded appends)', async () => {
    const { id, state, data } = await stage([randomBytes(MiB), randomBytes(MiB)]);
    // The first 1 MiB segment was merged into a new one; a failed append left another orphan.
    await assert.rejects(store.appendUpload(id, state, data.length, Readable.from(failing(randomBytes(6 * MiB)))));
    assert.ok((await keysUnder(`uploads/${id}/`)).length >= 3);
    await store.commitUpload(id, state, sha256(data), data.length);
    await store.abortUpload(id, state);
    assert.deepEqual(await keysUnder(`uploads/${id}/`), []);

    const aborted = await stage([randomBytes(MiB), randomBytes(MiB)]);
    await store.abortUpload(aborted.id, aborted.state);
    assert.deepEqual(await keysUnder(`uploads/${aborted.id}/`), []);
  });

  it('a commit whose part copy fails rejects and leaves no blob visible', async () => {
    const { id, state, data } = await stage([randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(10)]);
    const segments = (state as { segments: { name: string; size: number }[] }).segments;
    assert.equal(segments.length, 3);
    // Lose the middle segment behind the adapter's back: its UploadPartCopy fails with NoSuchKey.
    await raw.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: `${root()}/uploads/${id}/${segments[1]!.name}` }));
    await assert.rejects(store.commitUpload(id, state, sha256(data), data.length));
    assert.equal(await store.stat(sha256(data)), null);
  });

  it('an upload needing more than 10,000 segments (S3 parts) is refused with SIZE_INVALID 413', async () => {
    const id = randomUUID();
    // Only the state matters here: 10,000 full segments recorded, none read back.
    const full = {
      segments: Array.from({ length: 10_000 }, (_, i) => ({ name: `${String(i).padStart(5, '0')}-000000000000`, size: MIN_PART_SIZE })),
    };
    const offset = 10_000 * MIN_PART_SIZE;
    // The adapter says what happened (a domain error); the error table turns it into the answer.
    await assert.rejects(store.appendUpload(id, full, offset, Readable.from([Buffer.from('x')])), (err: Error) => {
      assert.ok(err instanceof BlobTooLargeError, String(err));
      const answer = domainError(err);
      assert.equal(answer?.code, 'SIZE_INVALID');
      assert.equal(answer?.status, 413);
      return true;
    });
  });

  it('listUploads and listBlobs report what is stored (for fsck)', async () => {
    const { id, state, data } = await stage([randomBytes(6 * MiB), randomBytes(10)]);
    const uploads = [];
    for await (const upload of store.listUploads()) uploads.push(upload);
    // At least the staged bytes: the 1 MiB tail superseded by the second append is still stored.
    assert.ok(uploads.find((u) => u.id === id)!.size >= data.length);
    await store.commitUpload(id, state, sha256(data), data.length);
    const blobs = [];
    for await (const blob of store.listBlobs()) blobs.push(blob);
    assert.equal(blobs.find((b) => b.digest === sha256(data))?.size, data.length);

    // Leftovers with a blob-like key are listed under a name delete() accepts; foreign keys are not Berth's.
    for (const key of ['blobs/sha256/ab/abc.partial', 'blobs/README']) {
      await raw.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${root()}/${key}`, Body: 'x' }));
    }
    const names = [];
    for await (const blob of store.listBlobs()) names.push(blob.digest);
    assert.ok(names.includes('sha256:abc.partial'));
    assert.ok(!names.some((n) => n.includes('README')));
    await store.delete('sha256:abc.partial');
    assert.deepEqual(await keysUnder('blobs/sha256/ab/abc.partial'), []);
  });

  it('redirectUrl is null unless redirect is enabled; the presigned URL serves the blob, ranges included', async () => {
    const { id, state, data } = await stage([randomBytes(3000)]);
    await store.commitUpload(id, state, sha256(data), data.length);
    assert.equal(await store.redirectUrl(sha256(data)), null);
    const redirecting = new S3BlobStore({ ...settings, redirect: true });
    try {
      const url = await redirecting.redirectUrl(sha256(data));
      assert.ok(url);
      assert.match(url, /X-Amz-Signature=/);
      const whole = await fetch(url);
      assert.equal(whole.status, 200);
      assertBytes(Buffer.from(await whole.arrayBuffer()), data);
      const part = await fetch(url, { headers: { range: 'bytes=100-199' } });
      assert.equal(part.status, 206);
      assertBytes(Buffer.from(await part.arrayBuffer()), data.subarray(100, 200));
      const tampered = await fetch(url.replace(/X-Amz-Signature=[0-9a-f]{4}/, 'X-Amz-Signature=0000'));
      assert.equal(tampered.status, 403);
    } finally {
      await redirecting.close();
    }
  });

  it('check() fails for a missing bucket or wrong credentials (requests are really signed)', async () => {
    const missing = new S3BlobStore({ ...settings, bucket: 'no-such-bucket' });
    const forged = new S3BlobStore({ ...settings, secretkey: 'not-the-secret' });
    try {
      await assert.rejects(missing.check());
      const forbidden = (err: { $metadata?: { httpStatusCode?: number } }) => err.$metadata?.httpStatusCode === 403;
      await assert.rejects(forged.check(), forbidden);
      await assert.rejects(forged.stat(sha256(Buffer.from('x'))), forbidden);
    } finally {
      await Promise.all([missing.close(), forged.close()]);
    }
  });
});

describe('storage.s3 configuration', () => {
  const load = (env: NodeJS.ProcessEnv) => loadConfig({ file: '/dev/null', env });

  it('BERTH_STORAGE_S3_* variables configure the S3 adapter, with Distribution-like defaults', async () => {
    const { config } = load({
      BERTH_STORAGE_S3_BUCKET: s3.bucket,
      BERTH_STORAGE_S3_REGIONENDPOINT: s3.endpoint,
      BERTH_STORAGE_S3_FORCEPATHSTYLE: 'true',
      BERTH_STORAGE_S3_ACCESSKEY: s3.accessKeyId,
      BERTH_STORAGE_S3_SECRETKEY: s3.secretAccessKey,
      BERTH_STORAGE_S3_ROOTDIRECTORY: '/from-env',
    });
    assert.deepEqual(config.storage.s3, { ...localS3Settings(s3, '/from-env'), chunksize: 10 * MiB });
    assert.equal(config.storage.filesystem, undefined, 'no filesystem root is invented next to S3');
    const store = await openBlobStore(config);
    try {
      assert.ok(store instanceof S3BlobStore);
      await store.check();
    } finally {
      await store.close();
    }
  });

  for (const [env, message] of [
    [{ BERTH_STORAGE_S3_BUCKET: 'b', BERTH_STORAGE_S3_ACCESSKEY: 'k' }, /accesskey and secretkey must be given together/],
    [{ BERTH_STORAGE_S3_BUCKET: 'b', BERTH_STORAGE_S3_CHUNKSIZE: String(MiB) }, /storage\.s3\.chunksize/],
    [{ BERTH_STORAGE_S3_BUCKET: 'b', BERTH_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/tmp/x' }, /filesystem or s3, not both/],
    [{ BERTH_STORAGE_S3_REGION: 'eu-west-1' }, /storage\.s3\.bucket/],
  ] as const) {
    it(`rejects ${JSON.stringify(env)}`, () => {
      assert.throws(() => load(env), message);
    });
  }
});

async function* failing(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
  throw Object.assign(new Error('client went away'), { code: 'ECONNRESET' });
}
