import http from 'node:http';
import net from 'node:net';
import type { FileHandle } from 'node:fs/promises';
import { Readable, type Writable } from 'node:stream';
import { pooledBuffers, returnBuffer, sizeWithin, takeBuffer } from './buffer-pool.js';

/** Bytes per read(2) of a small range, of many big ones at once, and of a stream not piped into a socket. */
export const CHUNK_SIZE = 128 * 1024;
/** Bytes per read(2) of a big range when few run: 1 MiB reads serve one stream faster (fewer syscalls and writes). */
export const MAX_CHUNK_SIZE = 1024 * 1024;
/** A range at least this long is big: its chunk size depends on how many big ones run. */
export const BIG_RANGE = 16 * 1024 * 1024;
/**
 * What the chunk buffers of the big transfers running may take together (two each): up to 8 get
 * 1 MiB chunks, 64 and more 128 KiB. Small ranges (most blobs) always use 128 KiB, so the
 * memory of 64 clients fetching 1 MiB blobs is what it was.
 */
const CHUNK_BUDGET = 16 * 1024 * 1024;
let bigTransfers = 0;

/** The chunk size of a big transfer while `transfers` big ones run: a power of two from CHUNK_SIZE to MAX_CHUNK_SIZE. */
export function chunkSizeFor(transfers: number): number {
  return sizeWithin(CHUNK_BUDGET, transfers, CHUNK_SIZE, MAX_CHUNK_SIZE);
}

export { pooledBuffers };

/**
 * A byte range of an open file as a Readable, which closes the file when done.
 *
 * Piped into a socket or an HTTP response it recycles two buffers instead of allocating a
 * fresh one per read; a big range's are larger while few big ones run (chunkSizeFor). Node frees a stream's buffers only when V8 collects them, and V8
 * schedules that by external memory growth (tens of MB); the freed 256 KiB chunks then
 * fragmented malloc's heap. 64 clients fetching 1 MiB blobs held 185 MB RSS (bench
 * blob-load); recycled 128 KiB buffers hold 143 MB, and serve 1.5x faster. A socket's write callback
 * fires once the kernel has the bytes, so the buffer can be refilled safely then. Other
 * destinations (a PassThrough may still hold the chunk after its callback) get fresh buffers
 * through the ordinary pipe().
 */
export class FileRangeStream extends Readable {
  private position: number;
  private pumping = false;

  /** Serves bytes `start` to `end` inclusive (end < start: empty; Infinity: to the end of the file). */
  constructor(
    private readonly handle: FileHandle,
    start: number,
    private readonly end: number,
  ) {
    super({ highWaterMark: CHUNK_SIZE });
    this.position = start;
  }

  override _read(): void {
    const buffer = Buffer.allocUnsafe(Math.max(0, Math.min(CHUNK_SIZE, this.end - this.position + 1)));
    this.readNext(buffer).then(
      (filled) => this.push(filled.length === 0 ? null : filled),
      (err: Error) => this.destroy(err),
    );
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.handle.close().then(
      () => done(err),
      (closeErr: Error) => done(err ?? closeErr),
    );
  }

  override pipe<T extends NodeJS.WritableStream>(dest: T, options?: { end?: boolean }): T {
    const socketBacked = dest instanceof http.ServerResponse || dest instanceof net.Socket;
    if (!socketBacked || this.pumping || this.readableFlowing !== null) return super.pipe(dest, options);
    this.pumping = true;
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

  /**
   * Reads the next part of the range into `buffer`; returns the filled part, empty once the
   * range is done. A file that ends before a bounded range does is truncated: that fails.
   */
  private async readNext(buffer: Buffer): Promise<Buffer> {
    const length = Math.min(buffer.length, this.end - this.position + 1);
    if (length <= 0) return buffer.subarray(0, 0);
    const { bytesRead } = await this.handle.read(buffer, 0, length, this.position);
    if (bytesRead === 0 && this.end !== Infinity) throw truncated();
    this.position += bytesRead;
    return bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
  }

  /** read(2) into one buffer while the other is being written; at most one write in flight. */
  private async pump(dest: Writable, end: boolean): Promise<void> {
    const sink = new SocketSink(dest);
    const big = this.end - this.position + 1 >= BIG_RANGE;
    const size = big ? chunkSizeFor(++bigTransfers) : CHUNK_SIZE;
    let [buffer, spare] = [takeBuffer(size), takeBuffer(size)];
    let inFlight: Promise<void> | undefined;
    try {
      for (; ; [buffer, spare] = [spare, buffer]) {
        const filled = await this.readNext(buffer);
        if (filled.length === 0) break;
        await inFlight;
        inFlight = sink.write(filled);
        // Observed now, awaited next turn: a client hanging up during the next read(2) must not
        // surface as an unhandled rejection.
        inFlight.catch(() => undefined);
      }
      await inFlight;
    } finally {
      if (big) bigTransfers--;
      sink.release();
    }
    // Only after a clean finish: an aborted write may still be queued with its buffer.
    returnBuffer(buffer);
    returnBuffer(spare);
    if (end) dest.end();
  }
}

/**
 * Writes one chunk at a time into a socket-backed stream; each write resolves once the kernel
 * has the bytes, or rejects if the stream fails or closes first (one 'close' listener for the
 * whole transfer, not one per chunk: per-chunk garbage is what this file exists to avoid).
 */
class SocketSink {
  private failure: Error | undefined;
  private pending: ((err?: Error | null) => void) | undefined;
  private readonly onClose = () => {
    this.failure ??= Object.assign(new Error('destination closed before the blob was sent'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    this.pending?.(this.failure);
  };

  constructor(private readonly dest: Writable) {
    dest.once('close', this.onClose);
  }

  write(chunk: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      const settle = (err?: Error | null) => {
        if (this.pending !== settle) return;
        this.pending = undefined;
        if (err) reject(err);
        else resolve();
      };
      this.pending = settle;
      this.dest.write(chunk, settle);
    });
  }

  release(): void {
    this.dest.off('close', this.onClose);
  }
}

function truncated(): Error {
  return new Error('blob file is shorter than recorded (run berth fsck)');
}
