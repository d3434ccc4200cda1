import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCopyCommand,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { z } from 'zod';
import type { BerthConfig } from '../config/schema.js';
import { BlobTooLargeError, RegistryError } from '../core/errors.js';
import { BlobNotFoundError, UploadNotFoundError, type BlobStore, type ByteRange, type StagingState } from '../core/ports.js';

export type S3StorageConfig = NonNullable<BerthConfig['storage']['s3']>;

/** S3's smallest part in a multipart upload (all but the last part). */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's largest number of parts in a multipart upload. */
const MAX_PARTS = 10_000;
/** Server-side part copies in flight at once while assembling a blob. */
const COPY_CONCURRENCY = 4;
/** Connections to S3 open at once (per process). */
const MAX_SOCKETS = 256;
/** Lifetime of a presigned GET URL (Distribution's default is 20 minutes too). */
const REDIRECT_EXPIRY_SECONDS = 20 * 60;

/**
 * What an upload in progress consists of: segment objects under uploads/<id>/, in order,
 * with their sizes. Every segment but the last is at least MIN_PART_SIZE, so any prefix of
 * the list can be assembled by a server-side multipart copy. The core persists this in the
 * metadata DB after every append, so any replica can continue the upload: nothing about an
 * upload lives in process memory, and nothing depends on listing multipart uploads.
 */
const stagingSchema = z.object({
  segments: z.array(z.object({ name: z.string().regex(/^[0-9]{5}-[0-9a-f]{12}$/), size: z.number().int().nonnegative() })),
});
type Staging = z.infer<typeof stagingSchema>;
type Segment = Staging['segments'][number];

/** A stretch `[0, length)` of a segment: what a blob or a read is assembled from. */
interface SegmentSlice {
  name: string;
  length: number;
  /** True when the slice is the whole segment. */
  whole: boolean;
}

/**
 * Blob storage in an S3 bucket (AWS S3 or an S3-compatible server).
 *
 * Layout under the configured root directory (key prefix):
 *   blobs/<algorithm>/<first two hex chars>/<hex>   committed, immutable content
 *   uploads/<upload id>/<nnnnn>-<random>             segments of an upload in progress
 *
 * Appends are buffered one segment (chunksize bytes) at a time and each segment is
 * stored with a single PutObject. Commit is a server-side CopyObject (one segment) or a
 * multipart upload assembled with UploadPartCopy (several): blob bytes never travel
 * through Berth twice, and a blob becomes visible only when S3 has stored all of it.
 * Segment names carry a random suffix, so a failed or concurrent append never
 * overwrites a segment that a persisted StagingState refers to.
 */
export class S3BlobStore implements BlobStore {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly chunkSize: number;

  constructor(private readonly config: S3StorageConfig) {
    this.client = createS3Client(config);
    this.bucket = config.bucket;
    const root = config.rootdirectory.replace(/^\/+|\/+$/g, '');
    this.prefix = root ? `${root}/` : '';
    this.chunkSize = config.chunksize;
  }

  /**
   * Key of a blob. Besides real digests this accepts any `<algorithm>:<name>` that
   * listBlobs may report (fsck deletes leftovers by that name); a slash never passes.
   */
  blobKey(digest: string): string {
    const m = /^([a-z0-9]+):([A-Za-z0-9._-]{2,})$/.exec(digest);
    if (!m) throw new Error(`invalid digest ${digest}`);
    return `${this.prefix}blobs/${m[1]}/${m[2]!.slice(0, 2)}/${m[2]}`;
  }

  private uploadPrefix(uploadId: string): string {
    if (!/^[A-Za-z0-9-]+$/.test(uploadId)) throw new Error(`invalid upload id ${uploadId}`);
    return `${this.prefix}uploads/${uploadId}/`;
  }

  private segmentKey(uploadId: string, name: string): string {
    return this.uploadPrefix(uploadId) + name;
  }

  async stat(digest: string): Promise<{ size: number } | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) }));
      return { size: head.ContentLength ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async openRange(digest: string, range?: ByteRange): Promise<Readable> {
    try {
      return await this.readObject(this.blobKey(digest), range);
    } catch (err) {
      if (isNotFound(err)) throw new BlobNotFoundError(digest);
      throw err;
    }
  }

  async delete(digest: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) }));
  }

  /** A presigned GET URL for the blob when `redirect` is enabled, else null (serve through Berth). */
  async redirectUrl(digest: string): Promise<string | null> {
    if (!this.config.redirect) return null;
    const command = new GetObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest) });
    return getSignedUrl(this.client, command, { expiresIn: REDIRECT_EXPIRY_SECONDS });
  }

  async createUpload(uploadId: string): Promise<StagingState> {
    this.uploadPrefix(uploadId);
    const staging: Staging = { segments: [] };
    return staging;
  }

  async appendUpload(uploadId: string, state: StagingState, offset: number, source: Readable): Promise<StagingState> {
    const { segments } = parseStaging(state, uploadId);
    const { kept, carry } = this.splitForAppend(uploadId, segments, offset);
    const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const first = await iterator.next();
    // Nothing to append and nothing to truncate: the staged segments stay as they are.
    if (first.done && (!carry || carry.whole)) return { segments: carry ? [...kept, { name: carry.name, size: carry.length }] : kept };

    try {
      const written = await this.writeSegments(uploadId, kept.length, carry, first, iterator);
      const staging: Staging = { segments: [...kept, ...written] };
      return staging;
    } finally {
      // Stops and releases the source if storing failed before it was fully read.
      await iterator.return?.();
    }
  }

  /** Stores the carried bytes followed by the source's, as new segments numbered from `firstIndex`. */
  private async writeSegments(
    uploadId: string,
    firstIndex: number,
    carry: SegmentSlice | undefined,
    first: IteratorResult<Buffer>,
    rest: AsyncIterator<Buffer>,
  ): Promise<Segment[]> {
    const writer = new SegmentWriter(this.chunkSize, firstIndex, (name, body) => this.putSegment(uploadId, name, body));
    if (carry) {
      // The carried tail is re-read and rewritten under a new name together with the new bytes,
      // so every segment but the last stays ≥ MIN_PART_SIZE; the old object becomes garbage,
      // removed at commit or abort (deleting it now would break the persisted state if this
      // request's result is never recorded).
      for await (const chunk of await this.readSegment(uploadId, carry.name, { start: 0, end: carry.length - 1 })) {
        await writer.write(chunk as Buffer);
      }
    }
    if (!first.done) {
      await writer.write(first.value);
      for (let next = await rest.next(); !next.done; next = await rest.next()) await writer.write(next.value);
    }
    await writer.end();
    return writer.written;
  }

  /**
   * Splits the staged segments at `offset`: segments kept as they are, and the segment whose
   * first `length` bytes must be carried into the new data — the one `offset` cuts through
   * (bytes past it come from a failed request), or a last segment too small to be a part.
   */
  private splitForAppend(uploadId: string, segments: Segment[], offset: number): { kept: Segment[]; carry?: SegmentSlice } {
    const total = stagedSize(segments);
    if (offset > total) throw new Error(`upload ${uploadId} holds ${total} staged bytes, expected at least ${offset}`);
    const kept: Segment[] = [];
    let position = 0;
    for (const segment of segments) {
      if (position + segment.size > offset) {
        const length = offset - position;
        return { kept, carry: length > 0 ? { name: segment.name, length, whole: false } : undefined };
      }
      kept.push(segment);
      position += segment.size;
    }
    const last = kept[kept.length - 1];
    if (last && last.size < MIN_PART_SIZE) {
      kept.pop();
      return { kept, carry: { name: last.name, length: last.size, whole: true } };
    }
    return { kept };
  }

  private async putSegment(uploadId: string, name: string, body: Buffer): Promise<void> {
    await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: this.segmentKey(uploadId, name), Body: body, ContentLength: body.length }),
    );
  }

  async readUpload(uploadId: string, state: StagingState, length: number): Promise<Readable> {
    const slices = sliceSegments(parseStaging(state, uploadId).segments, length, uploadId);
    const read = (slice: SegmentSlice) =>
      this.readSegment(uploadId, slice.name, slice.whole ? undefined : { start: 0, end: slice.length - 1 });
    return Readable.from(concatStreams(slices.filter((s) => s.length > 0).map((slice) => () => read(slice))));
  }

  /**
   * The staged bytes still readable: the recorded segments up to the first one missing or
   * shorter than recorded (e.g. deleted by a commit that crashed before it was recorded).
   * One listing of the upload's prefix, not a request per segment.
   */
  async stagedSize(uploadId: string, state: StagingState): Promise<number | null> {
    const { segments } = parseStaging(state, uploadId);
    if (segments.length === 0) return 0;
    const stored = new Map<string, number>();
    for await (const object of this.listObjects(this.uploadPrefix(uploadId))) stored.set(object.key, object.size);
    let size = 0;
    for (const segment of segments) {
      if ((stored.get(this.segmentKey(uploadId, segment.name)) ?? -1) < segment.size) return size;
      size += segment.size;
    }
    return size;
  }

  /** A staged segment (or its first bytes); a missing one means the staging area is gone. */
  private async readSegment(uploadId: string, name: string, range?: ByteRange): Promise<Readable> {
    try {
      return await this.readObject(this.segmentKey(uploadId, name), range);
    } catch (err) {
      if (isNotFound(err)) throw new UploadNotFoundError(uploadId);
      throw err;
    }
  }

  async commitUpload(uploadId: string, state: StagingState, digest: string, size: number): Promise<void> {
    const { segments } = parseStaging(state, uploadId);
    const slices = sliceSegments(segments, size, uploadId).filter((s) => s.length > 0);
    const target = this.blobKey(digest);
    // Content-addressed: if the bytes are already stored under this name, they are these bytes.
    if (!(await this.stat(digest))) await this.assembleStaged(uploadId, state, size, target, slices);
    // The segments stay until core has recorded the blob and calls abortUpload: a DeleteObjects
    // sent here would still run at S3 after this process died, and the session (its row not
    // yet gone) would answer 204 to a status request and then fail for want of its bytes.
  }

  /**
   * Assembles, and tells a lost staging area from a copy that failed for another reason. A copy
   * can answer NoSuchKey while every staged segment is there (seen with s3rver under load, e.g.
   * while a collector deleted an older object of the same content address): the session is not
   * lost then, so the copy is tried once more, and a second failure is an error, not a 404 that
   * would end a session the client could still complete.
   */
  private async assembleStaged(uploadId: string, state: StagingState, size: number, target: string, slices: SegmentSlice[]): Promise<void> {
    try {
      await this.assemble(uploadId, target, slices);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      if ((await this.stagedSize(uploadId, state)) !== size) throw new UploadNotFoundError(uploadId);
      await this.assemble(uploadId, target, slices).catch((again: unknown) => {
        throw isNotFound(again)
          ? new Error(`upload ${uploadId}: copying its staged segments failed twice with ${(again as Error).name}`, { cause: again })
          : again;
      });
    }
  }

  /** Writes `target` from the staged slices: an empty object, one server-side copy, or a multipart copy. */
  private async assemble(uploadId: string, target: string, slices: SegmentSlice[]): Promise<void> {
    const only = slices[0];
    if (slices.length === 0) {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: target, Body: Buffer.alloc(0), ContentLength: 0 }));
    } else if (slices.length === 1 && only!.whole) {
      // Segments are at most chunksize (≤ 5 GiB, CopyObject's limit): one server-side copy.
      await this.client.send(
        new CopyObjectCommand({ Bucket: this.bucket, Key: target, CopySource: this.copySource(this.segmentKey(uploadId, only!.name)) }),
      );
    } else {
      await this.assembleMultipart(uploadId, target, slices);
    }
  }

  /** Builds `target` from segment slices with server-side part copies; nothing becomes visible unless all succeed. */
  private async assembleMultipart(uploadId: string, target: string, slices: SegmentSlice[]): Promise<void> {
    if (slices.length > MAX_PARTS) throw new Error(`upload ${uploadId} has ${slices.length} segments, more than S3's ${MAX_PARTS} parts`);
    const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: target }));
    const multipartId = created.UploadId!;
    try {
      const etags = await mapLimit(slices, COPY_CONCURRENCY, async (slice, index) => {
        const copied = await this.client.send(
          new UploadPartCopyCommand({
            Bucket: this.bucket,
            Key: target,
            UploadId: multipartId,
            PartNumber: index + 1,
            CopySource: this.copySource(this.segmentKey(uploadId, slice.name)),
            CopySourceRange: slice.whole ? undefined : `bytes=0-${slice.length - 1}`,
          }),
        );
        return copied.CopyPartResult!.ETag!;
      });
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: target,
          UploadId: multipartId,
          MultipartUpload: { Parts: etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })) },
        }),
      );
    } catch (err) {
      // Best effort: some S3-compatible servers lack AbortMultipartUpload; a bucket lifecycle
      // rule (AbortIncompleteMultipartUpload, see docs/storage.md) is the backstop.
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: target, UploadId: multipartId })).catch(() => {});
      throw err;
    }
  }

  private copySource(key: string): string {
    return `${this.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  }

  async abortUpload(uploadId: string, state: StagingState): Promise<void> {
    const parsed = stagingSchema.safeParse(state);
    await this.deleteStaging(uploadId, parsed.success ? parsed.data.segments : []);
  }

  /**
   * Deletes an upload's segments: those the state records, plus whatever else sits under
   * its prefix (segments of failed or superseded appends, which no state records).
   */
  private async deleteStaging(uploadId: string, segments: Segment[]): Promise<void> {
    const keys = new Set(segments.map((s) => this.segmentKey(uploadId, s.name)));
    for await (const object of this.listObjects(this.uploadPrefix(uploadId))) keys.add(object.key);
    const all = [...keys];
    for (let i = 0; i < all.length; i += 1000) {
      const batch = all.slice(i, i + 1000);
      const result = await this.client.send(
        new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
      );
      const failed = result.Errors?.[0];
      if (failed) throw new Error(`cannot delete ${failed.Key}: ${failed.Code} ${failed.Message}`);
    }
  }

  /**
   * Every committed blob (for `berth fsck`), listed page by page, named so that `delete` finds
   * it again. Objects not shaped like blobs/<algorithm>/<xx>/<name> are not Berth's: skipped.
   */
  async *listBlobs(): AsyncIterable<{ digest: string; size: number; modifiedAt?: Date }> {
    const root = `${this.prefix}blobs/`;
    for await (const object of this.listObjects(root)) {
      const digest = blobNameOf(object.key.slice(root.length));
      if (digest && this.blobKey(digest) === object.key) yield { digest, size: object.size, modifiedAt: object.modifiedAt };
    }
  }

  /**
   * Every staging area (for `berth fsck`): objects grouped by upload id, which S3 lists
   * contiguously. The size counts every object stored, superseded segments included.
   */
  async *listUploads(): AsyncIterable<{ id: string; size: number; modifiedAt: Date }> {
    const root = `${this.prefix}uploads/`;
    let current: { id: string; size: number; modifiedAt: Date } | undefined;
    for await (const object of this.listObjects(root)) {
      const id = object.key.slice(root.length).split('/')[0]!;
      if (current?.id !== id) {
        if (current) yield current;
        current = { id, size: 0, modifiedAt: object.modifiedAt };
      }
      current.size += object.size;
      if (object.modifiedAt > current.modifiedAt) current.modifiedAt = object.modifiedAt;
    }
    if (current) yield current;
  }

  private async *listObjects(prefix: string): AsyncIterable<{ key: string; size: number; modifiedAt: Date }> {
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const object of page.Contents ?? []) {
        yield { key: object.Key!, size: object.Size ?? 0, modifiedAt: object.LastModified ?? new Date(0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async check(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  /**
   * Streams an object or an inclusive byte range of it. Some S3-compatible servers ignore a
   * Range they consider trivial (s3rver answers `bytes=0-0` with the whole object), so the
   * stream is cut at the requested length rather than trusting the server.
   */
  private async readObject(key: string, range?: ByteRange): Promise<Readable> {
    const response = await this.client.send(
      new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range ? `bytes=${range.start}-${range.end}` : undefined }),
    );
    const body = response.Body as Readable;
    if (!range) return body;
    const expected = range.end - range.start + 1;
    if (response.ContentLength === undefined || response.ContentLength <= expected) return body;
    if (!response.ContentRange?.startsWith(`bytes ${range.start}-`)) {
      body.destroy();
      throw new Error(`storage answered range ${range.start}-${range.end} of ${key} with ${response.ContentRange ?? 'no Content-Range'}`);
    }
    return Readable.from(takeBytes(body, expected));
  }
}

/** Fills one segment buffer at a time and stores it when full: memory stays at one chunksize. */
class SegmentWriter {
  readonly written: Segment[] = [];
  private buffer: Buffer | undefined;
  private filled = 0;

  constructor(
    private readonly chunkSize: number,
    private readonly firstIndex: number,
    private readonly store: (name: string, body: Buffer) => Promise<void>,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    let position = 0;
    while (position < chunk.length) {
      // allocUnsafe: pages are committed only as bytes are copied in, so a tiny append stays tiny.
      this.buffer ??= Buffer.allocUnsafe(this.chunkSize);
      const copied = chunk.copy(this.buffer, this.filled, position);
      this.filled += copied;
      position += copied;
      if (this.filled === this.chunkSize) await this.flush();
    }
  }

  async end(): Promise<void> {
    if (this.filled > 0) await this.flush();
  }

  private async flush(): Promise<void> {
    const index = this.firstIndex + this.written.length;
    if (index >= MAX_PARTS) {
      throw new BlobTooLargeError(
        `blob exceeds ${MAX_PARTS} segments of ${this.chunkSize} bytes, the most S3 can assemble; raise storage.s3.chunksize`,
      );
    }
    const name = `${String(index).padStart(5, '0')}-${randomBytes(6).toString('hex')}`;
    // The SDK is done with the body once the request resolves, so the buffer can be reused.
    await this.store(name, this.buffer!.subarray(0, this.filled));
    this.written.push({ name, size: this.filled });
    this.filled = 0;
  }
}

/** An S3 client for the configured endpoint and credentials, as the adapter uses it. */
export function createS3Client(config: S3StorageConfig): S3Client {
  const options: S3ClientConfig = {
    region: config.region,
    endpoint: config.regionendpoint,
    forcePathStyle: config.forcepathstyle,
    // Without keys in the config the SDK's default chain applies: env, profile, instance/task role.
    credentials: config.accesskey && config.secretkey ? { accessKeyId: config.accesskey, secretAccessKey: config.secretkey } : undefined,
    // A blob GET holds its connection for the whole download: with the SDK's default of 50
    // sockets, slow pullers would make every other S3 call (HEAD, PUT…) queue behind them.
    requestHandler: { httpAgent: { maxSockets: MAX_SOCKETS }, httpsAgent: { maxSockets: MAX_SOCKETS } },
  };
  const client = new S3Client(options);
  // Outermost, so after the SDK's own retries: an endpoint that cannot be reached is a 503
  // for the client (retry later), not a 500.
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (err) {
        throw unreachable(err);
      }
    },
    { step: 'initialize', name: 'berthStorageUnavailable' },
  );
  if (config.forcepathstyle) {
    // Path-style bucket requests (HeadBucket, ListObjectsV2, DeleteObjects) are sent as
    // /<bucket>?… rather than /<bucket>/?…: S3 treats both alike, but some S3-compatible
    // servers (s3rver among them) verify the signature against the form without the slash.
    client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { path?: string };
        const input = args.input as { Bucket?: string; Key?: string };
        if (input.Bucket !== undefined && input.Key === undefined && request.path?.endsWith(`/${input.Bucket}/`)) {
          request.path = request.path.slice(0, -1);
        }
        return next(args);
      },
      { step: 'build', name: 'berthBucketPathWithoutSlash' },
    );
  }
  return client;
}

/** `<algorithm>:<name>` for a key below blobs/ of the form <algorithm>/<xx>/<name>, else null. */
function blobNameOf(relativeKey: string): string | null {
  const parts = relativeKey.split('/');
  return parts.length === 3 && /^[a-z0-9]+$/.test(parts[0]!) && /^[A-Za-z0-9._-]{2,}$/.test(parts[2]!) ? `${parts[0]}:${parts[2]}` : null;
}

function parseStaging(state: StagingState, uploadId: string): Staging {
  const parsed = stagingSchema.safeParse(state);
  if (!parsed.success) throw new Error(`upload ${uploadId} has no valid S3 staging state`);
  return parsed.data;
}

function stagedSize(segments: Segment[]): number {
  return segments.reduce((sum, s) => sum + s.size, 0);
}

/** The segment stretches holding the first `length` staged bytes. */
function sliceSegments(segments: Segment[], length: number, uploadId: string): SegmentSlice[] {
  const total = stagedSize(segments);
  if (length > total) throw new Error(`upload ${uploadId} holds ${total} staged bytes, expected ${length}`);
  const slices: SegmentSlice[] = [];
  let remaining = length;
  for (const segment of segments) {
    if (remaining === 0) break;
    const take = Math.min(segment.size, remaining);
    slices.push({ name: segment.name, length: take, whole: take === segment.size });
    remaining -= take;
  }
  return slices;
}

/** Yields the chunks of each stream in turn, opening the next only when the previous ended. */
async function* concatStreams(open: (() => Promise<Readable>)[]): AsyncGenerator<Buffer> {
  for (const next of open) {
    for await (const chunk of await next()) yield chunk as Buffer;
  }
}

/** The first `length` bytes of a stream, which is then closed. */
async function* takeBytes(stream: Readable, length: number): AsyncGenerator<Buffer> {
  let remaining = length;
  try {
    for await (const chunk of stream) {
      const buffer = chunk as Buffer;
      if (buffer.length >= remaining) {
        yield buffer.subarray(0, remaining);
        return;
      }
      remaining -= buffer.length;
      yield buffer;
    }
  } finally {
    stream.destroy();
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results keep the input order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let nextIndex = 0;
  const worker = async () => {
    while (nextIndex < items.length) {
      const index = nextIndex++;
      results[index] = await fn(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Errors of the connection to S3 (no HTTP response at all) that mean "unreachable". */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** A failure to reach S3 as 503 UNAVAILABLE (S3's own answers, with a status, pass through). */
function unreachable(err: unknown): unknown {
  const e = err as { code?: string; name?: string; $metadata?: { httpStatusCode?: number } };
  if (e?.$metadata?.httpStatusCode !== undefined || err instanceof RegistryError) return err;
  if (!UNREACHABLE_CODES.has(e?.code ?? '') && e?.name !== 'TimeoutError') return err;
  const error = new RegistryError('UNAVAILABLE', 'blob storage unavailable; retry later');
  error.cause = err;
  return error;
}

/** The object is absent (GetObject says NoSuchKey; HeadObject, having no body, just NotFound). */
function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string })?.name;
  return name === 'NoSuchKey' || name === 'NotFound';
}
