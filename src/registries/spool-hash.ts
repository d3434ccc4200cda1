import { Worker } from 'node:worker_threads';

/**
 * The digest of a spool file as it grows, computed off the main thread: a worker thread reads
 * what has been written (from the page cache, 4 MiB at a time) and hashes it while the main
 * thread keeps receiving from the upstream and serving readers. Used for blobs of
 * FillDeps.hashThreadFrom bytes and more (default: none). It frees the main thread of SHA-256
 * (~0.6 CPU-s per GiB) at the price of reading the spool once more; on the shared 2-core
 * machine measured, that cost more than it gained (docs/proxy-cache.md › Performance).
 *
 * The writer tells how far the file is written through shared memory (Atomics.store and
 * notify: a postMessage per spool write cost ~1 CPU-s per GiB); the worker sleeps in
 * Atomics.wait when it has caught up. Slot 0: bytes written; slot 1: the size once all are
 * written (-1 before, -2 to stop). Plain JavaScript evaluated in the worker (no module to
 * resolve: it runs the same from the sources under tsx and from the build), with no execArgv of
 * the parent (no loader, no profiler). The parent terminates it once it answered.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const state = workerData.state;
let fd = -1;
try {
  fd = openSync(workerData.file, 'r');
  const hash = createHash(workerData.algorithm);
  const buffer = Buffer.allocUnsafe(4 * 1024 * 1024);
  let hashed = 0n;
  for (;;) {
    const end = Atomics.load(state, 1);
    if (end === -2n) break;
    const available = Atomics.load(state, 0);
    if (hashed < available) {
      const want = available - hashed < BigInt(buffer.length) ? Number(available - hashed) : buffer.length;
      const n = readSync(fd, buffer, 0, want, Number(hashed));
      if (n === 0) throw new Error('the spool file ended at byte ' + hashed + ' of ' + available + ' written');
      hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
      hashed += BigInt(n);
    } else if (hashed === end) {
      parentPort.postMessage({ digest: hash.digest('hex') });
      break;
    } else {
      Atomics.wait(state, 0, available, 1000);
    }
  }
} catch (err) {
  parentPort.postMessage({ error: String((err && err.message) || err) });
} finally {
  if (fd >= 0) closeSync(fd);
}
`;

/** Hashes bytes [0, n) of a file once they are written; `digest` once all `size` are. */
export interface SpoolHash {
  /** Bytes [0, n) are in the file (call with growing n). */
  written(n: number): void;
  /** The hex digest of the file's first `size` bytes (call once every byte is written). */
  digest(size: number): Promise<string>;
  /** Stops hashing (a failed fill); the file may then be removed. */
  close(): void;
}

/** A worker thread that hashes `file` behind its writer (see above). */
export function workerSpoolHash(file: string, algorithm = 'sha256'): SpoolHash {
  const state = new BigInt64Array(new SharedArrayBuffer(16));
  state[1] = -1n;
  const worker = new Worker(WORKER, { eval: true, workerData: { file, algorithm, state }, execArgv: [] });
  let settle: { resolve(hex: string): void; reject(err: Error): void } | null = null;
  let outcome: { digest: string } | { error: Error } | null = null;
  const finish = (result: { digest: string } | { error: Error }) => {
    if (outcome) return;
    outcome = result;
    if (settle && 'digest' in result) settle.resolve(result.digest);
    else if (settle && 'error' in result) settle.reject(result.error);
    void worker.terminate();
  };
  worker.on('message', (message: { digest?: string; error?: string }) => finish(message.digest !== undefined ? { digest: message.digest } : { error: new Error(`hashing the spool file failed: ${message.error}`) }));
  worker.on('error', (err) => finish({ error: err }));
  // A message posted just before the thread ended is delivered first; the next turn makes sure.
  worker.on('exit', () => setImmediate(() => finish({ error: new Error('the hashing thread exited early') })));
  const tell = (slot: number, value: number) => {
    Atomics.store(state, slot, BigInt(value));
    Atomics.notify(state, 0);
  };
  return {
    written: (n) => tell(0, n),
    digest(size) {
      tell(1, size);
      tell(0, size);
      return new Promise<string>((resolve, reject) => {
        settle = { resolve, reject };
        const done = outcome as { digest: string } | { error: Error } | null;
        if (done && 'digest' in done) resolve(done.digest);
        else if (done) reject(done.error);
      });
    },
    close: () => {
      tell(1, -2);
      finish({ error: new Error('closed') });
    },
  };
}
