import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseRangeHeader } from '../../src/http/v2/blobs.js';

describe('parseRangeHeader (Range: bytes=… on blob GET)', () => {
  it('parses closed, open and suffix ranges', () => {
    assert.deepEqual(parseRangeHeader('bytes=0-9', 100), { start: 0, end: 9 });
    assert.deepEqual(parseRangeHeader('bytes=90-', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRangeHeader('bytes=-10', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRangeHeader('bytes=99-99', 100), { start: 99, end: 99 });
  });

  it('clips an end past the blob and a suffix longer than it', () => {
    assert.deepEqual(parseRangeHeader('bytes=50-500', 100), { start: 50, end: 99 });
    assert.deepEqual(parseRangeHeader('bytes=-500', 100), { start: 0, end: 99 });
  });

  it('answers null (416) for unsatisfiable ranges', () => {
    for (const header of ['bytes=100-', 'bytes=100-200', 'bytes=20-10', 'bytes=-0'])
      assert.equal(parseRangeHeader(header, 100), null, header);
    assert.equal(parseRangeHeader('bytes=0-0', 0), null);
    assert.equal(parseRangeHeader('bytes=-5', 0), null);
  });

  it('answers undefined (serve the whole blob) for headers it does not handle', () => {
    for (const header of ['items=0-1', 'bytes=0-1,5-6', 'bytes=-', 'bytes=a-b', '0-1', 'bytes=1.5-2']) {
      assert.equal(parseRangeHeader(header, 100), undefined, header);
    }
  });

  it('any satisfiable range lies inside the blob and is never empty (property)', () => {
    fc.assert(
      fc.property(fc.nat(1000), fc.option(fc.nat(2000)), fc.option(fc.nat(2000)), (size, first, last) => {
        if (first === null && last === null) return true;
        const header = `bytes=${first ?? ''}-${last ?? ''}`;
        const range = parseRangeHeader(header, size);
        if (range === undefined) return false;
        if (range === null) return true;
        return range.start >= 0 && range.start <= range.end && range.end < size;
      }),
    );
  });
});
