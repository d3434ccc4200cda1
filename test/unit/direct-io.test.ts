import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { alignedBuffers, DIRECT_ALIGN, isAlignmentError, openDirect } from '../../src/runtime/direct-io.js';

/**
 * The O_DIRECT primitives the pull-through cache's spool relies on, on the real filesystem of
 * the test machine: aligned buffers are accepted, a malloc'd Buffer is refused with the error
 * the spool falls back on.
 */
describe('direct I/O', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-direct-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes page-aligned buffers with O_DIRECT, byte for byte', async () => {
    const file = path.join(dir, 'aligned');
    closeSync(openSync(file, 'w'));
    const direct = await openDirect(file);
    assert.ok(direct, 'this filesystem takes O_DIRECT (the spool would silently lose it otherwise)');
    const buffers = alignedBuffers(3, 64 * 1024);
    assert.equal(buffers.length, 3);
    for (const [i, b] of buffers.entries()) b.fill(i + 1);
    await direct.writev(buffers, 0);
    await direct.close();
    const back = readFileSync(file);
    assert.equal(back.length, 3 * 64 * 1024);
    for (let i = 0; i < 3; i++) assert.ok(back.subarray(i * 64 * 1024, (i + 1) * 64 * 1024).every((x) => x === i + 1));
  });

  it('refuses a misaligned write with the error isAlignmentError recognises', async () => {
    const file = path.join(dir, 'misaligned');
    closeSync(openSync(file, 'w'));
    const direct = await openDirect(file);
    assert.ok(direct);
    const [aligned] = alignedBuffers(1, 2 * DIRECT_ALIGN);
    const err = await direct.write(aligned!.subarray(1, 1 + DIRECT_ALIGN), 0).then(
      () => null,
      (e: unknown) => e,
    );
    await direct.close();
    assert.ok(err, 'a write from an odd address is refused');
    assert.ok(isAlignmentError(err), `refused as misaligned (${String(err)})`);
    assert.equal(isAlignmentError(Object.assign(new Error('x'), { code: 'EIO' })), false);
    // The buffered handle takes the same bytes.
    const fd = openSync(file, 'r+');
    writeSync(fd, aligned!.subarray(1, 1 + DIRECT_ALIGN), 0, DIRECT_ALIGN, 0);
    closeSync(fd);
    assert.equal(readFileSync(file).length, DIRECT_ALIGN);
  });

  it('aligned buffers must be whole pages', () => {
    assert.throws(() => alignedBuffers(1, 1000), /multiple of 4096/);
  });
});
