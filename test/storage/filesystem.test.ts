import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { FilesystemBlobStore } from '../../src/storage/filesystem.js';
import { tempDir } from '../helpers/server.js';
import { runBlobStoreContract, sha256 } from './contract.js';

runBlobStoreContract('filesystem', async () => {
  const root = tempDir('berth-fs-contract-');
  return {
    open: () => new FilesystemBlobStore(root).init(),
    destroy: async () => rmSync(root, { recursive: true, force: true }),
  };
});

describe('FilesystemBlobStore specifics', () => {
  it('lays blobs out as blobs/<algorithm>/<xx>/<hex> and leaves no staging file behind', async () => {
    const root = tempDir('berth-fs-');
    try {
      const store = await new FilesystemBlobStore(root).init();
      const data = randomBytes(1000);
      const id = randomUUID();
      const state = await store.appendUpload(id, await store.createUpload(id), 0, Readable.from([data]));
      await store.commitUpload(id, state, sha256(data), data.length);
      const hex = sha256(data).slice('sha256:'.length);
      assert.equal(statSync(path.join(root, 'blobs', 'sha256', hex.slice(0, 2), hex)).size, 1000);
      assert.deepEqual(readdirSync(path.join(root, 'uploads')), []);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('adopts a local file as a staged upload without copying it, and leaves the file in place (the cache may store it again)', async () => {
    const root = tempDir('berth-fs-');
    try {
      const store = await new FilesystemBlobStore(root).init();
      const data = randomBytes(4096);
      const spool = path.join(root, 'spool-file');
      writeFileSync(spool, data);
      for (const id of [randomUUID(), randomUUID()]) {
        const adopted = await store.adoptUpload(id, spool);
        assert.ok(adopted, 'same filesystem: adopted');
        await store.commitUpload(id, adopted.state, sha256(data), data.length);
        assert.deepEqual(readFileSync(spool), data, 'the adopted file is still there, unchanged');
        await store.delete(sha256(data));
      }
      assert.deepEqual(readdirSync(path.join(root, 'uploads')), []);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('refuses an upload id that could escape the uploads directory', async () => {
    const root = tempDir('berth-fs-');
    try {
      const store = await new FilesystemBlobStore(root).init();
      await assert.rejects(store.createUpload('../escape'), /invalid upload id/);
      assert.equal(existsSync(path.join(root, 'escape')), false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
