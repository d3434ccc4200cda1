/**
 * Blob operations: existence, streaming download with resume and digest check, uploads
 * (monolithic, single-request, chunked, cross-repository mount) and delete.
 *
 * Memory stays flat: downloads are streams with backpressure, and uploads hold at most
 * one chunk. A download that loses its connection mid-body continues with
 * `Range: bytes=N-` and keeps hashing, so the digest is checked over the whole blob
 * without ever holding it.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { DIGEST_ALGORITHMS, type DigestAlgorithm } from '../core/digest.js';
import { repositoryScope } from './auth.js';
import { RegistryClientError } from './errors.js';
import { backoffDelay, sleep } from './retry.js';
import { describe, discard, nodeBody, type ClientRequest, type RequestBody, type Transport } from './transport.js';

export interface BlobInfo {
  digest: string;
  size: number;
}

/** The request descriptions, shared by the typed operations and raw callers (test helpers). */
export const blobRequests = {
  head: (repo: string, digest: string): ClientRequest => ({ method: 'HEAD', url: `/v2/${repo}/blobs/${digest}`, scopes: [pull(repo)] }),
  get: (repo: string, digest: string, headers: Record<string, string> = {}): ClientRequest => ({
    method: 'GET',
    url: `/v2/${repo}/blobs/${digest}`,
    headers,
    scopes: [pull(repo)],
  }),
  delete: (repo: string, digest: string): ClientRequest => ({
    method: 'DELETE',
    url: `/v2/${repo}/blobs/${digest}`,
    scopes: [repositoryScope(repo, 'delete')],
  }),
  /** Starts an upload session. Retrying only leaks an unused session, which the registry purges. */
  start: (repo: string): ClientRequest => ({ method: 'POST', url: `/v2/${repo}/blobs/uploads/`, scopes: [push(repo)], idempotent: true }),
  /** The single-request monolithic upload: `POST ?digest=` with the whole body. Content-addressed, so repeatable. */
  postWhole: (repo: string, digest: string, body: RequestBody, size?: number): ClientRequest => ({
    method: 'POST',
    url: `/v2/${repo}/blobs/uploads/?digest=${encodeURIComponent(digest)}`,
    headers: octets(size),
    body,
    scopes: [push(repo)],
    idempotent: true,
  }),
  /** A chunk at `offset` (Content-Range is inclusive, no unit, as the spec writes it). */
  patch: (location: string, offset: number, chunk: Buffer): ClientRequest => ({
    method: 'PATCH',
    url: location,
    headers: { ...octets(chunk.length), 'content-range': `${offset}-${offset + chunk.length - 1}` },
    body: chunk,
    idempotent: true,
  }),
  /** Completes a session, optionally with the (last) bytes in the body. */
  complete: (location: string, digest: string, body?: RequestBody, size?: number): ClientRequest => ({
    method: 'PUT',
    url: withParams(location, { digest }),
    headers: body === undefined ? {} : octets(size),
    body,
  }),
  mount: (repo: string, from: string, digest: string): ClientRequest => ({
    method: 'POST',
    url: `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`,
    // Pull on the source too: without it a token registry silently answers 202 (no mount).
    scopes: [push(repo), pull(from)],
    idempotent: true,
  }),
  status: (location: string): ClientRequest => ({ method: 'GET', url: location }),
};

/** HEAD a blob: its size, or null when the registry does not have it (404). */
export async function headBlob(t: Transport, repo: string, digest: string): Promise<BlobInfo | null> {
  const res = await t.send(blobRequests.head(repo, digest));
  if (res.status === 404) return null;
  if (res.status !== 200) throw await RegistryClientError.fromResponse('HEAD', t.resolve(`/v2/${repo}/blobs/${digest}`), res);
  return { digest: res.headers.get('docker-content-digest') ?? digest, size: Number(res.headers.get('content-length') ?? -1) };
}

export interface GetBlobOptions {
  /** Check the bytes against the digest (default true); the stream errors on mismatch. */
  verify?: boolean;
  /** How often a dropped body is resumed before giving up (default: the retry policy's attempts). */
  maxResumes?: number;
  signal?: AbortSignal;
  /**
   * Start at this byte (`Range: bytes=<offset>-`): a transfer continuing where an earlier
   * one stopped. The prefix is not read, so the digest cannot be checked here: `verify`
   * must be false (the receiving registry checks the digest of the whole blob).
   */
  offset?: number;
}

/**
 * The blob as a stream. If the connection drops mid-body, the download continues with a
 * Range request from the byte reached; the digest is computed over everything streamed
 * and the stream fails with DIGEST_INVALID at the end if it does not match.
 */
export function getBlob(t: Transport, repo: string, digest: string, options: GetBlobOptions = {}): Readable {
  return Readable.from(blobChunks(t, repo, digest, options), { objectMode: false });
}

async function* blobChunks(t: Transport, repo: string, digest: string, options: GetBlobOptions): AsyncGenerator<Buffer> {
  const verify = options.verify ?? true;
  const algorithm = digest.slice(0, digest.indexOf(':'));
  if (verify && !(algorithm in DIGEST_ALGORITHMS))
    throw RegistryClientError.local(
      'GET',
      t.resolve(`/v2/${repo}/blobs/${digest}`),
      `cannot verify digest algorithm "${algorithm}"`,
      'DIGEST_INVALID',
    );
  const hash = verify ? createHash(algorithm as DigestAlgorithm) : null;
  const maxResumes = options.maxResumes ?? t.retry.attempts;
  const start = options.offset ?? 0;
  if (start > 0 && verify) throw new TypeError('getBlob: a download from an offset cannot verify the digest (pass verify: false)');
  let offset = start;
  let total: number | undefined;
  let resumes = 0;

  for (;;) {
    const req = blobRequests.get(repo, digest, offset > 0 ? { range: `bytes=${offset}-` } : {});
    const res = await t.send({ ...req, signal: options.signal });
    const url = res.url || t.resolve(req.url);
    // Bytes of this response to drop before yielding: a server that ignores Range
    // sends the blob from the start again.
    let skip = 0;
    if (offset === 0 || res.status === 200) {
      if (res.status !== 200) throw await RegistryClientError.fromResponse('GET', url, res);
      skip = offset;
      const length = res.headers.get('content-length');
      if (length !== null) total = Number(length);
    } else if (res.status === 206) {
      const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (range === null || Number(range[1]) !== offset) {
        await discard(res);
        throw RegistryClientError.local(
          'GET',
          url,
          `resumed at byte ${offset} but the server sent ${res.headers.get('content-range')}`,
          'RANGE_INVALID',
        );
      }
      if (total === undefined && range[2] !== '*') total = Number(range[2]);
    } else {
      throw await RegistryClientError.fromResponse('GET', url, res);
    }

    try {
      for await (const piece of (nodeBody(res) ?? []) as AsyncIterable<Uint8Array>) {
        let chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
        if (skip > 0) {
          const drop = Math.min(skip, chunk.length);
          skip -= drop;
          chunk = chunk.subarray(drop);
          if (chunk.length === 0) continue;
        }
        hash?.update(chunk);
        offset += chunk.length;
        yield chunk;
      }
      if (total !== undefined && offset < total) throw new Error(`body ended at byte ${offset} of ${total}`);
      break;
    } catch (err) {
      if (options.signal?.aborted) throw err;
      if (err instanceof RegistryClientError) throw err;
      if (++resumes > maxResumes)
        throw RegistryClientError.local(
          'GET',
          url,
          `download failed at byte ${offset} after ${resumes - 1} resumes: ${describe(err)}`,
          'NETWORK',
          err,
        );
      await sleep(backoffDelay(resumes, t.retry), options.signal);
    }
  }

  if (hash) {
    const actual = `${algorithm}:${hash.digest('hex')}`;
    if (actual !== digest)
      throw RegistryClientError.local(
        'GET',
        t.resolve(`/v2/${repo}/blobs/${digest}`),
        `content digest ${actual} does not match ${digest}`,
        'DIGEST_INVALID',
      );
  }
}

/** Reads a (small) blob into memory: configs, signatures. Refuses beyond `maxBytes`. */
export async function getBlobBytes(t: Transport, repo: string, digest: string, maxBytes = 16 * 1024 * 1024): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of getBlob(t, repo, digest) as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes)
      throw RegistryClientError.local('GET', t.resolve(`/v2/${repo}/blobs/${digest}`), `blob exceeds ${maxBytes} bytes`, 'SIZE_INVALID');
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

export interface PushBlobOptions {
  /** Required for a stream (it cannot be hashed first); computed for a Buffer when absent. */
  digest?: string;
  /** Length of a stream, sent as Content-Length when known. */
  size?: number;
  /**
   * - `post-put` (default): POST a session, PUT ?digest= with the bytes. Every registry supports it.
   * - `single`: one `POST ?digest=` with the bytes (spec's single-request monolithic upload);
   *   falls back to PUT on a registry that answers 202 with a session instead (only for a Buffer).
   * - `chunked`: POST, PATCH chunks of `chunkSize` with Content-Range, then PUT ?digest=.
   */
  mode?: 'post-put' | 'single' | 'chunked';
  chunkSize?: number;
  /** Try a cross-repository mount from this repository first; upload if the registry declines. */
  mountFrom?: string;
}

export interface PushBlobResult extends BlobInfo {
  /** The blob was mounted (201 to the mount request) rather than uploaded. */
  mounted: boolean;
  location: string | null;
}

const DEFAULT_CHUNK = 8 * 1024 * 1024;

/** Uploads a blob from a Buffer or a stream; resolves once the registry answered 201. */
export async function pushBlob(
  t: Transport,
  repo: string,
  source: Buffer | Readable,
  options: PushBlobOptions = {},
): Promise<PushBlobResult> {
  const isBuffer = Buffer.isBuffer(source);
  const digest = options.digest ?? (isBuffer ? `sha256:${createHash('sha256').update(source).digest('hex')}` : undefined);
  if (!digest) throw new TypeError('pushBlob: a stream needs options.digest');
  const size = isBuffer ? source.length : options.size;
  const mode = options.mode ?? 'post-put';

  let location: string | null = null;
  if (options.mountFrom) {
    const mount = await mountBlob(t, repo, options.mountFrom, digest);
    if (mount.mounted) return { digest, size: size ?? -1, mounted: true, location: mount.location };
    location = mount.location;
  }

  if (mode === 'single' && location === null) {
    const res = await t.expect(blobRequests.postWhole(repo, digest, source, size), [201, 202]);
    await discard(res);
    if (res.status === 201) return { digest, size: size ?? -1, mounted: false, location: res.headers.get('location') };
    // The registry opened a session and ignored the bytes: finish with PUT, if we still have them.
    if (!isBuffer)
      throw RegistryClientError.local(
        'POST',
        t.resolve(`/v2/${repo}/blobs/uploads/`),
        'registry does not accept single-request uploads and a stream cannot be resent',
        'UNSUPPORTED',
      );
    location = requireLocation(res, 'POST');
  }
  if (location === null) {
    const res = await t.expect(blobRequests.start(repo), [202]);
    await discard(res);
    location = requireLocation(res, 'POST');
  }

  let res: Response;
  if (mode === 'chunked') {
    location = await patchChunks(t, repo, location, source, options.chunkSize ?? DEFAULT_CHUNK);
    res = await t.expect({ ...blobRequests.complete(location, digest), scopes: [push(repo)] }, [201]);
  } else {
    res = await t.expect({ ...blobRequests.complete(location, digest, source, size), scopes: [push(repo)] }, [201]);
  }
  await discard(res);
  return { digest, size: size ?? -1, mounted: false, location: res.headers.get('location') };
}

/** Sends `source` in PATCHes of `chunkSize`; returns the Location to complete at. */
async function patchChunks(t: Transport, repo: string, location: string, source: Buffer | Readable, chunkSize: number): Promise<string> {
  let offset = 0;
  for await (const chunk of chunksOf(source, chunkSize)) {
    let res = await t.send({ ...blobRequests.patch(location, offset, chunk), scopes: [push(repo)] });
    if (res.status === 416) {
      // A retried PATCH whose first try did arrive: the server is already past this chunk.
      await discard(res);
      res = await t.send({ ...blobRequests.status(location), scopes: [push(repo)] });
      const end = /^0-(\d+)$/.exec(res.headers.get('range') ?? '')?.[1];
      if (res.status !== 204 || Number(end) !== offset + chunk.length - 1)
        throw await RegistryClientError.fromResponse('PATCH', t.resolve(location), res);
    } else if (res.status !== 202) {
      throw await RegistryClientError.fromResponse('PATCH', t.resolve(location), res);
    }
    await discard(res);
    location = res.headers.get('location') ?? location;
    offset += chunk.length;
  }
  return location;
}

/** Cuts a Buffer or a stream into chunks of exactly `size` bytes (the last may be shorter). */
async function* chunksOf(source: Buffer | Readable, size: number): AsyncGenerator<Buffer> {
  if (Buffer.isBuffer(source)) {
    for (let offset = 0; offset < source.length; offset += size) yield source.subarray(offset, offset + size);
    return;
  }
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const piece of source as AsyncIterable<Buffer | string>) {
    let data = typeof piece === 'string' ? Buffer.from(piece) : piece;
    while (data.length > 0) {
      const take = Math.min(size - pendingBytes, data.length);
      pending.push(data.subarray(0, take));
      pendingBytes += take;
      data = data.subarray(take);
      if (pendingBytes === size) {
        yield Buffer.concat(pending);
        pending = [];
        pendingBytes = 0;
      }
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending);
}

/**
 * Cross-repository mount. 201: the blob is now in `repo`. 202: the registry declined
 * (unknown blob, no access to `from`, or mounting unsupported) and opened an upload
 * session instead, whose Location the caller continues with.
 */
export async function mountBlob(t: Transport, repo: string, from: string, digest: string): Promise<{ mounted: boolean; location: string }> {
  const res = await t.expect(blobRequests.mount(repo, from, digest), [201, 202]);
  await discard(res);
  return { mounted: res.status === 201, location: requireLocation(res, 'POST') };
}

export async function deleteBlob(t: Transport, repo: string, digest: string): Promise<void> {
  await discard(await t.expect(blobRequests.delete(repo, digest), [202]));
}

function requireLocation(res: Response, method: string): string {
  const location = res.headers.get('location');
  if (!location) throw RegistryClientError.local(method, res.url, `HTTP ${res.status} without a Location header`, 'BLOB_UPLOAD_INVALID');
  return location;
}

function octets(size: number | undefined): Record<string, string> {
  return { 'content-type': 'application/octet-stream', ...(size !== undefined ? { 'content-length': String(size) } : {}) };
}

/** Adds query parameters to a Location that may already carry some (Distribution's `_state`). */
export function withParams(location: string, params: Record<string, string>): string {
  const query = new URLSearchParams(params).toString();
  return `${location}${location.includes('?') ? '&' : '?'}${query}`;
}

const pull = (repo: string) => repositoryScope(repo, 'pull');
const push = (repo: string) => repositoryScope(repo, 'pull', 'push');

/**
 * An upload session driven step by step, for a caller that must survive its own restart
 * (replication): it keeps `location` and `offset` after each chunk, and later asks the
 * registry where the session stands (`uploadStatus`) and continues with `appendChunk` from
 * there. Registries that sign their upload state into the Location (Distribution's
 * `_state`) need the Location of the latest answer, which each step returns.
 */
export interface UploadSession {
  location: string;
  /** Bytes the registry holds in the session. */
  offset: number;
}

/** Opens an upload session (POST). */
export async function startUpload(t: Transport, repo: string): Promise<UploadSession> {
  const res = await t.expect(blobRequests.start(repo), [202]);
  await discard(res);
  return { location: requireLocation(res, 'POST'), offset: 0 };
}

/**
 * Where a session stands (GET on its Location: 204 with `Range: 0-<last>`), or null when the
 * registry no longer knows it (404: completed, cancelled, purged) or refuses it (400
 * BLOB_UPLOAD_INVALID). `Range: 0-0` is read as empty: both registries answer it for 0 and
 * for 1 byte, and a replication chunk is never 1 byte long.
 */
export async function uploadStatus(t: Transport, repo: string, location: string): Promise<UploadSession | null> {
  const res = await t.send({ ...blobRequests.status(location), scopes: [push(repo)] });
  await discard(res);
  if (res.status === 404 || res.status === 400) return null;
  if (res.status !== 204) throw await RegistryClientError.fromResponse('GET', t.resolve(location), res);
  const end = /^(?:bytes=)?0-(\d+)$/.exec(res.headers.get('range') ?? '')?.[1];
  const offset = end === undefined || end === '0' ? 0 : Number(end) + 1;
  return { location: res.headers.get('location') ?? location, offset };
}

/** Appends one chunk at the session's offset (PATCH with Content-Range); returns the session after it. */
export async function appendChunk(
  t: Transport,
  repo: string,
  session: UploadSession,
  chunk: Buffer,
  signal?: AbortSignal,
): Promise<UploadSession> {
  const res = await t.send({ ...blobRequests.patch(session.location, session.offset, chunk), scopes: [push(repo)], signal });
  if (res.status === 416) {
    // A retried PATCH whose first try did arrive: the server may already be past this chunk.
    await discard(res);
    const status = await uploadStatus(t, repo, session.location);
    if (status?.offset === session.offset + chunk.length) return status;
    throw RegistryClientError.local(
      'PATCH',
      t.resolve(session.location),
      `registry refused the chunk at ${session.offset} (it holds ${status?.offset ?? 'no session'})`,
      'RANGE_INVALID',
    );
  }
  if (res.status !== 202) throw await RegistryClientError.fromResponse('PATCH', t.resolve(session.location), res);
  await discard(res);
  return { location: res.headers.get('location') ?? session.location, offset: session.offset + chunk.length };
}

/** Completes a session (PUT ?digest=, no body): the registry verifies the digest over everything appended. */
export async function completeUpload(t: Transport, repo: string, session: UploadSession, digest: string): Promise<void> {
  await discard(await t.expect({ ...blobRequests.complete(session.location, digest), scopes: [push(repo)] }, [201]));
}

/** Abandons a session (DELETE on its Location); a session already gone is fine. */
export async function cancelUpload(t: Transport, repo: string, location: string): Promise<void> {
  const res = await t.send({ method: 'DELETE', url: location, scopes: [push(repo)] });
  await discard(res);
}
