import assert from 'node:assert/strict';
import { existsSync, mkdirSync, renameSync, rmSync, truncateSync, watch } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteObjectsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/storage/s3.js';
import { errorCode, makeBlob, RegistryClient, sha256 } from '../helpers/registry-client.js';
import { localS3Settings, startLocalS3, type LocalS3 } from '../helpers/s3.js';
import { startBerthProcess, startTestServer, tempDir } from '../helpers/server.js';
import { faultRounds, faultSeed, Random } from './faults.js';
import { blobFile, fsckInProcess, stagingFile } from './support.js';

/**
 * Issue 20's invariant: after a crash, an upload session that answers GET with 204 + Range
 * completes with a correct PUT; one that cannot be completed already answers that GET with
 * 404 BLOB_UPLOAD_UNKNOWN, before the client re-sends anything.
 *
 * The failure it fixes: a kill between FilesystemBlobStore.commitUpload's rename (the staged
 * bytes moved to their content address) and the metadata commit left the session row, with
 * its full size, and no staging file. GET answered from the row alone (204, Range covering
 * everything sent); the PUT that followed found no staging file and answered 404.
 */
const SEED = faultSeed(20261203);

async function openSession(client: RegistryClient, repo: string, data: Buffer): Promise<{ location: string; id: string }> {
  const start = await client.fetch(`/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  assert.equal(start.status, 202);
  const location = start.headers.get('location')!;
  const patch = await client.fetch(location, {
    method: 'PATCH',
    body: new Uint8Array(data),
    headers: { 'content-range': `0-${data.length - 1}` },
  });
  assert.equal(patch.status, 202, await patch.text());
  return { location, id: start.headers.get('docker-upload-uuid')! };
}

describe('upload sessions after a crash: resumable and completable, or unknown on GET', () => {
  it('bytes moved to their content address but not recorded: GET already answers 404, and the blob pushes again', async () => {
    const dataDir = tempDir('berth-invariant-moved-');
    try {
      let server = await startTestServer({ data: { dir: dataDir } });
      const blob = makeBlob(700_000);
      const { location, id } = await openSession(new RegistryClient(server.url), 'inv/moved', blob.data);
      await server.close();
      // What commitUpload did before the metadata commit the crash prevented.
      mkdirSync(path.dirname(blobFile(dataDir, blob.digest)), { recursive: true });
      renameSync(stagingFile(dataDir, id), blobFile(dataDir, blob.digest));

      server = await startTestServer({ data: { dir: dataDir } });
      try {
        const client = new RegistryClient(server.url);
        const status = await client.fetch(location);
        assert.equal(status.status, 404, 'a session whose staged bytes are gone must not answer 204 + Range');
        assert.equal(await errorCode(status), 'BLOB_UPLOAD_UNKNOWN');
        assert.equal(
          (await client.fetch(`/v2/inv/moved/blobs/${blob.digest}`, { method: 'HEAD' })).status,
          404,
          'nothing unrecorded is visible',
        );
        assert.equal((await client.pushBlob('inv/moved', blob)).status, 201);
        assert.equal(sha256(Buffer.from(await (await client.fetch(`/v2/inv/moved/blobs/${blob.digest}`)).arrayBuffer())), blob.digest);
      } finally {
        await server.close();
      }
      assert.deepEqual((await fsckInProcess(dataDir, { graceMs: 0 })).report.problems, []);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('staging file shorter than recorded (power lost before the bytes reached the disk): GET answers 404, not 204', async () => {
    const dataDir = tempDir('berth-invariant-short-');
    try {
      let server = await startTestServer({ data: { dir: dataDir } });
      const blob = makeBlob(500_000);
      const { location, id } = await openSession(new RegistryClient(server.url), 'inv/short', blob.data.subarray(0, 400_000));
      await server.close();
      truncateSync(stagingFile(dataDir, id), 123_456);
      server = await startTestServer({ data: { dir: dataDir } });
      try {
        const client = new RegistryClient(server.url);
        const status = await client.fetch(location);
        assert.equal(status.status, 404);
        assert.equal(await errorCode(status), 'BLOB_UPLOAD_UNKNOWN');
        assert.equal(existsSync(stagingFile(dataDir, id)), false, 'the useless staging file is removed with the session');
      } finally {
        await server.close();
      }
      assert.deepEqual((await fsckInProcess(dataDir, { graceMs: 0 })).report.problems, []);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  describe('on S3', () => {
    let s3: LocalS3;
    before(async () => {
      s3 = await startLocalS3('berth-invariant');
    });
    after(async () => s3?.close());

    it('segments deleted by a commit that was not recorded: GET answers 404; intact segments resume and complete', async () => {
      const dataDir = tempDir('berth-invariant-s3-');
      const root = `inv-${path.basename(dataDir)}`;
      const overrides = { data: { dir: dataDir }, storage: { s3: localS3Settings(s3, root) } };
      const server = await startTestServer(overrides);
      try {
        const client = new RegistryClient(server.url);
        const gone = makeBlob(6 * 1024 * 1024);
        const kept = makeBlob(6 * 1024 * 1024);
        const lost = await openSession(client, 'inv/s3', gone.data);
        const intact = await openSession(client, 'inv/s3', kept.data.subarray(0, 5 * 1024 * 1024 + 3));
        // Delete the first session's segments, as a crash after the blob was assembled but before its row was written leaves them.
        const api = createS3Client(localS3Settings(s3, root));
        const listed = await api.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${root}/uploads/${lost.id}/` }));
        assert.ok((listed.Contents ?? []).length > 0);
        await api.send(
          new DeleteObjectsCommand({ Bucket: s3.bucket, Delete: { Objects: listed.Contents!.map((o) => ({ Key: o.Key! })) } }),
        );
        api.destroy();

        const status = await client.fetch(lost.location);
        assert.equal(status.status, 404);
        assert.equal(await errorCode(status), 'BLOB_UPLOAD_UNKNOWN');

        const ok = await client.fetch(intact.location);
        assert.equal(ok.status, 204);
        assert.equal(ok.headers.get('range'), `0-${5 * 1024 * 1024 + 2}`);
        const put = await client.fetch(`${intact.location}?digest=${kept.digest}`, {
          method: 'PUT',
          body: new Uint8Array(kept.data.subarray(5 * 1024 * 1024 + 3)),
        });
        assert.equal(put.status, 201, await put.text());
        assert.equal(sha256(Buffer.from(await (await client.fetch(`/v2/inv/s3/blobs/${kept.digest}`)).arrayBuffer())), kept.digest);
      } finally {
        await server.destroy();
      }
    });
  });

  it(`kill -9 the moment a closing PUT moved the bytes, restart: every session completes or is unknown on GET (seed ${SEED})`, async (t) => {
    const random = new Random(SEED);
    const dataDir = tempDir('berth-invariant-kill-');
    const env = { BERTH_DATA_DIR: dataDir, BERTH_GC_ENABLED: 'false' };
    const outcomes = { unknownOnGet: 0, resumed: 0 };
    try {
      for (let round = 0; round < Math.max(1, Math.ceil(faultRounds(4) / 2)); round++) {
        let server = await startBerthProcess(env);
        let client = new RegistryClient(server.url);
        const blob = makeBlob(random.int(2, 24) * 1024 * 1024 + random.int(0, 9999));
        const sent = blob.size - random.int(1, 512 * 1024);
        const { location, id } = await openSession(client, 'inv/kill', blob.data.subarray(0, sent));
        // The closing PUT carries the remaining bytes; SIGKILL as soon as its staging file is renamed away.
        const staging = path.dirname(stagingFile(dataDir, id));
        const watcher = watch(staging, (_e, name) => {
          if (name === id && !existsSync(stagingFile(dataDir, id))) server.child.kill('SIGKILL');
        });
        const put = client
          .fetch(`${location}?digest=${blob.digest}`, { method: 'PUT', body: new Uint8Array(blob.data.subarray(sent)) })
          .catch(() => null);
        const answered = await Promise.race([put, sleep(20_000).then(() => 'timeout' as const)]);
        watcher.close();
        if (answered === 'timeout') assert.fail('the closing PUT neither answered nor was killed within 20 s');
        await server.kill();
        if (answered && answered.status === 201) continue; // the record step beat the kill: nothing interrupted
        server = await startBerthProcess(env);
        client = new RegistryClient(server.url);
        try {
          const where = `seed ${SEED}, round ${round}`;
          const status = await client.fetch(location);
          if (status.status === 404) {
            assert.equal(await errorCode(status), 'BLOB_UPLOAD_UNKNOWN', where);
            outcomes.unknownOnGet++;
            assert.equal((await client.pushBlob('inv/kill', blob)).status, 201, `push again (${where})`);
          } else {
            assert.equal(status.status, 204, where);
            const offset = Number(/^0-(\d+)$/.exec(status.headers.get('range') ?? '')![1]) + 1;
            const res = await client.fetch(`${location}?digest=${blob.digest}`, {
              method: 'PUT',
              body: new Uint8Array(blob.data.subarray(offset)),
            });
            assert.equal(
              res.status,
              201,
              `a session that answered 204 + Range 0-${offset - 1} did not complete (${where}): ${await res.text()}`,
            );
            outcomes.resumed++;
          }
          assert.equal(
            sha256(Buffer.from(await (await client.fetch(`/v2/inv/kill/blobs/${blob.digest}`)).arrayBuffer())),
            blob.digest,
            where,
          );
        } finally {
          await server.kill();
        }
      }
      t.diagnostic(`interrupted closing PUTs: ${outcomes.unknownOnGet} unknown on GET, ${outcomes.resumed} resumed and completed`);
      assert.ok(outcomes.unknownOnGet + outcomes.resumed > 0, 'some kill landed inside a closing PUT (else the test proves nothing)');
      const check = await fsckInProcess(dataDir, { graceMs: 0, verifyContent: true });
      assert.equal(check.code, 0, JSON.stringify(check.report.problems));
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
