import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { makeBlob, type Blob } from '../helpers/registry-client.js';
import { useServer } from '../helpers/use-server.js';
import { bytesOf, expectError } from './support.js';

describe('blobs: GET and HEAD /v2/<name>/blobs/<digest>', () => {
  let blob: Blob;
  const repo = 'blobs/pull';
  const path = () => `/v2/${repo}/blobs/${blob.digest}`;

  const reg = useServer();
  before(async () => {
    blob = makeBlob(1000);
    assert.equal((await reg.client.pushBlob(repo, blob)).status, 201);
  });

  it('GET answers 200 with the exact bytes, Docker-Content-Digest, Content-Length, Accept-Ranges and ETag = digest', async () => {
    const res = await reg.client.fetch(path());
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), blob.digest);
    assert.equal(res.headers.get('content-length'), '1000');
    assert.equal(res.headers.get('accept-ranges'), 'bytes');
    assert.equal(res.headers.get('etag'), `"${blob.digest}"`);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
    assert.deepEqual(await bytesOf(res), blob.data);
  });

  it('HEAD answers 200 with the same headers and no body', async () => {
    const res = await reg.client.fetch(path(), { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), blob.digest);
    assert.equal(res.headers.get('content-length'), '1000');
    assert.equal(res.headers.get('etag'), `"${blob.digest}"`);
    assert.equal((await bytesOf(res)).length, 0);
  });

  it('If-None-Match with the ETag answers 304', async () => {
    const res = await reg.client.fetch(path(), { headers: { 'if-none-match': `"${blob.digest}"` } });
    assert.equal(res.status, 304);
    assert.equal(res.headers.get('etag'), `"${blob.digest}"`);
  });

  it('Range bytes=a-b answers 206 with Content-Range and just those bytes', async () => {
    const res = await reg.client.fetch(path(), { headers: { range: 'bytes=10-19' } });
    assert.equal(res.status, 206);
    assert.equal(res.headers.get('content-range'), 'bytes 10-19/1000');
    assert.equal(res.headers.get('content-length'), '10');
    assert.deepEqual(await bytesOf(res), blob.data.subarray(10, 20));
  });

  it('open range bytes=n- answers 206 from n to the end', async () => {
    const res = await reg.client.fetch(path(), { headers: { range: 'bytes=990-' } });
    assert.equal(res.status, 206);
    assert.equal(res.headers.get('content-range'), 'bytes 990-999/1000');
    assert.deepEqual(await bytesOf(res), blob.data.subarray(990));
  });

  it('suffix range bytes=-n answers 206 with the last n bytes', async () => {
    const res = await reg.client.fetch(path(), { headers: { range: 'bytes=-7' } });
    assert.equal(res.status, 206);
    assert.equal(res.headers.get('content-range'), 'bytes 993-999/1000');
    assert.deepEqual(await bytesOf(res), blob.data.subarray(993));
  });

  it('a range ending past the blob is clipped to its last byte', async () => {
    const res = await reg.client.fetch(path(), { headers: { range: 'bytes=995-5000' } });
    assert.equal(res.status, 206);
    assert.equal(res.headers.get('content-range'), 'bytes 995-999/1000');
    assert.deepEqual(await bytesOf(res), blob.data.subarray(995));
  });

  it('HEAD with a range answers 206 with Content-Range and no body', async () => {
    const res = await reg.client.fetch(path(), { method: 'HEAD', headers: { range: 'bytes=0-99' } });
    assert.equal(res.status, 206);
    assert.equal(res.headers.get('content-range'), 'bytes 0-99/1000');
    assert.equal(res.headers.get('content-length'), '100');
  });

  it('a range starting past the end answers 416 RANGE_INVALID with Content-Range: bytes */size', async () => {
    const res = await reg.client.fetch(path(), { headers: { range: 'bytes=1000-1001' } });
    assert.equal(res.headers.get('content-range'), 'bytes */1000');
    await expectError(res, 416, 'RANGE_INVALID');
  });

  it('a reversed range (end before start) answers 416', async () => {
    const res = await reg.client.fetch(path(), { headers: { range: 'bytes=20-10' } });
    assert.equal(res.headers.get('content-range'), 'bytes */1000');
    await expectError(res, 416, 'RANGE_INVALID');
  });

  it('a Range header in another unit is ignored: 200 with the whole blob', async () => {
    const res = await reg.client.fetch(path(), { headers: { range: 'items=0-1' } });
    assert.equal(res.status, 200);
    assert.deepEqual(await bytesOf(res), blob.data);
  });

  it('an unknown blob answers 404 BLOB_UNKNOWN (GET) and 404 without body (HEAD)', async () => {
    const other = makeBlob(10);
    await expectError(await reg.client.fetch(`/v2/${repo}/blobs/${other.digest}`), 404, 'BLOB_UNKNOWN');
    const head = await reg.client.fetch(`/v2/${repo}/blobs/${other.digest}`, { method: 'HEAD' });
    assert.equal(head.status, 404);
    assert.equal((await bytesOf(head)).length, 0);
  });

  it('a blob pushed to one repository is unknown in another that never linked it', async () => {
    await expectError(await reg.client.fetch(`/v2/blobs/elsewhere/blobs/${blob.digest}`), 404, 'BLOB_UNKNOWN');
  });

  it('a zero-byte blob is served with Content-Length 0', async () => {
    const empty = makeBlob(0);
    assert.equal((await reg.client.pushBlob(repo, empty)).status, 201);
    const res = await reg.client.fetch(`/v2/${repo}/blobs/${empty.digest}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), '0');
    assert.equal((await bytesOf(res)).length, 0);
  });
});

describe('blobs: DELETE /v2/<name>/blobs/<digest>', () => {
  const reg = useServer();

  it('answers 202, then the blob is 404 in that repository but still served by another that links it', async () => {
    const blob = makeBlob(300);
    assert.equal((await reg.client.pushBlob('del/one', blob)).status, 201);
    assert.equal((await reg.client.pushBlob('del/two', blob)).status, 201);
    const res = await reg.client.fetch(`/v2/del/one/blobs/${blob.digest}`, { method: 'DELETE' });
    assert.equal(res.status, 202);
    await expectError(await reg.client.fetch(`/v2/del/one/blobs/${blob.digest}`), 404, 'BLOB_UNKNOWN');
    const other = await reg.client.fetch(`/v2/del/two/blobs/${blob.digest}`);
    assert.equal(other.status, 200);
    assert.deepEqual(await bytesOf(other), blob.data);
  });

  it('deleting a blob the repository does not link answers 404 BLOB_UNKNOWN', async () => {
    const blob = makeBlob(10);
    await expectError(await reg.client.fetch(`/v2/del/one/blobs/${blob.digest}`, { method: 'DELETE' }), 404, 'BLOB_UNKNOWN');
  });

  it('deleting with an invalid digest answers 400 DIGEST_INVALID', async () => {
    await expectError(await reg.client.fetch('/v2/del/one/blobs/sha256:abc', { method: 'DELETE' }), 400, 'DIGEST_INVALID');
  });
});

describe('blobs: DELETE with storage.delete.enabled=false', () => {
  const reg = useServer({ storage: { delete: { enabled: false } } });

  it('answers 405 UNSUPPORTED and keeps the blob', async () => {
    const blob = makeBlob(50);
    assert.equal((await reg.client.pushBlob('nodel/app', blob)).status, 201);
    await expectError(await reg.client.fetch(`/v2/nodel/app/blobs/${blob.digest}`, { method: 'DELETE' }), 405, 'UNSUPPORTED');
    assert.equal((await reg.client.fetch(`/v2/nodel/app/blobs/${blob.digest}`, { method: 'HEAD' })).status, 200);
  });
});
