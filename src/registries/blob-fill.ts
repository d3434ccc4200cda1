import { createHash, randomUUID, type Hash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import http from 'node:http';
import net from 'node:net';
import { Readable, type Writable } from 'node:stream';
import { RegistryError } from '../core/errors.js';
import type { BlobStore, ByteRange } from '../core/ports.js';
import { alignedBuffers, DIRECT_ALIGN, isAlignmentError, openDirect } from '../runtime/direct-io.js';
import { droppedChunkBytes } from '../runtime/young-garbage.js';
import { bodyReader, type ReadSink } from './socket-reads.js';

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

/** Bytes per spool read of a reader (and so per write to its client: few, large socket writes). */
const READ_CHUNK = 1024 * 1024;
/** Bytes per segment of a download's in-memory stretch (less for a smaller blob): readers that keep up are served these buffers. */
const SEGMENT_BYTES = 1024 * 1024;
/** Segments a download keeps in memory (8 MiB): what waits for the disk, and how far a reader may lag and still be served from memory. */
const SEGMENTS = 8;
/** A reader that takes no bytes for this long no longer paces the download (a stalled or very slow client: < 1 MiB per STALL_MS). */
const STALL_MS = 500;
/** At most this much per spool write. */
const MAX_WRITE = 4 * 1024 * 1024;
/** Spool writes in flight at once: with one, the disk idles between a write's end and the next (the event loop's turn). */
const WRITES_IN_FLIGHT = 2;
/** At least this much per spool write, unless the upstream paused for MIN_WAIT_MS or the download ended. */
const MIN_WRITE = 1024 * 1024;
const MIN_WAIT_MS = 5;

/**
 * One SEGMENT_BYTES stretch of a download in memory; `writes`: socket writes of it still in
 * flight; `release`: set when the download moved on while writes held it, called by the last.
 */
interface Segment {
  readonly buf: Buffer;
  readonly index: number;
  writes: number;
  release?: () => void;
}

/** A socket write of `segment` ended: the last one hands a segment the download moved past back to it. */
function writeEnded(segment: Segment): void {
  if (--segment.writes > 0 || !segment.release) return;
  const release = segment.release;
  segment.release = undefined;
  release();
}

/**
 * The bytes of a download on their way from the upstream to the spool file and to the readers
 * that keep up, in segments (at most SEGMENTS, recycled): the upstream's connection reads
 * straight into them (room() and filled(): socket-reads.ts), or a stream's chunks are copied in
 * (add()), so an upstream chunk is garbage as soon as it is hashed and copied. Chunks kept alive
 * until a write took them get promoted and make V8 run a full collection every few megabytes
 * (holding them instead of copying: 6.5–7.5 s of GC per GiB). Up to WRITES_IN_FLIGHT spool
 * writes run at once, each taking what was received (at most MAX_WRITE); the download waits
 * only when every segment holds bytes not spooled or not sent yet.
 *
 * A reader whose next byte is still in a segment is served from it (a socket write of the
 * segment itself, no spool read: each byte crosses the kernel three times instead of four); a
 * reader that fell further behind than the segments reach reads the spool file. A segment that
 * a client's socket write still holds when it is due for reuse is left to that write, and a
 * fresh one is taken; it comes back to the download when the write ends. A stalled client never
 * stalls the download, and holds at most the segment of its one write in flight.
 *
 * A blob of a segment or more is spooled with O_DIRECT where the filesystem allows (its segments
 * are then page-aligned memory, and every write but the last covers whole pages; the last bytes
 * go through the buffered handle): the spool is written once, read back only by readers that
 * fell behind, and on the VMs measured a buffered write's page-cache copy was most of a first
 * pull's CPU (1.1–1.8 CPU-s per GiB, 0.06–0.14 with O_DIRECT). A write the device refuses as
 * misaligned turns O_DIRECT off for the rest of the download.
 */
export class SpoolWriter {
  /** Bytes copied in. */
  received = 0;
  /** Bytes written to the spool file. */
  spooled = 0;
  /** Of those, bytes written with O_DIRECT and through the page cache (observability, tests). */
  readonly writes = { direct: 0, buffered: 0 };
  readonly segmentBytes: number;
  /** The segments in memory by index, oldest first (inserted in increasing index order). */
  private readonly live = new Map<number, Segment>();
  private readonly idle: Buffer[] = [];
  /** Page-aligned segment buffers not handed out yet (O_DIRECT). */
  private aligned: Buffer[] | null = null;
  private readonly capacity: number;
  /** Bytes handed to spool writes (those in flight may end in any order; `spooled` follows the ones ended without a gap). */
  private issued = 0;
  private inFlight = 0;
  /** Writes ended beyond a gap (one still in flight before them): start → end. */
  private readonly ended = new Map<number, number>();
  private nextWrite: Promise<void> | null = null;
  private wroteOne: (() => void) | null = null;
  private failure: Error | null = null;
  /** Writes less than MIN_WRITE only after this (an upstream sending slowly); one timer at a time. */
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly file: FileHandle,
    /** The same file opened with O_DIRECT, or null (every write buffered). */
    private direct: FileHandle | null,
    private readonly size: number,
    private readonly onSpooled: () => void,
    private readonly onSegment: () => void,
    /** Resolves once `oldest` (its bytes end there) may be reused as far as the readers are concerned. */
    private readonly readersDone: (end: number) => Promise<void> | null,
  ) {
    this.segmentBytes = Math.max(1, Math.min(size, SEGMENT_BYTES));
    this.capacity = Math.max(1, Math.min(SEGMENTS, Math.ceil(size / this.segmentBytes)));
  }

  /** Where spool writes may end now: O_DIRECT writes end on a page boundary until the download's last bytes are in. */
  private get writableEnd(): number {
    return this.direct && this.received < this.size ? this.received - (this.received % DIRECT_ALIGN) : this.received;
  }

  /** A buffer for a new segment: page-aligned for O_DIRECT (one allocation for the first `capacity`, then one by one). */
  private freshBuffer(): Buffer {
    if (!this.direct) return Buffer.allocUnsafeSlow(this.segmentBytes);
    this.aligned ??= alignedBuffers(this.capacity, this.segmentBytes);
    return this.aligned.pop() ?? alignedBuffers(1, this.segmentBytes)[0]!;
  }

  /** Closes the O_DIRECT handle (the end of the download, or a write it refused). */
  async closeDirect(): Promise<void> {
    const direct = this.direct;
    this.direct = null;
    await direct?.close().catch(() => undefined);
  }

  /** The segment holding byte `offset`, if it is in memory and received (up to `received`). */
  segmentAt(offset: number): Segment | undefined {
    return this.live.get(Math.floor(offset / this.segmentBytes));
  }

  /** Copies `bytes` in (waiting for a segment when every one holds bytes not spooled or not sent yet). */
  async add(bytes: Buffer): Promise<void> {
    for (let offset = 0; offset < bytes.length;) {
      let room = this.room(bytes.length - offset);
      while (room instanceof Promise) {
        await room;
        room = this.room(bytes.length - offset);
      }
      bytes.copy(room, 0, offset, offset + room.length);
      this.filled(room.length);
      offset += room.length;
    }
  }

  /**
   * Memory for the download's next bytes (at most `max`): the rest of the current segment, or
   * of a segment taken for them; or a promise to wait on before asking again when every
   * segment still holds bytes not spooled or not sent yet. filled() says how much of it was used.
   */
  room(max: number): Buffer | Promise<void> {
    if (this.failure) throw this.failure;
    const size = this.segmentBytes;
    const index = Math.floor(this.received / size);
    const segment = this.live.get(index) ?? this.take(index);
    if (segment instanceof Promise) return segment;
    const at = this.received - index * size;
    return segment.buf.subarray(at, at + Math.min(size - at, max));
  }

  /** The first `n` bytes of the last room() hold the download's next bytes. */
  filled(n: number): void {
    const at = this.received % this.segmentBytes;
    this.received += n;
    if (at + n === this.segmentBytes || this.received === this.size) this.onSegment();
    this.kick();
  }

  /**
   * A segment for `index`: a new one while fewer than `capacity` are live, else the oldest once
   * it is spooled and sent; or a promise to wait on first (a spool write, or the readers).
   */
  private take(index: number): Segment | Promise<void> {
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.live.size < this.capacity) {
        const segment: Segment = { buf: this.idle.pop() ?? this.freshBuffer(), index, writes: 0 };
        this.live.set(index, segment);
        return segment;
      }
      const oldest = this.live.values().next().value!;
      const end = (oldest.index + 1) * this.segmentBytes;
      if (end > this.spooled) {
        this.kick(true);
        return this.written();
      }
      const pacing = this.readersDone(end);
      if (pacing) return pacing;
      this.live.delete(oldest.index);
      // A socket write still holding it keeps it until it ends (a fresh one is taken meanwhile).
      if (oldest.writes === 0) this.idle.push(oldest.buf);
      else oldest.release = () => this.idle.push(oldest.buf);
    }
  }

  /** Resolves once every byte added is in the spool file (rejects with a write's error); with O_DIRECT, only once the last byte was added. */
  async flush(): Promise<void> {
    while (this.spooled < this.writableEnd) {
      if (this.failure) throw this.failure;
      this.kick(true);
      await this.written();
    }
    if (this.failure) throw this.failure;
  }

  /** True while bytes received wait for a write (readers then expect more soon). */
  get behind(): boolean {
    return this.spooled < this.writableEnd;
  }

  /** Resolves when the next write in flight ends (at once when none is). */
  private written(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return (this.nextWrite ??= new Promise<void>((resolve) => (this.wroteOne = resolve)));
  }

  /**
   * Starts writes of what is pending, up to WRITES_IN_FLIGHT at a time: at least MIN_WRITE each
   * (few, large writes), or all of it when `force`d or MIN_WAIT_MS later.
   */
  private kick(force = false): void {
    while (!this.failure && this.inFlight < WRITES_IN_FLIGHT && this.issued < this.writableEnd) {
      if (!force && this.writableEnd - this.issued < Math.min(MIN_WRITE, this.segmentBytes * this.capacity)) {
        this.timer ??= setTimeout(() => {
          this.timer = null;
          this.kick(true);
        }, MIN_WAIT_MS);
        return;
      }
      const from = this.issued;
      let to = Math.min(this.writableEnd, from + MAX_WRITE);
      // O_DIRECT for whole pages; the download's last bytes (a partial page) through the buffered handle.
      const direct = this.direct !== null && to - (to % DIRECT_ALIGN) > from;
      if (direct) to -= to % DIRECT_ALIGN;
      this.issued = to;
      this.inFlight++;
      void this.write(from, to, direct);
    }
  }

  /** Writes bytes [from, to) (short writes continued), then advances `spooled` over every write ended without a gap before it. */
  private async write(from: number, to: number, direct: boolean): Promise<void> {
    try {
      for (let at = from; at < to;) {
        const parts = this.stretch(at, to);
        const bytesWritten = direct && this.direct ? await this.writeDirect(parts, at) : await this.writeBuffered(parts, at);
        if (bytesWritten === 0) throw new Error('the spool file took no bytes');
        at += bytesWritten;
      }
      this.ended.set(from, to);
      for (let end = this.ended.get(this.spooled); end !== undefined; end = this.ended.get(this.spooled)) {
        this.ended.delete(this.spooled);
        this.spooled = end;
      }
      this.onSpooled();
    } catch (err) {
      // Reported by the next add() or flush(): nobody may be waiting on this write.
      this.failure ??= err instanceof Error ? err : new Error(String(err));
    } finally {
      this.inFlight--;
      const wake = this.wroteOne;
      this.nextWrite = null;
      this.wroteOne = null;
      wake?.();
      // Less than MIN_WRITE left over: written when more comes, or by the timer.
      this.kick();
    }
  }

  /** Bytes [from, to) as views of their segments. */
  private stretch(from: number, to: number): Buffer[] {
    const size = this.segmentBytes;
    const parts: Buffer[] = [];
    for (let at = from; at < to;) {
      const segment = this.live.get(Math.floor(at / size))!;
      const within = at - segment.index * size;
      const n = Math.min(size - within, to - at);
      parts.push(segment.buf.subarray(within, within + n));
      at += n;
    }
    return parts;
  }

  /** An O_DIRECT write; one the device refuses as misaligned is done buffered, and so is every later one. */
  private async writeDirect(parts: Buffer[], at: number): Promise<number> {
    try {
      const { bytesWritten } = await this.direct!.writev(parts, at);
      this.writes.direct += bytesWritten;
      return bytesWritten;
    } catch (err) {
      if (!isAlignmentError(err)) throw err;
      await this.closeDirect();
      return this.writeBuffered(parts, at);
    }
  }

  private async writeBuffered(parts: Buffer[], at: number): Promise<number> {
    const { bytesWritten } = await this.file.writev(parts, at);
    this.writes.buffered += bytesWritten;
    return bytesWritten;
  }
}

/**
 * A reader of bytes [start, end] of a fill, following the download: bytes still in one of its
 * in-memory segments are served from there (a socket write of the segment itself, or a copy
 * for other consumers); bytes already gone from memory (a reader that fell behind, or started
 * late) are read from the spool file in reads of up to READ_CHUNK on the thread pool. It moves
 * back to memory by itself once it catches up. Either way the client gets few, large socket
 * writes. The blob's last byte is handed out only once the digest matched, so a reader never
 * completes a response of bad content; a fill that fails before that destroys the reader with
 * its error (the client's response is cut).
 *
 * Piped into an HTTP response or a socket (a GET), segment bytes are written without a copy
 * (the segment is held until the kernel took them) and spool reads recycle two buffers, each
 * refilled once the kernel has taken its bytes, as the filesystem store's FileRangeStream
 * does: a fresh 1 MiB buffer per read, alive until the client took it, is promoted and freed
 * only by a full collection. Elsewhere (a test's for await) it allocates one per read.
 */
class SpoolReader extends Readable {
  private pos: number;
  /** When it last took bytes (a reader that takes none for STALL_MS no longer paces the download). */
  lastSentAt = Date.now();
  private busy = false;
  private piped = false;
  private reading: Promise<unknown> | null = null;

  constructor(
    private readonly fill: BlobFill,
    private readonly fd: FileHandle,
    start: number,
    private readonly end: number,
  ) {
    super({ highWaterMark: 2 * READ_CHUNK });
    this.pos = start;
    fill.attach(this);
  }

  /** The next byte it will send. */
  get position(): number {
    return this.pos;
  }

  private took(n: number): void {
    this.pos += n;
    this.lastSentAt = Date.now();
    this.fill.emit('sent');
  }

  /**
   * The next bytes (waiting for them, the last one for the digest): piped, a stretch of a
   * segment (`segment` set, its `writes` already counted: the write's callback uncounts it; a
   * count never uncounted only keeps the segment from reuse), else a copy; or read from the
   * spool into `buffer()`; null at the end.
   */
  private async next(buffer: () => Buffer): Promise<{ bytes: Buffer; segment?: Segment } | null> {
    const fill = this.fill;
    for (;;) {
      if (this.pos > this.end || this.destroyed) {
        fill.detach(this);
        return null;
      }
      // A failure after verification (storing failed) leaves verified bytes in the spool: keep serving them.
      if (fill.error && !fill.verified) throw fill.error;
      const limit = fill.verified ? fill.size : fill.size - 1;
      const segment = fill.segmentAt(this.pos);
      if (segment) {
        const base = segment.index * segment.buf.length;
        const stop = Math.min(base + segment.buf.length, this.end + 1, limit);
        const have = Math.min(stop, fill.received);
        // Caught up with a download in full flow: wait for the whole segment (few, large socket
        // writes) rather than send each upstream chunk as it lands.
        if (have > this.pos && (have === stop || !fill.spooling)) {
          const bytes = segment.buf.subarray(this.pos - base, have - base);
          this.took(bytes.length);
          fill.served.memory += bytes.length;
          // Held (or copied) now, before any await: the download reuses a segment nothing holds.
          if (!this.piped) return { bytes: Buffer.from(bytes) };
          segment.writes++;
          return { bytes, segment };
        }
        await fill.next();
        continue;
      }
      const releasable = fill.verified ? fill.size : Math.min(fill.spooled, limit);
      const into = buffer();
      const full = Math.min(into.length, this.end + 1 - this.pos);
      // Caught up with a download in full flow: wait for a whole buffer rather than read each spool write as it lands.
      if (this.pos >= releasable || (releasable - this.pos < full && fill.spooling)) {
        await fill.next();
        continue;
      }
      const want = Math.min(full, releasable - this.pos);
      const read = this.fd.read(into, 0, want, this.pos);
      this.reading = read;
      const { bytesRead } = await read.finally(() => (this.reading = null));
      if (bytesRead === 0) throw new Error(`the spool file ended at byte ${this.pos} of ${fill.size}`);
      this.took(bytesRead);
      fill.served.spool += bytesRead;
      return { bytes: bytesRead === into.length ? into : into.subarray(0, bytesRead) };
    }
  }

  override _read(): void {
    if (this.busy || this.piped) return;
    this.busy = true;
    this.next(() => Buffer.allocUnsafe(READ_CHUNK)).then(
      (got) => {
        this.busy = false;
        this.push(got === null ? null : got.bytes);
      },
      (err: Error) => this.destroy(err),
    );
  }

  override pipe<T extends NodeJS.WritableStream>(dest: T, options?: { end?: boolean }): T {
    const socketBacked = dest instanceof http.ServerResponse || dest instanceof net.Socket;
    if (!socketBacked || this.busy || this.piped || this.readableFlowing !== null) return super.pipe(dest, options);
    this.piped = true;
    this.pump(dest as unknown as Writable, options?.end !== false).then(
      () => {
        // Nothing was pushed: end the readable side so 'end' and 'close' reach its observers.
        this.push(null);
        this.resume();
      },
      (err: Error) => this.destroy(err),
    );
    return dest;
  }

  /** Segment bytes, or spool reads into one buffer while the other is being written; at most one write in flight. */
  private async pump(dest: Writable, end: boolean): Promise<void> {
    let failure: Error | null = null;
    let pending: ((err: Error) => void) | null = null;
    // A write the destination drops when it closes may never call back: 'close' settles it.
    const onClose = () => {
      failure ??= Object.assign(new Error('destination closed before the blob was sent'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
      pending?.(failure);
    };
    dest.once('close', onClose);
    // Spool buffers only for a reader that reads the spool; the one not written last is refilled.
    const buffers: Buffer[] = [];
    let turn = 0;
    const spare = () => (buffers[turn] ??= Buffer.allocUnsafeSlow(READ_CHUNK));
    let inFlight: Promise<void> | undefined;
    try {
      for (;;) {
        const got = await this.next(spare);
        if (got === null) break;
        if (!got.segment) turn ^= 1;
        await inFlight;
        if (failure) throw failure;
        const segment = got.segment;
        inFlight = new Promise<void>((resolve, reject) => {
          pending = reject;
          dest.write(got.bytes, (err) => {
            if (segment) writeEnded(segment);
            pending = null;
            if (err) reject(err);
            else resolve();
          });
        });
        // Observed now, awaited next turn: a client hanging up meanwhile must not be an unhandled rejection.
        inFlight.catch(() => undefined);
      }
      await inFlight;
    } finally {
      dest.off('close', onClose);
    }
    if (failure) throw failure;
    if (end) dest.end();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.fill.detach(this);
    // No read may still use the descriptor when it is closed.
    void Promise.resolve(this.reading)
      .catch(() => undefined)
      .then(() => this.fd.close())
      .catch(() => undefined)
      .then(() => callback(err));
  }
}

/**
 * One download of one blob from an upstream, shared by every client that asks for it while it
 * runs (request coalescing), streamed to each of them as it arrives (tee), and stored once it is
 * complete and verified.
 *
 * The upstream body is copied into in-memory segments and spooled to a local file while it is
 * hashed; readers that keep up are sent the segments, readers behind follow that file (each
 * from its own offset, at its own pace). The download waits for its fastest reader while that
 * one takes bytes (STALL_MS), so a stalled or vanished client never stalls or breaks it, and
 * memory stays bounded whatever the blob size. The last bytes reach
 * a reader only after the digest is verified, so no client receives a complete response of
 * bad content. A verified blob goes through the BlobStore's staging (commitUpload: fsync and
 * rename, or S3 complete) and is then linked; a failed or mismatched download is discarded
 * and nothing is recorded: the stored copy is whole or absent.
 */
export class BlobFill extends EventEmitter {
  /** Bytes received from the upstream (and hashed). */
  written = 0;
  /** Bytes in the spool file, which readers follow (at most `written`: chunks are spooled in batches). */
  spooled = 0;
  /** Set once the digest matched (readers may then finish). */
  verified = false;
  /** Set once the blob is committed and linked (or the fill failed). */
  settled = false;
  error: Error | null = null;
  /** Bytes its readers sent from the in-memory segments and read from the spool file (observability, tests). */
  readonly served = { memory: 0, spool: 0 };
  /** Whether the upstream's connection read the body straight into the segments (observability, tests). */
  readInto = false;
  private readonly readers = new Set<SpoolReader>();
  private writer: SpoolWriter | null = null;
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

  attach(reader: SpoolReader): void {
    this.readers.add(reader);
  }

  detach(reader: SpoolReader): void {
    if (this.readers.delete(reader)) this.emit('sent');
  }

  /**
   * The download waits for its fastest reader: a segment that reader has not sent yet is kept
   * until it has (or STALL_MS passed without it taking bytes), so a client that keeps up is
   * served from memory even when the upstream is faster than it. Readers behind it, and
   * readers that stall, read the spool. Null: no reader to wait for.
   */
  private paced(end: number): Promise<void> | null {
    const now = Date.now();
    let lead: SpoolReader | null = null;
    for (const reader of this.readers) {
      if (now - reader.lastSentAt < STALL_MS && (!lead || reader.position > lead.position)) lead = reader;
    }
    if (!lead || lead.position >= end) return null;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.off('sent', done);
        resolve();
      };
      const timer = setTimeout(done, STALL_MS - (now - lead.lastSentAt));
      this.on('sent', done);
    });
  }

  /** The in-memory segment holding byte `offset` (received), if any: while the download runs, and after it stored the blob. */
  segmentAt(offset: number): Segment | undefined {
    return this.writer?.segmentAt(offset);
  }

  /** Bytes written to the spool with O_DIRECT and through the page cache (observability, tests). */
  get spoolWrites(): { direct: number; buffered: number } {
    return { ...(this.writer?.writes ?? { direct: 0, buffered: 0 }) };
  }

  /** Bytes copied into the segments (readers may send those before they reach the spool). */
  get received(): number {
    return this.writer?.received ?? 0;
  }

  /** True while bytes received wait for a spool write: more are about to be readable. */
  get spooling(): boolean {
    return !this.verified && !this.error && (this.writer?.behind ?? false);
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
    let direct: FileHandle | null = null;
    try {
      await mkdir(this.deps.spoolDir, { recursive: true });
      spool = await open(this.file, 'w', 0o600);
      // O_DIRECT only where every segment is SEGMENT_BYTES (whole pages): a smaller blob's one segment is its size.
      direct = this.size >= SEGMENT_BYTES ? await openDirect(this.file) : null;
      const hash = createHash('sha256');
      const writer = new SpoolWriter(
        spool,
        // The writer closes it (when done, or when a write is refused as misaligned).
        direct,
        this.size,
        () => {
          this.spooled = writer.spooled;
          this.emit('progress');
        },
        () => this.emit('progress'),
        (end) => this.paced(end),
      );
      this.writer = writer;
      direct = null;
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
        const readInto = bodyReader(upstream);
        if (readInto) await this.receiveInto(readInto, hash, writer);
        else await this.receive(upstream, hash, writer);
      } finally {
        clearInterval(idle);
      }
      if (this.written !== this.size) throw new Error(`upstream ended after ${this.written} of ${this.size} bytes`);
      await writer.flush();
      await writer.closeDirect();
      const computed = `sha256:${hash.digest('hex')}`;
      if (computed !== this.digest) throw new Error(`upstream content has digest ${computed}, not ${this.digest}`);
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
      // The segments serve readers still sending a stored blob's last bytes; a failed fill has none to serve.
      await this.writer?.closeDirect();
      await direct?.close().catch(() => undefined);
      if (this.error) this.writer = null;
      this.emit('progress');
      await spool?.close().catch(() => undefined);
    }
  }

  /** The upstream body read as a stream: each chunk hashed and copied into the segments. */
  private async receive(upstream: Readable, hash: Hash, writer: SpoolWriter): Promise<void> {
    for await (const chunk of upstream) {
      const bytes = chunk as Buffer;
      if (this.written + bytes.length > this.size) throw new Error(`upstream sent more than the ${this.size} bytes it announced`);
      hash.update(bytes);
      // Copied into the segments (readers that keep up are sent them) and spooled in
      // batches; the upstream waits only when every segment is still in use.
      this.written += bytes.length;
      await writer.add(bytes);
      // Copied into a segment: the chunk is garbage now; collect such chunks young (src/runtime/young-garbage.ts).
      droppedChunkBytes(bytes.length);
      this.deps.onBytes?.(bytes.length);
      // Content-Length bytes are all we need: do not wait on an upstream that is slow to end the body.
      if (this.written === this.size) break;
    }
  }

  /**
   * The upstream body read by its connection straight into the segments (socket-reads.ts): no
   * buffer per read, no copy; each read hashed where it landed. The connection reads exactly the
   * body's length and waits, paused, while every segment is in use.
   */
  private async receiveInto(readInto: (sink: ReadSink) => Promise<void>, hash: Hash, writer: SpoolWriter): Promise<void> {
    this.readInto = true;
    let memory: Buffer | null = null;
    let freed: Promise<void> = Promise.resolve();
    await readInto({
      room: (max) => {
        const room = writer.room(max);
        if (room instanceof Promise) {
          freed = room;
          return (memory = null);
        }
        return (memory = room);
      },
      filled: (n) => {
        hash.update(memory!.subarray(0, n));
        this.written += n;
        writer.filled(n);
        this.deps.onBytes?.(n);
      },
      roomFreed: () => freed,
    });
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
  next(): Promise<void> {
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
      if (this.settled && (!this.error || this.verified))
        return this.deps.blobs.openRange(this.digest, this.size > 0 ? { start, end } : undefined);
      if (this.error || this.settled) throw this.error ?? new Error('the download ended');
      // Not created yet: wait for the first bytes.
      await this.next();
      return this.reader(range);
    }
    return new SpoolReader(this, fd, start, end);
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
    const running = [...this.fills.values()].map((p) =>
      p.then(
        (fill) => (fill instanceof BlobFill ? fill.finished() : undefined),
        () => undefined,
      ),
    );
    await Promise.race([Promise.all(running), new Promise((resolve) => setTimeout(resolve, timeoutMs).unref())]);
  }

  /**
   * The fill of `digest` in `repository`: the running one, or a new one started with
   * `fetch` (null when the upstream has no such blob; 'stored' when `fetch` found it stored
   * meanwhile: a fill that just ended). `joined` tells whether it was running.
   */
  async get(
    repository: string,
    digest: string,
    fetch: () => Promise<UpstreamBody | 'stored' | null>,
  ): Promise<{ fill: BlobFill | 'stored' | null; joined: boolean }> {
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
