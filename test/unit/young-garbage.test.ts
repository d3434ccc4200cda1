import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COLLECT_EVERY, droppedChunkBytes, youngCollections } from '../../src/runtime/young-garbage.js';

describe('young-garbage: dropped upload chunks are collected every COLLECT_EVERY bytes', () => {
  it('runs one young-generation collection per COLLECT_EVERY bytes dropped, none before', () => {
    const before = youngCollections();
    droppedChunkBytes(COLLECT_EVERY - 1);
    assert.equal(youngCollections(), before, 'not yet');
    droppedChunkBytes(1);
    assert.equal(youngCollections(), before + 1, 'a collection ran (V8 gave its gc function without --expose-gc)');
    for (let i = 0; i < (3 * COLLECT_EVERY) / 65536; i++) droppedChunkBytes(65536);
    assert.equal(youngCollections(), before + 4);
  });

  it('does not put gc on the global object', () => {
    droppedChunkBytes(COLLECT_EVERY);
    assert.equal((globalThis as { gc?: unknown }).gc, undefined);
  });
});
