import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { alignedBuffers } from '../../src/runtime/direct-io.js';
import { inlineSegmentHash, threadSegmentHash, type SegmentHash } from '../../src/registries/segment-hash.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Feeds `data` through recycled shared segments of `segment` bytes, reusing a segment only once `hashed` passed it. */
async function feed(hash: SegmentHash, data: Buffer, segment: number, count = 2): Promise<void> {
  const segments = alignedBuffers(count, segment);
  for (let offset = 0, i = 0; offset < data.length; offset += segment, i++) {
    // The segment's previous bytes (count segments back) must be hashed before they are overwritten.
    await hash.until(Math.max(0, offset - (count - 1) * segment));
    const buf = segments[i % count]!;
    const n = data.copy(buf, 0, offset, offset + segment);
    hash.update(buf.subarray(0, n));
  }
}

describe('segment hash', () => {
  it('the hashing thread computes the digest of recycled shared segments, as createHash does', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 999);
    const hash = threadSegmentHash();
    await feed(hash, data, 256 * 1024);
    await hash.until(data.length);
    assert.equal(hash.hashed, data.length);
    assert.equal(await hash.digest(), sha256(data));
  });

  it('several downloads hash at once on the one thread, each its own digest', async () => {
    const blobs = [randomBytes(1024 * 1024 + 1), randomBytes(2 * 1024 * 1024), randomBytes(700 * 1024 + 3)];
    const digests = await Promise.all(
      blobs.map(async (data) => {
        const hash = threadSegmentHash();
        await feed(hash, data, 64 * 1024, 3);
        return hash.digest();
      }),
    );
    assert.deepEqual(digests, blobs.map(sha256));
  });

  it('bytes not in shared memory are copied to the thread', async () => {
    const data = randomBytes(100_003);
    const hash = threadSegmentHash();
    hash.update(data.subarray(0, 50_000));
    hash.update(data.subarray(50_000));
    assert.equal(await hash.digest(), sha256(data));
  });

  it('a closed hash fails its waiters instead of leaving them hanging', async () => {
    const hash = threadSegmentHash();
    const waiting = hash.until(10);
    hash.close();
    await assert.rejects(waiting, /hashing stopped/);
    await assert.rejects(hash.digest(), /hashing stopped/);
  });

  it('inline hashing gives the same digest', async () => {
    const data = randomBytes(1024 * 1024 + 17);
    const hash = inlineSegmentHash();
    await feed(hash, data, 128 * 1024);
    assert.equal(hash.hashed, data.length);
    assert.equal(await hash.digest(), sha256(data));
  });
});
