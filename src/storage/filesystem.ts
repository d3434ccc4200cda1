import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { returnBuffer, sizeWithin, takeBuffer } from './buffer-pool.js';
import { FileRangeStream } from './file-range-stream.js';
import { droppedChunkBytes } from '../runtime/young-garbage.js';
import { BlobNotFoundError, UploadNotFoundError, type BlobStore, type ByteRange, type StagingState } from '../core/ports.js';

/**
 * Blob storage on a local filesystem.
 *
 * Layout under the root directory:
 *   blobs/<algorithm>/<first two hex chars>/<hex>   committed, immutable content
 *   uploads/<upload id>                              staging file of an upload in progress
 *
 * A blob appears under blobs/ only by rename(2) of a fully written, fsynced staging
 * file (both live on the same filesystem), so a reader never sees a partial blob,
 * and a crash leaves either the old state or the complete new one.
 */
/**
 * Only the user Berth runs as reads blobs and staging files (docs/security.md#secrets-at-rest):
 * directories are created 0700, staging files 0600 (a blob keeps its staging file's mode
 * through the rename). Existing ones keep their modes.
 */
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

export class FilesystemBlobStore implements BlobStore {
  private readonly blobsDir: string;
  private readonly uploadsDir: string;

  constructor(readonly root: string) {
    this.blobsDir = path.join(root, 'blobs');
    this.uploadsDir = path.join(root, 'uploads');
  }

  async init(): Promise<this> {
    await fs.mkdir(this.blobsDir, { recursive: true, mode: DIR_MODE });
    await fs.mkdir(this.uploadsDir, { recursive: true, mode: DIR_MODE });
    return this;
  }

  blobPath(digest: string): string {
    const [algorithm, hex] = digest.split(':') as [string, string];
    return path.join(this.blobsDir, algorithm, hex.slice(0, 2), hex);
  }

  private uploadPath(uploadId: string): string {
    if (!/^[A-Za-z0-9-]+$/.test(uploadId)) throw new Error(`invalid upload id ${uploadId}`);
    return path.join(this.uploadsDir, uploadId);
  }

  async stat(digest: string): Promise<{ size: number } | null> {
    try {
      return { size: (await fs.stat(this.blobPath(digest))).size };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async openRange(digest: string, range?: ByteRange): Promise<Readable> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.blobPath(digest), 'r');
    } catch (err) {
      if (isNotFound(err)) throw new BlobNotFoundError(digest);
      throw err;
    }
    return new FileRangeStream(handle, range?.start ?? 0, range?.end ?? Infinity);
  }

  async delete(digest: string): Promise<void> {
    await fs.rm(this.blobPath(digest), { force: true });
  }

  async createUpload(uploadId: string): Promise<StagingState> {
    const handle = await fs.open(this.uploadPath(uploadId), 'wx', FILE_MODE);
    await handle.close();
    return null;
  }

  async appendUpload(uploadId: string, _state: StagingState, offset: number, source: Readable): Promise<StagingState> {
    const file = this.uploadPath(uploadId);
    const handle = await fs.open(file, 'r+').catch(notFoundAs(uploadId));
    try {
      const { size } = await handle.stat();
      // Fewer bytes than the session recorded (lost in a power failure): it cannot continue.
      if (size < offset) throw new UploadNotFoundError(uploadId);
      // Bytes past `offset` come from a request that failed before its size was recorded: drop them.
      if (size > offset) await handle.truncate(offset);
      await stage(handle, source, offset);
      // The caller records the new size next and answers 202: the bytes must be on disk first
      // (fsync through any descriptor of the file flushes all of its data).
      await handle.sync();
    } finally {
      await handle.close();
    }
    return null;
  }

  async stagedSize(uploadId: string): Promise<number | null> {
    try {
      return (await fs.stat(this.uploadPath(uploadId))).size;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async readUpload(uploadId: string, _state: StagingState, length: number): Promise<Readable> {
    const handle = await fs.open(this.uploadPath(uploadId), 'r').catch(notFoundAs(uploadId));
    if (length === 0) {
      await handle.close();
      return Readable.from([]);
    }
    return handle.createReadStream({ start: 0, end: length - 1, highWaterMark: 1024 * 1024, autoClose: true });
  }

  async commitUpload(uploadId: string, _state: StagingState, digest: string, size: number): Promise<void> {
    const staging = this.uploadPath(uploadId);
    const target = this.blobPath(digest);
    const handle = await fs.open(staging, 'r+').catch(notFoundAs(uploadId));
    try {
      const stat = await handle.stat();
      if (stat.size > size) await handle.truncate(size);
      else if (stat.size < size) throw new UploadNotFoundError(uploadId);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (await this.stat(digest)) {
      // Content-addressed: identical bytes are already durable under this name.
      await fs.rm(staging, { force: true });
      return;
    }
    const dir = path.dirname(target);
    await fs.mkdir(dir, { recursive: true, mode: DIR_MODE });
    await fs.rename(staging, target);
    await syncDirectory(dir);
  }

  async adoptUpload(uploadId: string, file: string): Promise<{ state: StagingState } | null> {
    const staging = this.uploadPath(uploadId);
    try {
      await fs.chmod(file, FILE_MODE);
      // A hard link, not a rename: the caller's file stays readable (a retry stores it again).
      await fs.link(file, staging);
    } catch (err) {
      // Another filesystem (a spool directory elsewhere): the caller copies instead.
      if ((err as NodeJS.ErrnoException).code === 'EXDEV') return null;
      throw err;
    }
    return { state: null };
  }

  async abortUpload(uploadId: string): Promise<void> {
    await fs.rm(this.uploadPath(uploadId), { force: true });
  }

  /** Walks blobs/<algorithm>/<xx>/<hex> lazily, one directory at a time (bounded memory). */
  async *listBlobs(): AsyncIterable<{ digest: string; size: number; modifiedAt: Date }> {
    for await (const algorithm of await fs.opendir(this.blobsDir)) {
      if (!algorithm.isDirectory()) continue;
      const algorithmDir = path.join(this.blobsDir, algorithm.name);
      for await (const prefix of await fs.opendir(algorithmDir)) {
        if (!prefix.isDirectory()) continue;
        const prefixDir = path.join(algorithmDir, prefix.name);
        for await (const entry of await fs.opendir(prefixDir)) {
          if (!entry.isFile()) continue;
          // A blob deleted (e.g. by GC) while we listed is simply gone.
          const stat = await fs.stat(path.join(prefixDir, entry.name)).catch(() => null);
          if (stat) yield { digest: `${algorithm.name}:${entry.name}`, size: stat.size, modifiedAt: stat.mtime };
        }
      }
    }
  }

  async *listUploads(): AsyncIterable<{ id: string; size: number; modifiedAt: Date }> {
    for await (const entry of await fs.opendir(this.uploadsDir)) {
      if (!entry.isFile()) continue;
      // A staging file committed or aborted while we listed is simply gone.
      const stat = await fs.stat(path.join(this.uploadsDir, entry.name)).catch(() => null);
      if (stat) yield { id: entry.name, size: stat.size, modifiedAt: stat.mtime };
    }
  }

  async check(): Promise<void> {
    await fs.access(this.blobsDir);
    await fs.access(this.uploadsDir);
  }

  async close(): Promise<void> {}
}

/**
 * Bytes per write(2) of an upload while at most four are staged at once; halved as more run,
 * down to STAGE_MIN. Not more: on the bench machine (Linux 6.18, ext4, a VM) writing 1 GiB in
 * 2 or 4 MiB write(2)s took 6 to 10 s and 2 to 3 s of system CPU, in 1 MiB ones 0.3 to 0.6 s
 * and 0.3 s (the kernel copies larger writes into large folios it must first find memory for).
 */
const STAGE_MAX = 1024 * 1024;
const STAGE_MIN = 128 * 1024;
/**
 * What the staging buffers of all uploads being written may take together (two each): 8
 * skopeo processes pushing layers get 512 KiB each. 16 MiB raised that workload's peak RSS
 * by ~5 MB, past the 150 MB budget.
 */
const STAGE_BUDGET = 8 * 1024 * 1024;
let staging = 0;
/**
 * Bytes after which a staged upload starts an fdatasync(2) in the background (one at a time)
 * while it keeps receiving: the disk writes the blob back while the network delivers the rest,
 * and the fsync before the 202 only waits for the last of it. Without, a multi-GB PATCH left
 * gigabytes dirty (the kernel starts writing back at 10 % of memory) for that final fsync.
 */
const SYNC_EVERY = 64 * 1024 * 1024;

/**
 * Writes `source` into the file from `position` on. Each chunk of the request body is copied
 * into one of two pooled buffers as it arrives and then dropped, so it dies young (a minor GC
 * frees it); a full buffer goes to the file in one write(2) while the other fills. A stream
 * that queued the chunks until the write completed kept them across minor GCs into the old
 * generation: pushing 1 GiB ran a full mark-compact every 64 MiB, a quarter of the server's
 * CPU (perf; bench --big).
 */
async function stage(handle: fs.FileHandle, source: Readable, position: number): Promise<void> {
  const size = sizeWithin(STAGE_BUDGET, ++staging, STAGE_MIN, STAGE_MAX);
  let [buffer, spare] = [takeBuffer(size), takeBuffer(size)];
  let filled = 0;
  let inFlight: Promise<void> | undefined;
  let syncing: Promise<void> | undefined;
  // Linux reports a writeback error to a descriptor once: the fsync before the 202 may not see
  // what an early one did, so an early failure fails the append.
  let syncFailure: unknown;
  let unsynced = 0;
  const flush = async () => {
    await inFlight;
    if (unsynced >= SYNC_EVERY && !syncing) {
      unsynced = 0;
      syncing = handle.datasync().then(
        () => void (syncing = undefined),
        (err: unknown) => void ((syncFailure ??= err), (syncing = undefined)),
      );
    }
    inFlight = writeFully(handle, buffer, filled, position);
    // Observed now, awaited at the next flush or the end: a source failing meanwhile must not
    // leave an unhandled rejection.
    inFlight.catch(() => undefined);
    position += filled;
    unsynced += filled;
    [buffer, spare] = [spare, buffer];
    filled = 0;
  };
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      for (let at = 0; at < chunk.length;) {
        const copied = chunk.copy(buffer, filled, at);
        filled += copied;
        at += copied;
        if (filled === buffer.length) await flush();
      }
      droppedChunkBytes(chunk.length);
    }
    if (filled > 0) await flush();
    await inFlight;
    await syncing;
    if (syncFailure) throw syncFailure;
  } finally {
    staging--;
    // Neither buffer goes back while a write may still read it, nor the handle close under a sync.
    await inFlight?.catch(() => undefined);
    await syncing;
    returnBuffer(buffer);
    returnBuffer(spare);
  }
}

/** write(2) until all `length` bytes of `buffer` are in the file at `position`. */
async function writeFully(handle: fs.FileHandle, buffer: Buffer, length: number, position: number): Promise<void> {
  for (let done = 0; done < length;) {
    const { bytesWritten } = await handle.write(buffer, done, length - done, position + done);
    done += bytesWritten;
  }
}

/** fsync a directory so a rename inside it survives power loss. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Rejection handler: a missing staging file becomes UploadNotFoundError, anything else passes through. */
function notFoundAs(uploadId: string): (err: unknown) => never {
  return (err) => {
    throw isNotFound(err) ? new UploadNotFoundError(uploadId) : err;
  };
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}
