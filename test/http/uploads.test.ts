import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { before, describe, it } from 'node:test';
import { makeBlob, type Blob } from '../helpers/registry-client.js';
import { useServer } from '../helpers/use-server.js';
import { bytesOf, expectError, openUpload, patchChunk, rawRequest, assertErrorBody, streamBody, withDigest } from './support.js';

function sha512Blob(size: number): Blob & { sha512: string } {
  const blob = makeBlob(size);
  return { ...blob, sha512: `sha512:${createHash('sha512').update(blob.data).digest('hex')}` };
}

const UUID = /^[0-9a-f-]{36}$/;

describe('uploads: POST/PATCH/PUT/GET/DELETE /v2/<name>/blobs/uploads/', () => {
  const repo = 'up/app';

  const reg = useServer();

  async function assertPullable(name: string, blob: Blob): Promise<void> {
    const res = await reg.client.fetch(`/v2/${name}/blobs/${blob.digest}`);
    assert.equal(res.status, 200);
    assert.deepEqual(await bytesOf(res), blob.data);
  }

  async function openSessions(): Promise<number> {
    return (await reg.server.stores.metadata.uploads.listOlderThan(new Date(Date.now() + 3_600_000), 10_000)).length;
  }

  it('POST starts a session: 202 with Location, Docker-Upload-UUID and Range 0-0', async () => {
    const res = await reg.client.fetch(`/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    assert.equal(res.status, 202);
    const uuid = res.headers.get('docker-upload-uuid');
    assert.match(uuid ?? '', UUID);
    assert.equal(res.headers.get('location'), `/v2/${repo}/blobs/uploads/${uuid}`);
    assert.equal(res.headers.get('range'), '0-0');
    assert.equal(res.headers.get('content-length'), '0');
  });

  it('monolithic POST ?digest= answers 201 with Location and Docker-Content-Digest, and the blob is pullable', async () => {
    const blob = makeBlob(4096);
    const res = await reg.client.pushBlob(repo, blob);
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('location'), `/v2/${repo}/blobs/${blob.digest}`);
    assert.equal(res.headers.get('docker-content-digest'), blob.digest);
    await assertPullable(repo, blob);
  });

  it('POST then a single PUT ?digest= carrying the whole body answers 201', async () => {
    const blob = makeBlob(2048);
    const location = await openUpload(reg.client, repo);
    const res = await reg.client.fetch(withDigest(location, blob.digest), {
      method: 'PUT',
      body: new Uint8Array(blob.data),
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('docker-content-digest'), blob.digest);
    await assertPullable(repo, blob);
  });

  it('chunked PATCH with Content-Range answers 202 with the growing Range each time, then PUT commits', async () => {
    const blob = makeBlob(2500);
    let location = await openUpload(reg.client, repo);
    for (const [start, end] of [
      [0, 999],
      [1000, 1999],
      [2000, 2499],
    ] as const) {
      const res = await patchChunk(reg.client, location, blob.data.subarray(start, end + 1), start);
      assert.equal(res.status, 202);
      assert.equal(res.headers.get('range'), `0-${end}`);
      assert.match(res.headers.get('docker-upload-uuid') ?? '', UUID);
      location = res.headers.get('location')!;
      assert.ok(location.startsWith(`/v2/${repo}/blobs/uploads/`));
    }
    const res = await reg.client.fetch(withDigest(location, blob.digest), { method: 'PUT' });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('location'), `/v2/${repo}/blobs/${blob.digest}`);
    await assertPullable(repo, blob);
  });

  it('streamed PATCH without Content-Range (chunked transfer encoding, docker style) appends, then PUT commits', async () => {
    const blob = makeBlob(300_000);
    let location = await openUpload(reg.client, repo);
    const halves = [blob.data.subarray(0, 100_000), blob.data.subarray(100_000)];
    let received = 0;
    for (const half of halves) {
      // Each PATCH streams its part as several chunks of unknown total length.
      const parts = [half.subarray(0, 1000), half.subarray(1000, 50_000), half.subarray(50_000)];
      const res = await reg.client.fetch(location, { method: 'PATCH', ...streamBody(parts) } as RequestInit);
      received += half.length;
      assert.equal(res.status, 202, await res.text());
      assert.equal(res.headers.get('range'), `0-${received - 1}`);
      location = res.headers.get('location')!;
    }
    const res = await reg.client.fetch(withDigest(location, blob.digest), { method: 'PUT' });
    assert.equal(res.status, 201);
    await assertPullable(repo, blob);
  });

  it('GET on the session answers 204 with the current Range, also on the Location returned after later chunks', async () => {
    const blob = makeBlob(1500);
    const first = await openUpload(reg.client, repo);
    let status = await reg.client.fetch(first);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-0');
    const afterFirst = await patchChunk(reg.client, first, blob.data.subarray(0, 500), 0);
    status = await reg.client.fetch(afterFirst.headers.get('location')!);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-499');
    const afterSecond = await patchChunk(reg.client, afterFirst.headers.get('location')!, blob.data.subarray(500, 1200), 500);
    const later = afterSecond.headers.get('location')!;
    status = await reg.client.fetch(later);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-1199');
    assert.equal(status.headers.get('location'), later);
    assert.equal(status.headers.get('docker-upload-uuid'), afterSecond.headers.get('docker-upload-uuid'));
  });

  it('DELETE cancels the session: 204, then GET/PATCH/PUT answer 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const blob = makeBlob(100);
    const location = await openUpload(reg.client, repo);
    assert.equal((await patchChunk(reg.client, location, blob.data, 0)).status, 202);
    const res = await reg.client.fetch(location, { method: 'DELETE' });
    assert.equal(res.status, 204);
    await expectError(await reg.client.fetch(location), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await patchChunk(reg.client, location, blob.data, 100), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await reg.client.fetch(withDigest(location, blob.digest), { method: 'PUT' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await reg.client.fetch(location, { method: 'DELETE' }), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('a closing PUT sent again after it succeeded answers 201 again (its answer may have been lost), and only for that blob', async () => {
    const blob = makeBlob(300);
    const location = await openUpload(reg.client, repo);
    const put = () => reg.client.fetch(withDigest(location, blob.digest), { method: 'PUT', body: new Uint8Array(blob.data) });
    const first = await put();
    assert.equal(first.status, 201);
    // What nginx does when the replica that committed died before answering: the same PUT, elsewhere.
    const again = await put();
    assert.equal(again.status, 201, await again.text());
    assert.equal(again.headers.get('location'), first.headers.get('location'));
    assert.equal(again.headers.get('docker-content-digest'), blob.digest);
    await assertPullable(repo, blob);
    // The session itself stays finished: no status, no more chunks, no other digest.
    await expectError(await reg.client.fetch(location), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await patchChunk(reg.client, location, blob.data, 300), 404, 'BLOB_UPLOAD_UNKNOWN');
    const other = makeBlob(301);
    await expectError(
      await reg.client.fetch(withDigest(location, other.digest), { method: 'PUT', body: new Uint8Array(other.data) }),
      404,
      'BLOB_UPLOAD_UNKNOWN',
    );
    // Nor does a receipt answer for another repository's path.
    await expectError(
      await reg.client.fetch(withDigest(location.replace(repo, `${repo}-other`), blob.digest), {
        method: 'PUT',
        body: new Uint8Array(blob.data),
      }),
      404,
      'BLOB_UPLOAD_UNKNOWN',
    );
  });

  it('a closing PUT whose body repeats bytes the session already holds completes the blob (a re-sent last chunk)', async () => {
    const blob = makeBlob(2000);
    const location = await openUpload(reg.client, repo);
    // The first copy of the PUT got its body appended, then its process died before the commit.
    const patched = await patchChunk(reg.client, location, blob.data, 0);
    assert.equal(patched.status, 202);
    const res = await reg.client.fetch(withDigest(patched.headers.get('location')!, blob.digest), {
      method: 'PUT',
      body: new Uint8Array(blob.data),
    });
    assert.equal(res.status, 201, await res.text());
    await assertPullable(repo, blob);
    // A body that does not repeat the held bytes is still appended, and a wrong total is still refused.
    const mixed = makeBlob(1000);
    const second = await openUpload(reg.client, repo);
    const half = await patchChunk(reg.client, second, mixed.data.subarray(0, 400), 0);
    await expectError(
      await reg.client.fetch(withDigest(half.headers.get('location')!, mixed.digest), { method: 'PUT', body: new Uint8Array(mixed.data) }),
      400,
      'DIGEST_INVALID',
    );
  });

  it('PATCH with a gap answers 416 with the current Range and keeps the upload', async () => {
    const blob = makeBlob(300);
    const location = await openUpload(reg.client, repo);
    assert.equal((await patchChunk(reg.client, location, blob.data.subarray(0, 100), 0)).status, 202);
    const gap = await patchChunk(reg.client, location, blob.data.subarray(200, 300), 200);
    assert.equal(gap.headers.get('range'), '0-99');
    assert.ok(gap.headers.get('location'));
    await expectError(gap, 416, 'RANGE_INVALID');
    const status = await reg.client.fetch(location);
    assert.equal(status.headers.get('range'), '0-99');
    assert.equal((await patchChunk(reg.client, location, blob.data.subarray(100), 100)).status, 202);
    assert.equal((await reg.client.fetch(withDigest(location, blob.digest), { method: 'PUT' })).status, 201);
    await assertPullable(repo, blob);
  });

  it('PATCH overlapping bytes already received answers 416 and keeps the upload', async () => {
    const blob = makeBlob(300);
    const location = await openUpload(reg.client, repo);
    assert.equal((await patchChunk(reg.client, location, blob.data.subarray(0, 200), 0)).status, 202);
    const overlap = await patchChunk(reg.client, location, blob.data.subarray(150, 300), 150);
    assert.equal(overlap.headers.get('range'), '0-199');
    await expectError(overlap, 416, 'RANGE_INVALID');
    assert.equal((await patchChunk(reg.client, location, blob.data.subarray(200), 200)).status, 202);
    assert.equal((await reg.client.fetch(withDigest(location, blob.digest), { method: 'PUT' })).status, 201);
    await assertPullable(repo, blob);
  });

  it('PATCH whose Content-Length disagrees with Content-Range answers 416 and keeps the upload', async () => {
    const blob = makeBlob(100);
    const location = await openUpload(reg.client, repo);
    const res = await rawRequest(reg.url, 'PATCH', location, { 'content-range': '0-199', 'content-length': '100' }, blob.data);
    assert.equal(res.status, 416);
    assert.equal(res.headers.range, '0-0');
    assertErrorBody(res.headers['content-type'], res.body.toString(), 'RANGE_INVALID');
    assert.equal((await patchChunk(reg.client, location, blob.data, 0)).status, 202);
  });

  it('PUT carrying the last chunk with Content-Range commits the whole blob', async () => {
    const blob = makeBlob(1000);
    const location = await openUpload(reg.client, repo);
    assert.equal((await patchChunk(reg.client, location, blob.data.subarray(0, 600), 0)).status, 202);
    const res = await reg.client.fetch(withDigest(location, blob.digest), {
      method: 'PUT',
      body: new Uint8Array(blob.data.subarray(600)),
      headers: { 'content-type': 'application/octet-stream', 'content-range': '600-999' },
    });
    assert.equal(res.status, 201, await res.text());
    await assertPullable(repo, blob);
  });

  it('a PATCH cut off mid-body leaves the upload at its last good Range, and it can resume', async () => {
    const blob = makeBlob(200_000);
    const location = await openUpload(reg.client, repo);
    assert.equal((await patchChunk(reg.client, location, blob.data.subarray(0, 50_000), 0)).status, 202);
    const { hostname, port } = new URL(reg.url);
    await new Promise<void>((resolve) => {
      const req = http.request({
        host: hostname,
        port,
        method: 'PATCH',
        path: location,
        agent: false,
        headers: { 'content-range': '50000-199999', 'content-length': '150000' },
      });
      req.on('error', () => resolve());
      req.write(blob.data.subarray(50_000, 120_000), () =>
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 100),
      );
    });
    // The server notices the disconnect asynchronously; until then the session is busy (400).
    let resumed: Response | undefined;
    for (let attempt = 0; attempt < 50; attempt++) {
      const status = await reg.client.fetch(location);
      assert.equal(status.headers.get('range'), '0-49999');
      resumed = await patchChunk(reg.client, location, blob.data.subarray(50_000), 50_000);
      if (resumed.status !== 400) break;
      await resumed.arrayBuffer();
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(resumed?.status, 202);
    assert.equal(resumed.headers.get('range'), '0-199999');
    assert.equal((await reg.client.fetch(withDigest(location, blob.digest), { method: 'PUT' })).status, 201);
    await assertPullable(repo, blob);
  });

  it('PATCH with a malformed Content-Range answers 416 RANGE_INVALID', async () => {
    const location = await openUpload(reg.client, repo);
    const res = await reg.client.fetch(location, { method: 'PATCH', body: 'abc', headers: { 'content-range': 'zero-two' } });
    await expectError(res, 416, 'RANGE_INVALID');
  });

  it('PUT with a digest that does not match answers 400 DIGEST_INVALID and commits nothing', async () => {
    const blob = makeBlob(500);
    const claimed = makeBlob(500);
    const location = await openUpload(reg.client, repo);
    assert.equal((await patchChunk(reg.client, location, blob.data, 0)).status, 202);
    await expectError(await reg.client.fetch(withDigest(location, claimed.digest), { method: 'PUT' }), 400, 'DIGEST_INVALID');
    for (const digest of [claimed.digest, blob.digest]) {
      assert.equal((await reg.client.fetch(`/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status, 404);
    }
    // As in CNCF Distribution, a failed verification cancels the session.
    await expectError(await reg.client.fetch(location), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('monolithic POST with a mismatching digest answers 400 DIGEST_INVALID, commits nothing and leaves no session', async () => {
    const blob = makeBlob(500);
    const claimed = makeBlob(500);
    const sessions = await openSessions();
    const res = await reg.client.fetch(`/v2/${repo}/blobs/uploads/?digest=${claimed.digest}`, {
      method: 'POST',
      body: new Uint8Array(blob.data),
    });
    await expectError(res, 400, 'DIGEST_INVALID');
    assert.equal((await reg.client.fetch(`/v2/${repo}/blobs/${claimed.digest}`, { method: 'HEAD' })).status, 404);
    assert.equal((await reg.client.fetch(`/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD' })).status, 404);
    assert.equal(await openSessions(), sessions);
  });

  it('monolithic POST with a malformed digest answers 400 DIGEST_INVALID and leaves no session', async () => {
    const sessions = await openSessions();
    const res = await reg.client.fetch(`/v2/${repo}/blobs/uploads/?digest=sha256:1234`, { method: 'POST', body: 'data' });
    await expectError(res, 400, 'DIGEST_INVALID');
    assert.equal(await openSessions(), sessions);
  });

  it('sha512 digests are accepted for monolithic and chunked uploads', async () => {
    const mono = sha512Blob(3000);
    let res = await reg.client.fetch(`/v2/${repo}/blobs/uploads/?digest=${mono.sha512}`, {
      method: 'POST',
      body: new Uint8Array(mono.data),
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('docker-content-digest'), mono.sha512);
    const chunked = sha512Blob(3000);
    const location = await openUpload(reg.client, repo);
    assert.equal((await patchChunk(reg.client, location, chunked.data.subarray(0, 1000), 0)).status, 202);
    assert.equal((await patchChunk(reg.client, location, chunked.data.subarray(1000), 1000)).status, 202);
    res = await reg.client.fetch(withDigest(location, chunked.sha512), { method: 'PUT' });
    assert.equal(res.status, 201);
    for (const blob of [mono, chunked]) {
      const pulled = await reg.client.fetch(`/v2/${repo}/blobs/${blob.sha512}`);
      assert.equal(pulled.status, 200);
      assert.equal(pulled.headers.get('docker-content-digest'), blob.sha512);
      assert.deepEqual(await bytesOf(pulled), blob.data);
    }
  });

  it('PUT on a session of another repository answers 404 BLOB_UPLOAD_UNKNOWN and leaves the session usable', async () => {
    const blob = makeBlob(200);
    const location = await openUpload(reg.client, repo);
    assert.equal((await patchChunk(reg.client, location, blob.data, 0)).status, 202);
    const foreign = location.replace(`/v2/${repo}/`, '/v2/up/other/');
    await expectError(await reg.client.fetch(withDigest(foreign, blob.digest), { method: 'PUT' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await reg.client.fetch(foreign), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await patchChunk(reg.client, foreign, blob.data, 200), 404, 'BLOB_UPLOAD_UNKNOWN');
    assert.equal((await reg.client.fetch(`/v2/up/other/blobs/${blob.digest}`, { method: 'HEAD' })).status, 404);
    assert.equal((await reg.client.fetch(withDigest(location, blob.digest), { method: 'PUT' })).status, 201);
  });

  it('PUT without a digest answers 400 DIGEST_INVALID and keeps the upload', async () => {
    const blob = makeBlob(100);
    const location = await openUpload(reg.client, repo);
    assert.equal((await patchChunk(reg.client, location, blob.data, 0)).status, 202);
    await expectError(await reg.client.fetch(location, { method: 'PUT' }), 400, 'DIGEST_INVALID');
    assert.equal((await reg.client.fetch(location)).headers.get('range'), '0-99');
  });

  it('PUT with a malformed digest answers 400 DIGEST_INVALID', async () => {
    const location = await openUpload(reg.client, repo);
    await expectError(await reg.client.fetch(withDigest(location, 'sha256:xyz'), { method: 'PUT' }), 400, 'DIGEST_INVALID');
  });

  it('an unknown or malformed session id answers 404 BLOB_UPLOAD_UNKNOWN', async () => {
    for (const id of ['00000000-0000-0000-0000-000000000000', 'not_an.id']) {
      await expectError(await reg.client.fetch(`/v2/${repo}/blobs/uploads/${id}`), 404, 'BLOB_UPLOAD_UNKNOWN');
    }
  });
});

describe('uploads: cross-repository mount POST ?mount=&from=', () => {
  let blob: Blob;

  const reg = useServer();
  before(async () => {
    blob = makeBlob(777);
    assert.equal((await reg.client.pushBlob('mount/source', blob)).status, 201);
  });

  it('answers 201 with Location and Docker-Content-Digest when the blob is in `from`, and the blob becomes pullable', async () => {
    const res = await reg.client.fetch(`/v2/mount/target-a/blobs/uploads/?mount=${blob.digest}&from=mount/source`, { method: 'POST' });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('location'), `/v2/mount/target-a/blobs/${blob.digest}`);
    assert.equal(res.headers.get('docker-content-digest'), blob.digest);
    const pulled = await reg.client.fetch(`/v2/mount/target-a/blobs/${blob.digest}`);
    assert.deepEqual(await bytesOf(pulled), blob.data);
  });

  it('falls back to a new upload session (202 + Location) when `from` does not have the blob', async () => {
    const res = await reg.client.fetch(`/v2/mount/target-b/blobs/uploads/?mount=${blob.digest}&from=mount/empty`, { method: 'POST' });
    assert.equal(res.status, 202);
    assert.match(res.headers.get('location') ?? '', /^\/v2\/mount\/target-b\/blobs\/uploads\/[0-9a-f-]{36}$/);
    assert.equal((await reg.client.fetch(`/v2/mount/target-b/blobs/${blob.digest}`, { method: 'HEAD' })).status, 404);
  });

  it('falls back to 202 when `from` is not a valid repository name', async () => {
    const res = await reg.client.fetch(`/v2/mount/target-c/blobs/uploads/?mount=${blob.digest}&from=Bad..Name`, { method: 'POST' });
    assert.equal(res.status, 202);
  });

  it('without `from`, mounts (201) a blob that exists in another repository', async () => {
    const res = await reg.client.fetch(`/v2/mount/target-d/blobs/uploads/?mount=${blob.digest}`, { method: 'POST' });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('docker-content-digest'), blob.digest);
    assert.equal((await reg.client.fetch(`/v2/mount/target-d/blobs/${blob.digest}`, { method: 'HEAD' })).status, 200);
  });

  it('without `from`, falls back to 202 when the blob exists nowhere', async () => {
    const absent = makeBlob(10);
    const res = await reg.client.fetch(`/v2/mount/target-e/blobs/uploads/?mount=${absent.digest}`, { method: 'POST' });
    assert.equal(res.status, 202);
    assert.ok(res.headers.get('location'));
  });

  it('the fallback session is a working upload', async () => {
    const fresh = makeBlob(64);
    const res = await reg.client.fetch(`/v2/mount/target-f/blobs/uploads/?mount=${fresh.digest}&from=mount/source`, { method: 'POST' });
    assert.equal(res.status, 202);
    const put = await reg.client.fetch(withDigest(res.headers.get('location')!, fresh.digest), {
      method: 'PUT',
      body: new Uint8Array(fresh.data),
    });
    assert.equal(put.status, 201);
  });
});

describe('uploads: size limit (limits.blobsize = 1000)', () => {
  const reg = useServer({ limits: { blobsize: 1000 } });

  it('a monolithic push over the limit answers 413 SIZE_INVALID, commits nothing and leaves no session', async () => {
    const blob = makeBlob(1001);
    await expectError(await reg.client.pushBlob('limit/app', blob), 413, 'SIZE_INVALID');
    assert.equal((await reg.client.fetch(`/v2/limit/app/blobs/${blob.digest}`, { method: 'HEAD' })).status, 404);
    assert.equal((await reg.server.stores.metadata.uploads.listOlderThan(new Date(Date.now() + 3_600_000), 100)).length, 0);
  });

  it('a streamed PATCH that crosses the limit answers 413 and keeps the bytes received before it', async () => {
    const blob = makeBlob(1500);
    const location = await openUpload(reg.client, 'limit/app');
    assert.equal((await patchChunk(reg.client, location, blob.data.subarray(0, 800), 0)).status, 202);
    const res = await reg.client.fetch(location, {
      method: 'PATCH',
      ...streamBody([blob.data.subarray(800, 1100), blob.data.subarray(1100)]),
    } as RequestInit);
    await expectError(res, 413, 'SIZE_INVALID');
    assert.equal((await reg.client.fetch(location)).headers.get('range'), '0-799');
  });

  it('a blob at exactly the limit is accepted', async () => {
    assert.equal((await reg.client.pushBlob('limit/app', makeBlob(1000))).status, 201);
  });
});
