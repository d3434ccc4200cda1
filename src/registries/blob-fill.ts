import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { BlobStore, ByteRange } from '../core/ports.js';

/** What a fill needs from the upstream: the response body and its length. */
export interface UpstreamBody {
  size: number;
  body: Readable;
}

/** A stalled upstream body (no bytes for this long) fails the fill, so waiting clients get an error instead of hanging. */
const DEFAULT_IDLE_MS = 30_000;

export interface FillDeps {
  blobs: Pick<BlobStore, 'createUpload' | 'appendUpload' | 'adoptUpload' | 'commitUpload' | 'abortUpload' | 'openRange'>;
  /** Records the committed bytes and links them into the repository (Registry.linkCachedBlob). */
  link(repository: string, digest: string, size: number): Promise<void>;
  /** Where downloads in progress are spooled (one file per fill, removed when it ends). */
  spoolDir: string;
  /** Fail a download that receives no bytes for this long (ms; default 30 s). */
  idleTimeoutMs?: number;
  onBytes?(n: number): void;
  onStored?(repository: string, digest: string, size: number): void;
  onFailed?(repository: string, digest: string, err: Error): void;
}

/** Spool reads of a reader behind the download (one read ahead while the previous part is sent). */
const READ_CHUNK = 512 * 1024;
/** Recent chunks kept in memory per fill: readers behind by less than this never read the spool. */
const RECENT_BYTES = 4 * 1024 * 1024;
/** The spool write in flight may lag the upstream by this much before the upstream is paused. */
const MAX_UNSPOOLED = 16 * 1024 * 1024;
/** At most this many chunks per writev (the OS's IOV_MAX is 1024). */
const MAX_BATCH = 512;

/**
 * Appends chunks to the spool file in batches: one writev in flight, the chunks received
 * meanwhile gathered for the next one (no copy), so the download never waits for a disk round
 * trip per chunk. `add` resolves at once unless MAX_UNSPOOLED bytes wait (then when they are
 * written): memory stays bounded whatever the disk's pace.
 */
class SpoolWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private offset = 0;
  private writing: Promise<void> | null = null;
  private failure: Error | null = null;

  constructor(
    private readonly file: FileHandle,
    private readonly onSpooled: (bytes: number) => void,
  ) {}

  async add(bytes: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    this.writing ??= this.drain();
    if (this.pendingBytes >= MAX_UNSPOOLED) await this.writing;
  }

  /** Resolves once every chunk added is written (rejects with the write's error). */
  async flush(): Promise<void> {
    if (this.writing) await this.writing;
    if (this.failure) throw this.failure;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, MAX_BATCH);
        const length = batch.reduce((sum, b) => sum + b.length, 0);
        this.pendingBytes -= length;
        let { bytesWritten } = await this.file.writev(batch, this.offset);
        // A short write (rare): the rest, one buffer at a time.
        if (bytesWritten < length) {
          const rest = Buffer.concat(batch).subarray(bytesWritten);
          for (let done = 0; done < rest.length; ) done += (await this.file.write(rest, done, rest.length - done, this.offset + bytesWritten + done)).bytesWritten;
          bytesWritten = length;
        }
        this.offset += length;
        this.onSpooled(this.offset);
      }
    } catch (err) {
      // Reported by the next add() or flush(): nobody may be waiting on this write.
      this.failure = err instanceof Error ? err : new Error(String(err));
    } finally {
      this.writing = null;
    }
  }
}

/**
 * One download of one blob from an upstream, shared by every client that asks for it while it
 * runs (request coalescing), streamed to each of them as it arrives (tee), and stored once it is
 * complete and verified.
 *
 * The upstream body is spooled to a local file while it is hashed; readers follow that file
 * (each from its own offset, at its own pace), so a slow or vanished client never slows or
 * breaks the download, and memory stays constant whatever the blob size. The last bytes reach
 * a reader only after the digest is verified, so no client receives a complete response of
 * bad content. A verified blob goes through the BlobStore's staging (commitUpload: fsync and
 * rename, or S3 complete) and is then linked; a failed or mismatched download is discarded
 * and nothing is recorded: the stored copy is whole or absent.
 */
export class BlobFill extends EventEmitter {
  /** Bytes received from the upstream, spooled and handed to live readers. */
  written = 0;
  /** Bytes in the spool file (at most `written`: chunks are handed on first, then spooled in batches). */
  spooled = 0;
  /** Set once the digest matched (readers may then finish). */
  verified = false;
  /** Set once the blob is committed and linked (or the fill failed). */
  settled = false;
  error: Error | null = null;
  /** The latest chunks received (at most RECENT_BYTES), for readers a little behind: no disk read. */
  private recent: { start: number; bytes: Buffer }[] = [];
  private recentBytes = 0;
  private readonly file: string;
  private readonly done: Promise<void>;

  constructor(
    readonly repository: string,
    readonly digest: string,
    readonly size: number,
    upstream: Readable,
    private readonly deps: FillDeps,
  ) {
    super();
    this.setMaxListeners(0);
    this.file = path.join(deps.spoolDir, `${randomUUID()}.part`);
    this.done = this.run(upstream);
    this.done.catch(() => undefined);
  }

  /** Resolves when the fill has ended, stored or not. */
  finished(): Promise<void> {
    return this.done.then(
      () => undefined,
      () => undefined,
    );
  }

  private async run(upstream: Readable): Promise<void> {
    let spool: FileHandle | null = null;
    try {
      await mkdir(this.deps.spoolDir, { recursive: true });
      spool = await open(this.file, 'w', 0o600);
      const hash = createHash('sha256');
      const writer = new SpoolWriter(spool, (spooled) => {
        this.spooled = spooled;
        this.emit('progress');
      });
      const idleMs = this.deps.idleTimeoutMs ?? DEFAULT_IDLE_MS;
      // Checked a few times per idleMs (re-arming a timer for every chunk costs more than the hashing).
      let seen = -1;
      let lastBytesAt = Date.now();
      const idle = setInterval(
        () => {
          if (this.written !== seen) {
            seen = this.written;
            lastBytesAt = Date.now();
          } else if (Date.now() - lastBytesAt >= idleMs) upstream.destroy(new Error(`the upstream sent no bytes for ${idleMs} ms`));
        },
        Math.max(10, Math.floor(idleMs / 4)),
      );
      try {
        for await (const chunk of upstream) {
          const bytes = chunk as Buffer;
          if (this.written + bytes.length > this.size) throw new Error(`upstream sent more than the ${this.size} bytes it announced`);
          hash.update(bytes);
          this.remember(this.written, bytes);
          this.written += bytes.length;
          this.deps.onBytes?.(bytes.length);
          // Readers take the chunk from memory now; the spool catches up in batches (one write
          // in flight, the upstream paused only when too much waits for the disk).
          this.emit('progress');
          await writer.add(bytes);
          // Content-Length bytes are all we need: do not wait on an upstream that is slow to end the body.
          if (this.written === this.size) break;
        }
      } finally {
        clearInterval(idle);
      }
      if (this.written !== this.size) throw new Error(`upstream ended after ${this.written} of ${this.size} bytes`);
      const computed = `sha256:${hash.digest('hex')}`;
      if (computed !== this.digest) throw new Error(`upstream content has digest ${computed}, not ${this.digest}`);
      await writer.flush();
      await spool.close();
      spool = null;
      // Every byte is in the spool before the tail is released: a reader behind finds them there.
      this.verified = true;
      this.emit('progress');
      await this.store();
      this.deps.onStored?.(this.repository, this.digest, this.size);
    } catch (err) {
      this.error = err instanceof Error ? err : new Error(String(err));
      upstream.destroy();
      this.deps.onFailed?.(this.repository, this.digest, this.error);
      throw this.error;
    } finally {
      this.settled = true;
      this.recent = [];
      this.recentBytes = 0;
      this.emit('progress');
      await spool?.close().catch(() => undefined);
    }
  }

  /**
   * Staging → content address → blob row and link. The spool file itself becomes the staged
   * upload when the storage back end can adopt it (the filesystem: a rename, so the bytes are
   * written once); otherwise it is copied through appendUpload (S3). Readers that opened the
   * spool keep their descriptor; later ones read the stored blob.
   */
  private async store(): Promise<void> {
    const id = `proxy-${randomUUID()}`;
    const { blobs } = this.deps;
    const adopted = blobs.adoptUpload ? await blobs.adoptUpload(id, this.file) : null;
    let state = adopted ? adopted.state : await blobs.createUpload(id);
    try {
      if (!adopted) state = await blobs.appendUpload(id, state, 0, createReadStream(this.file, { highWaterMark: READ_CHUNK }));
      await blobs.commitUpload(id, state, this.digest, this.size);
      await this.deps.link(this.repository, this.digest, this.size);
    } finally {
      await blobs.abortUpload(id, state).catch(() => undefined);
    }
  }

  /** Removes the spool file (after the fill left the coalescing map: readers that opened it keep their descriptor). */
  async cleanup(): Promise<void> {
    await rm(this.file, { force: true });
  }

  /** Keeps a chunk among the recent ones, dropping the oldest beyond RECENT_BYTES. */
  private remember(start: number, bytes: Buffer): void {
    this.recent.push({ start, bytes });
    this.recentBytes += bytes.length;
    while (this.recent.length > 1 && this.recentBytes - this.recent[0]!.bytes.length >= RECENT_BYTES) this.recentBytes -= this.recent.shift()!.bytes.length;
  }

  /** Bytes [pos, stop) or a first part of them from the recent chunks, or null when pos is not among them. */
  private fromMemory(pos: number, stop: number): Buffer | null {
    const recent = this.recent;
    if (recent.length === 0 || pos < recent[0]!.start) return null;
    let lo = 0;
    let hi = recent.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (recent[mid]!.start <= pos) lo = mid;
      else hi = mid - 1;
    }
    const chunk = recent[lo]!;
    const from = pos - chunk.start;
    if (from >= chunk.bytes.length) return null;
    const to = Math.min(chunk.bytes.length, stop - chunk.start);
    return from === 0 && to === chunk.bytes.length ? chunk.bytes : chunk.bytes.subarray(from, to);
  }

  /** The next progress: a chunk received, a batch spooled, the digest verified, the end. */
  private next(): Promise<void> {
    return new Promise((resolve) => this.once('progress', () => resolve()));
  }

  /**
   * A reader of `range` (default: all) of the blob, following the download. Falls back to the
   * stored blob when the spool file is already gone (the fill ended in between).
   */
  async reader(range?: ByteRange): Promise<Readable> {
    const start = range?.start ?? 0;
    const end = range?.end ?? this.size - 1;
    let fd: FileHandle;
    try {
      fd = await open(this.file, 'r');
    } catch {
      // Gone: renamed into the store (adopted), or removed after the fill. A fill that failed
      // after verification (linking) may still have committed the bytes: openRange tells.
      if (this.settled && (!this.error || this.verified)) return this.deps.blobs.openRange(this.digest, this.size > 0 ? { start, end } : undefined);
      if (this.error || this.settled) throw this.error ?? new Error('the download ended');
      // Not created yet: wait for the first bytes.
      await this.next();
      return this.reader(range);
    }
    return Readable.from(this.follow(fd, start, end), { objectMode: false });
  }

  /**
   * The bytes of [start, end] as they arrive: from the recent chunks in memory when the reader
   * keeps up, from the spool file when it fell behind. The blob's last byte is handed out only
   * once the digest matched, so a reader never completes a response of bad content.
   */
  private async *follow(fd: FileHandle, start: number, end: number): AsyncGenerator<Buffer> {
    // The next part of the spool, read while the current one is written to the client.
    let ahead: { pos: number; read: Promise<Buffer> } | null = null;
    const readAt = (pos: number, want: number): Promise<Buffer> => {
      const buffer = Buffer.allocUnsafe(want);
      const read = fd.read(buffer, 0, want, pos).then(({ bytesRead }) => (bytesRead === want ? buffer : buffer.subarray(0, bytesRead)));
      read.catch(() => undefined);
      return read;
    };
    try {
      let pos = start;
      while (pos <= end) {
        // A failure after verification (storing failed) leaves verified bytes in the spool: keep serving them.
        if (this.error && !this.verified) throw this.error;
        const releasable = this.verified ? this.size : Math.min(this.written, this.size - 1);
        if (pos >= releasable) {
          await this.next();
          continue;
        }
        const stop = Math.min(end + 1, releasable);
        const memory = this.fromMemory(pos, stop);
        if (memory) {
          pos += memory.length;
          yield memory;
          continue;
        }
        if (pos >= this.spooled) {
          // Received, no longer among the recent chunks and not yet in the spool file: wait for the disk.
          await this.next();
          continue;
        }
        const read: Promise<Buffer> = ahead?.pos === pos ? ahead.read : readAt(pos, Math.min(READ_CHUNK, this.spooled - pos, stop - pos));
        ahead = null;
        const bytes = await read;
        if (bytes.length === 0) {
          await this.next();
          continue;
        }
        pos += bytes.length;
        const more = Math.min(READ_CHUNK, this.spooled - pos, stop - pos);
        if (more > 0) ahead = { pos, read: readAt(pos, more) };
        yield bytes;
      }
    } finally {
      // No read may still use the descriptor when it is closed.
      await ahead?.read.catch(() => undefined);
      await fd.close().catch(() => undefined);
    }
  }
}

/** The fills in progress, by repository and digest: a second request for the same blob joins the first. */
export class BlobFills {
  private readonly fills = new Map<string, Promise<BlobFill | 'stored' | null>>();

  constructor(private readonly deps: FillDeps) {}

  get inProgress(): number {
    return this.fills.size;
  }

  /** Waits for the fills in progress to end (at shutdown), at most `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    const running = [...this.fills.values()].map((p) => p.then((fill) => (fill instanceof BlobFill ? fill.finished() : undefined), () => undefined));
    await Promise.race([Promise.all(running), new Promise((resolve) => setTimeout(resolve, timeoutMs).unref())]);
  }

  /**
   * The fill of `digest` in `repository`: the running one, or a new one started with
   * `fetch` (null when the upstream has no such blob; 'stored' when `fetch` found it stored
   * meanwhile: a fill that just ended). `joined` tells whether it was running.
   */
  async get(repository: string, digest: string, fetch: () => Promise<UpstreamBody | 'stored' | null>): Promise<{ fill: BlobFill | 'stored' | null; joined: boolean }> {
    const key = `${repository}@${digest}`;
    const running = this.fills.get(key);
    if (running) return { fill: await running, joined: true };
    const started = (async () => {
      const upstream = await fetch();
      if (upstream === null || upstream === 'stored') return upstream;
      const fill = new BlobFill(repository, digest, upstream.size, upstream.body, this.deps);
      void fill.finished().then(async () => {
        this.fills.delete(key);
        await fill.cleanup();
      });
      return fill;
    })();
    this.fills.set(key, started);
    started.then(
      (fill) => {
        if (!(fill instanceof BlobFill)) this.fills.delete(key);
      },
      () => this.fills.delete(key),
    );
    return { fill: await started, joined: false };
  }
}
