import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { Registry } from '../../src/core/registry.js';
import { openSqliteMetadata } from '../../src/metadata/sqlite.js';
import { FilesystemBlobStore } from '../../src/storage/filesystem.js';
import { makeBlob } from '../helpers/registry-client.js';
import { tempDir } from '../helpers/server.js';

describe('UploadService running hashes', () => {
  const dir = tempDir('berth-hashes-');
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('holds at most maxHeldHashes; an evicted session is rehashed from staged bytes and still verifies', async () => {
    const blobs = await new FilesystemBlobStore(path.join(dir, 'storage')).init();
    const metadata = await openSqliteMetadata(path.join(dir, 'berth.db'));
    try {
      // Through the Registry, which gives its UploadService the commit transaction.
      const uploads = new Registry(blobs, metadata, {
        deleteEnabled: true,
        maxManifestSize: 1 << 20,
        maxBlobSize: 0,
        maxConcurrentUploads: 10,
        maxPageSize: 100,
        maxHeldHashes: 2,
      }).uploads;
      const blobsToPush = [makeBlob(3000), makeBlob(3000), makeBlob(3000)];
      const sessions = [];
      for (const blob of blobsToPush) {
        const session = await uploads.start('hash/cap');
        await uploads.append('hash/cap', session.id, Readable.from([blob.data.subarray(0, 1000)]));
        sessions.push(session);
        assert.ok(uploads.heldHashes <= 2, `held ${uploads.heldHashes} hashes, cap is 2`);
      }
      assert.equal(uploads.heldHashes, 2);
      // The first session's hash was evicted: finishing it must rebuild the hash from staged bytes.
      for (const [i, blob] of blobsToPush.entries()) {
        const digest = await uploads.complete('hash/cap', sessions[i]!.id, blob.digest, Readable.from([blob.data.subarray(1000)]));
        assert.equal(digest, blob.digest);
        assert.deepEqual(await metadata.repositories.linkedBlob('hash/cap', blob.digest), { size: blob.size });
      }
      assert.equal(uploads.heldHashes, 0);
    } finally {
      await metadata.close();
    }
  });
});
