import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { parseRangeHeader } from '../../src/http/v2/blobs.js';
import { makeBlob, type Blob } from '../helpers/registry-client.js';
import { useServer } from '../helpers/use-server.js';

/** Range handling: the parser stays inside the blob, and real GETs return exactly that slice. */
const num = fc.oneof(
  fc.nat({ max: 2_000 }),
  fc.constantFrom(0, 1, 999, 1000, 1001, 2 ** 53, 1e21),
  fc.bigInt({ min: 0n, max: 10n ** 30n }),
);
const rangeHeader = fc.oneof(
  fc.tuple(fc.option(num, { nil: undefined }), fc.option(num, { nil: undefined })).map(([a, b]) => `bytes=${a ?? ''}-${b ?? ''}`),
  fc.tuple(num, num, num, num).map(([a, b, c, d]) => `bytes=${a}-${b},${c}-${d}`),
  fc.constantFrom('bytes=', 'bytes=-', 'items=0-1', 'bytes = 0-1', 'bytes=0-1 ', 'BYTES=0-1', 'bytes=-0', 'bytes=00-01', 'bytes=1-0'),
  fc.string({ maxLength: 30 }),
);

describe('fuzz: parseRangeHeader', () => {
  it('returns null, undefined, or a range inside [0, size) with start ≤ end', () => {
    fc.assert(
      fc.property(rangeHeader, fc.nat({ max: 5_000 }), (header, size) => {
        const range = parseRangeHeader(header, size);
        if (range === null || range === undefined) return;
        assert.ok(Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end), JSON.stringify(range));
        assert.ok(
          range.start >= 0 && range.start <= range.end && range.end < size,
          `${header} on ${size} bytes → ${JSON.stringify(range)}`,
        );
      }),
      { seed: 7, numRuns: 2_000 },
    );
  });
});

describe('fuzz: GET with random Range headers over HTTP', () => {
  let blob: Blob;
  const reg = useServer();
  before(async () => {
    blob = makeBlob(1000);
    assert.equal((await reg.client.pushBlob('fuzz/range', blob)).status, 201);
  });

  it('206 bodies equal the slice named by Content-Range; 200 is the whole blob; 416 only when unsatisfiable', async () => {
    await fc.assert(
      fc.asyncProperty(
        rangeHeader.filter((h) => /^[\x21-\x7e ]*$/.test(h)),
        async (header) => {
          const res = await reg.client.fetch(`/v2/fuzz/range/blobs/${blob.digest}`, { headers: { range: header } });
          const body = Buffer.from(await res.arrayBuffer());
          const expected = parseRangeHeader(header, blob.size);
          if (res.status === 206) {
            const m = /^bytes (\d+)-(\d+)\/1000$/.exec(res.headers.get('content-range') ?? '');
            assert.ok(m, `Content-Range ${res.headers.get('content-range')}`);
            const [start, end] = [Number(m[1]), Number(m[2])];
            assert.deepEqual({ start, end }, expected);
            assert.deepEqual(body, blob.data.subarray(start, end + 1));
            assert.equal(Number(res.headers.get('content-length')), end - start + 1);
          } else if (res.status === 200) {
            assert.equal(expected, undefined, header);
            assert.deepEqual(body, blob.data);
          } else {
            assert.equal(res.status, 416, `${header}: ${res.status} ${body}`);
            assert.equal(expected, null);
            assert.equal(res.headers.get('content-range'), 'bytes */1000');
          }
        },
      ),
      { seed: 99, numRuns: 150 },
    );
  });
});
