/**
 * Large buffers the filesystem store reads blobs into and stages uploads from, recycled
 * instead of left to the garbage collector: V8 frees a Buffer only when it collects its
 * object, and schedules that by external memory growth; buffers a stream held across two
 * young-generation GCs reach the old generation, and each 64 MiB of them then costs a full
 * mark-compact of the heap.
 */

/** Idle buffers kept for reuse, in bytes of all sizes together. */
const POOL_LIMIT_BYTES = 32 * 1024 * 1024;
const pools = new Map<number, Buffer[]>();
let pooledBytes = 0;

/** A buffer of exactly `size` bytes, from the pool when one is idle. */
export function takeBuffer(size: number): Buffer {
  const buffer = pools.get(size)?.pop();
  if (!buffer) return Buffer.allocUnsafeSlow(size);
  pooledBytes -= size;
  return buffer;
}

/** Hands `buffer` back: only once nothing (a pending read or write) can still touch it. */
export function returnBuffer(buffer: Buffer): void {
  if (pooledBytes + buffer.length > POOL_LIMIT_BYTES) return;
  const pool = pools.get(buffer.length) ?? [];
  pools.set(buffer.length, pool);
  pool.push(buffer);
  pooledBytes += buffer.length;
}

/** Buffers handed back for reuse (observability, tests). */
export function pooledBuffers(): number {
  let n = 0;
  for (const pool of pools.values()) n += pool.length;
  return n;
}

/**
 * The largest power of two from `min` to `max` such that `holders` users, two buffers each,
 * stay within `budget` bytes together (never below `min`).
 */
export function sizeWithin(budget: number, holders: number, min: number, max: number): number {
  let size = max;
  while (size > min && size * 2 * holders > budget) size /= 2;
  return size;
}
