import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import { formatSize, type BenchOptions } from '../options.js';
import { mbPerSecond, type Workload, type WorkloadContext } from '../workload.js';

const PATTERN_SIZE = 4 * 1024 * 1024;
const REPO = 'bench/stream';

/**
 * A blob of any size produced on the fly from one 4 MiB random buffer, each 4 MiB chunk
 * stamped with its index so no two chunks are equal; never more than a chunk in memory.
 */
export class PatternBlob {
  private readonly pattern = randomBytes(PATTERN_SIZE);

  constructor(readonly size: number) {}

  *chunks(): Generator<Buffer> {
    for (let offset = 0, index = 0; offset < this.size; offset += PATTERN_SIZE, index++) {
      const length = Math.min(PATTERN_SIZE, this.size - offset);
      const chunk = Buffer.allocUnsafe(length);
      this.pattern.copy(chunk, 0, 0, length);
      if (length >= 8) chunk.writeBigUInt64LE(BigInt(index), 0);
      yield chunk;
    }
  }

  /**
   * Whether `chunk` is this blob's bytes from `offset` on: compared with the pattern (memcmp
   * speed, so a client checking every byte of a multi-GB pull is not bound by hashing).
   */
  matches(offset: number, chunk: Buffer): boolean {
    if (offset + chunk.length > this.size) return false;
    for (let at = 0; at < chunk.length;) {
      const position = offset + at;
      const index = Math.floor(position / PATTERN_SIZE);
      const within = position - index * PATTERN_SIZE;
      const chunkLength = Math.min(PATTERN_SIZE, this.size - index * PATTERN_SIZE);
      const length = Math.min(chunk.length - at, chunkLength - within);
      const got = chunk.subarray(at, at + length);
      if (chunkLength >= 8 && within < 8) {
        const stamp = Buffer.allocUnsafe(8);
        this.pattern.copy(stamp, 0, 0, 8);
        stamp.writeBigUInt64LE(BigInt(index), 0);
        const stamped = Math.min(8 - within, length);
        if (!got.subarray(0, stamped).equals(stamp.subarray(within, within + stamped))) return false;
        if (!got.subarray(stamped).equals(this.pattern.subarray(within + stamped, within + length))) return false;
      } else if (!got.equals(this.pattern.subarray(within, within + length))) return false;
      at += length;
    }
    return true;
  }

  /** One untimed pass, so the client's hashing stays out of the push timing. */
  digest(): string {
    const hash = createHash('sha256');
    for (const chunk of this.chunks()) hash.update(chunk);
    return `sha256:${hash.digest('hex')}`;
  }
}

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
}

/** One request whose body is written from `chunks` honouring backpressure. */
async function send(url: string, method: string, headers: http.OutgoingHttpHeaders, chunks: Iterable<Buffer> = []): Promise<RawResponse> {
  const req = http.request(url, { method, headers });
  const response = once(req, 'response') as Promise<[http.IncomingMessage]>;
  let answered = false;
  void response.then(
    () => (answered = true),
    () => (answered = true),
  );
  for (const chunk of chunks) {
    // A server may answer (an error) before the body is complete: stop sending then.
    if (answered) break;
    if (!req.write(chunk)) await Promise.race([once(req, 'drain').catch(() => undefined), response]);
  }
  req.end();
  const [res] = await response;
  res.resume();
  await once(res, 'end');
  return { status: res.statusCode ?? 0, headers: res.headers };
}

/** POST, one streamed PATCH without Content-Range, PUT ?digest= — as docker pushes a layer. */
export async function streamPush(baseUrl: string, blob: PatternBlob, digest: string, repo = REPO): Promise<RawResponse> {
  const started = await send(`${baseUrl}/v2/${repo}/blobs/uploads/`, 'POST', { 'content-length': 0 });
  if (started.status !== 202) return started;
  const patchUrl = new URL(started.headers.location!, baseUrl);
  const patched = await send(
    patchUrl.toString(),
    'PATCH',
    { 'content-type': 'application/octet-stream', 'content-length': blob.size },
    blob.chunks(),
  );
  if (patched.status !== 202) return patched;
  const putUrl = new URL(patched.headers.location!, baseUrl);
  putUrl.searchParams.set('digest', digest);
  return send(putUrl.toString(), 'PUT', { 'content-length': 0 });
}

/** GET the blob, hashing every byte received. */
export async function pullAndHash(
  baseUrl: string,
  digest: string,
  repo = REPO,
): Promise<{ status: number; bytes: number; digest: string }> {
  const req = http.get(`${baseUrl}/v2/${repo}/blobs/${digest}`);
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { status: res.statusCode ?? 0, bytes, digest: `sha256:${hash.digest('hex')}` };
}

export function blobStreamWorkload(options: BenchOptions): Workload {
  const blob = new PatternBlob(options.blobSize);
  let digest = '';
  return {
    id: 'blob-stream',
    title: `Single-stream push and pull of one ${formatSize(options.blobSize)} blob`,
    figures: [
      {
        id: 'blob-push',
        label: `Blob push, 1 stream (${formatSize(options.blobSize)})`,
        unit: 'MB/s',
        better: 'higher',
        target: { ratioAtLeast: 2 },
      },
      {
        id: 'blob-pull',
        label: `Blob pull, 1 stream (${formatSize(options.blobSize)})`,
        unit: 'MB/s',
        better: 'higher',
        target: { ratioAtLeast: 1 },
      },
    ],
    async prepare() {
      digest = blob.digest();
    },
    async run(ctx: WorkloadContext) {
      const base = ctx.server.url;
      ctx.startMeasuring();
      const pushStart = performance.now();
      const pushed = await streamPush(base, blob, digest);
      const pushMs = performance.now() - pushStart;
      ctx.check(pushed.status === 201, 'blob push answered 201', `got ${pushed.status}`);
      ctx.check(pushed.headers['docker-content-digest'] === digest, 'blob push returned the digest that was sent');

      const pullStart = performance.now();
      const pulled = await pullAndHash(base, digest);
      const pullMs = performance.now() - pullStart;
      ctx.check(pulled.status === 200, 'blob pull answered 200', `got ${pulled.status}`);
      ctx.check(pulled.bytes === blob.size && pulled.digest === digest, 'pulled blob has the size and digest pushed');
      return { 'blob-push': mbPerSecond(blob.size, pushMs), 'blob-pull': mbPerSecond(blob.size, pullMs) };
    },
  };
}
