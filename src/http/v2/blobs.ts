import type { ByteRange } from '../../core/ports.js';
import { RegistryError } from '../../core/errors.js';
import { operation, type V2Handler } from './context.js';

/** GET/HEAD /v2/<name>/blobs/<digest>, with single-range support. */
export const getBlob: V2Handler = async ({ registry }, request, reply, { name, ref: digest }) => {
  const blob = await registry.findBlob(name, digest);
  const size = blob.size;
  const etag = `"${digest}"`;
  reply
    .header('docker-content-digest', digest)
    .header('etag', etag)
    .header('accept-ranges', 'bytes')
    .header('cache-control', 'max-age=31536000')
    .header('content-type', 'application/octet-stream');
  if (request.headers['if-none-match'] === etag || request.headers['if-none-match'] === digest) {
    return reply.code(304).send();
  }
  let range: ByteRange | undefined;
  const rangeHeader = request.headers.range;
  if (rangeHeader !== undefined) {
    const parsed = parseRangeHeader(rangeHeader, size);
    if (parsed === null) {
      throw new RegistryError(
        'RANGE_INVALID',
        `range "${rangeHeader.slice(0, 64)}" is outside the blob's ${size} bytes`,
        { size },
        {
          'Content-Range': `bytes */${size}`,
        },
      );
    }
    range = parsed;
  }
  if (request.method === 'GET') {
    // storage.s3.redirect: let the client fetch straight from the object store (it re-sends Range itself).
    const redirect = await blob.redirectUrl();
    if (redirect) return reply.code(307).header('location', redirect).header('content-length', 0).send();
  }
  if (range) {
    reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${size}`);
  }
  reply.header('content-length', range ? range.end - range.start + 1 : size);
  if (request.method === 'HEAD') return reply.send();
  return reply.send(await blob.open(range));
};

/** DELETE /v2/<name>/blobs/<digest>: unlinks the blob from this repository. */
export const deleteBlob: V2Handler = async ({ registry }, _request, reply, { name, ref: digest, principal }) => {
  await registry.deleteBlob(name, digest, operation(principal));
  return reply.code(202).header('content-length', 0).send();
};

/**
 * Parses a single-range `Range: bytes=…` header. Returns undefined when the header should be
 * ignored (not bytes, or several ranges — we then serve the whole blob, as RFC 9110 allows),
 * null when it is unsatisfiable.
 */
export function parseRangeHeader(header: string, size: number): ByteRange | undefined | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined;
  const [, first, last] = m as unknown as [string, string, string];
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return null;
    return { start: Math.max(size - suffix, 0), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || (last !== '' && Number(last) < start)) return null;
  return { start, end };
}
