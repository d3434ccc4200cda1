import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { RegistryError } from '../core/errors.js';
import type { BlobStore, ByteRange } from '../core/ports.js';

/** What a fill needs from the upstream: the response body and its length. */
export interface UpstreamBody {
  size: number;
  body: Readable;
}

/** Wait before writing bytes again after GC's race rule refused their link (longer than its clock-skew margin, 100 ms). */
const RACE_RETRY_MS = 250;

/** A stalled upstream body (no bytes for this long) fails the fill, so waiting clients get an error instead of hanging. */
const DEFAULT_IDLE_MS = 30_000;

export interface FillDeps {
  blobs: Pick<BlobStore, 'createUpload' | 'appendUpload' | 'adoptUpload' | 'commitUpload' | 'abortUpload' | 'openRange'>;
  /**
   * Records the committed bytes and links them into the repository (Registry.linkCachedBlob);
   * `lastAppendAt`: when the bytes started moving to storage (GC's race rule compares it).
   */
  link(repository: string, digest: string, size: number, lastAppendAt: number): Promise<void>;
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
/** The in-memory stretch of a download (per fill; less for a smaller blob): what waits for the disk, and what readers a little behind read. */
const RING_BYTES = 8 * 1024 * 1024;
/** At most this much per spool write. */
const MAX_WRITE = 4 * 1024 * 1024;

/**
 * The bytes of a download on their way from the upstream to the spool file: copied into one
 * buffer allocated per fill and reused as a ring, so an upstream chunk is garbage as soon as it
 * is hashed and copied (chunks kept alive across garbage collections get promoted and made V8
 * run a full collection every few megabytes). One write in flight takes everything received
 * meanwhile (at most MAX_WRITE); `add` waits only when the ring is full of unspooled bytes.
 * The last RING_BYTES received stay readable from memory (copied out) for readers that are
 * a little behind the download.
 */
class SpoolRing {
  /** Bytes copied in. */
  received = 0;
  /** Bytes written to the spool file. */
  spooled = 0;
  private readonly ring: Buffer;
  private writing: Promise<void> | null = null;
  private failure: Error | null = null;

  constructor(
    private readonly file: FileHandle,
    size: number,
    private readonly onSpooled: () => void,
  ) {
    this.ring = Buffer.allocUnsafeSlow(Math.max(1, Math.min(size, RING_BYTES)));
  }

  async add(bytes: Buffer): Promise<void> {
    const capacity = this.ring.length;
    for (let offset = 0; offset < bytes.length; ) {
      if (this.failure) throw this.failure;
      const room = capacity - (this.received - this.spooled);
      if (room === 0) {
        this.kick();
        await this.writing;
        continue;
      }
      const n = Math.min(room, bytes.length - offset);
      const at = this.received % capacity;
      const first = Math.min(n, capacity - at);
      bytes.copy(this.ring, at, offset, offset + first);
      if (first < n) bytes.copy(this.ring, 0, offset + first, offset + n);
      this.received += n;
      offset += n;
    }
    this.kick();
  }

  /** A copy of bytes [pos, stop) or of a first part of them, or null when they are not in the ring (any more). */
  read(pos: number, stop: number): Buffer | null {
    const capacity = this.ring.length;
    if (pos < this.received - capacity || pos >= this.received) return null;
    const n = Math.min(stop, this.received, pos + READ_CHUNK) - pos;
    if (n <= 0) return null;
    const out = Buffer.allocUnsafe(n);
    const at = pos % capacity;
    const first = Math.min(n, capacity - at);
    this.ring.copy(out, 0, at, at + first);
    if (first < n) this.ring.copy(out, first, 0, n - first);
    return out;
  }

  /** Resolves once every byte added is in the spool file (rejects with a write's error). */
  async flush(): Promise<void> {
    while (this.spooled < this.received) {
      if (this.failure) throw this.failure;
      this.kick();
      await this.writing;
    }
    if (this.failure) throw this.failure;
  }

  private kick(): void {
    if (this.writing || this.failure || this.spooled >= this.received) return;
    const run = this.drain();
    this.writing = run;
    void run.finally(() => {
      if (this.writing === run) this.writing = null;
    });
  }

  private async drain(): Promise<void> {
    const capacity = this.ring.length;
    try {
      while (this.spooled < this.received) {
        const from = this.spooled;
        const to = Math.min(this.received, from + MAX_WRITE);
        const at = from % capacity;
        const first = Math.min(to - from, capacity - at);
        const parts = first < to - from ? [this.ring.subarray(at, at + first), this.ring.subarray(0, to - from - first)] : [this.ring.subarray(at, at + first)];
        const { bytesWritten } = await this.file.writev(parts, from);
        if (bytesWritten === 0) throw new Error('the spool file took no bytes');
        this.spooled = from + bytesWritten;
        this.onSpooled();
      }
    } catch (err) {
      // Reported by the next add() or flush(): nobody may be waiting on this write.
      this.failure = err instanceof Error ? err : new Error(String(err));
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
  /** The download's bytes in memory (until it ends), for the spool writes and readers a little behind. */
  private ring: SpoolRing | null = null;
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
      const ring = new SpoolRing(spool, this.size, () => {
        this.spooled = ring.spooled;
        this.emit('progress');
      });
      this.ring = ring;
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
          // Into the ring: readers take the bytes from memory now; the spool catches up in
          // batches (one write in flight, the upstream paused only when the ring is full).
          await ring.add(bytes);
          this.written += bytes.length;
          this.deps.onBytes?.(bytes.length);
          this.emit('progress');
          // Content-Length bytes are all we need: do not wait on an upstream that is slow to end the body.
          if (this.written === this.size) break;
        }
      } finally {
        clearInterval(idle);
      }
      if (this.written !== this.size) throw new Error(`upstream ended after ${this.written} of ${this.size} bytes`);
      const computed = `sha256:${hash.digest('hex')}`;
      if (computed !== this.digest) throw new Error(`upstream content has digest ${computed}, not ${this.digest}`);
      await ring.flush();
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
      this.ring = null;
      this.emit('progress');
      await spool?.close().catch(() => undefined);
    }
  }

  /**
   * Staging → content address → blob row and link. The spool file itself becomes the staged
   * upload when the storage back end can adopt it (the filesystem: a hard link, so the bytes are
   * written once and the spool stays readable for a retry); otherwise it is copied through
   * appendUpload (S3). A link GC's race rule refused (a collector deleted this digest's bytes
   * while they were being written: BLOB_UPLOAD_INVALID) stores the bytes again from the spool a
   * moment later, as a client would push again (3 attempts).
   */
  private async store(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.storeOnce();
      } catch (err) {
        if (attempt >= 3 || !(err instanceof RegistryError) || err.code !== 'BLOB_UPLOAD_INVALID') throw err;
        await new Promise((resolve) => setTimeout(resolve, RACE_RETRY_MS * attempt));
      }
    }
  }

  private async storeOnce(): Promise<void> {
    const id = `proxy-${randomUUID()}`;
    const { blobs } = this.deps;
    const appendAt = Date.now();
    const adopted = blobs.adoptUpload ? await blobs.adoptUpload(id, this.file) : null;
    let state = adopted ? adopted.state : await blobs.createUpload(id);
    try {
      if (!adopted) state = await blobs.appendUpload(id, state, 0, createReadStream(this.file, { highWaterMark: READ_CHUNK }));
      await blobs.commitUpload(id, state, this.digest, this.size);
      await this.deps.link(this.repository, this.digest, this.size, appendAt);
    } finally {
      await blobs.abortUpload(id, state).catch(() => undefined);
    }
  }

  /** Removes the spool file (after the fill left the coalescing map: readers that opened it keep their descriptor). */
  async cleanup(): Promise<void> {
    await rm(this.file, { force: true });
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
      // Gone: removed after the fill (its bytes then are in the store). A fill that failed
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
   * The bytes of [start, end] as they arrive: from the ring in memory when the reader
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
        const memory = this.ring?.read(pos, stop) ?? null;
        if (memory) {
          pos += memory.length;
          yield memory;
          continue;
        }
        if (pos >= this.spooled) {
          // Received, no longer in the ring and not yet in the spool file: wait for the disk.
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
