import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/**
 * The digest of a download, fed with its in-memory segments as they fill (SpoolWriter), on the
 * main thread or on a hashing thread. The thread reads the segments where they are (shared
 * memory: the segments of a big download are a shared WebAssembly memory, see
 * src/runtime/direct-io.ts), so hashing costs no copy and no re-read of the spool; a segment may be
 * reused once `hashed` has passed its end.
 *
 * Why a thread: on the 2-core machine measured (2026-12-04), a first pull's main thread was
 * the whole pull's critical path (2.0 CPU-s per GiB, busy or waiting for a core nearly all the
 * pull), and SHA-256 was 0.7 of it while a core-second or more sat idle; the earlier worker that
 * re-read the spool file cost more than it freed (docs/proxy-cache.md › Performance).
 */
export interface SegmentHash {
  /** Hashes these bytes next. A view of shared memory must not change until `hashed` passes its end; other bytes are copied. */
  update(bytes: Buffer): void;
  /** Bytes hashed so far. */
  readonly hashed: number;
  /** Resolves once `n` bytes are hashed (rejects if hashing failed). */
  until(n: number): Promise<void>;
  /** The hex digest of every byte given (call once, after the last update). */
  digest(): Promise<string>;
  /** Stops hashing (a failed download). */
  close(): void;
}

/** Hashes on the caller's thread, as the bytes come. */
export function inlineSegmentHash(algorithm = 'sha256'): SegmentHash {
  const hash = createHash(algorithm);
  let hashed = 0;
  return {
    update(bytes) {
      hash.update(bytes);
      hashed += bytes.length;
    },
    get hashed() {
      return hashed;
    },
    until: () => Promise.resolve(),
    digest: () => Promise.resolve(hash.digest('hex')),
    close: () => undefined,
  };
}

/**
 * The hashing thread's program, plain JavaScript evaluated in the worker (no module to resolve:
 * it runs the same under tsx and from the build). One thread serves every download (a job each).
 * An update names the shared memory it is in (the thread keeps no reference to it after) or
 * carries a copy. After each update it stores the job's hashed byte count in the job's shared
 * counter and wakes the waiters.
 */
const WORKER = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const jobs = new Map();
parentPort.on('message', (m) => {
  const job = jobs.get(m.job);
  try {
    if (m.type === 'start') {
      jobs.set(m.job, { hash: createHash(m.algorithm), progress: m.progress, hashed: 0n });
    } else if (m.type === 'update') {
      if (!job) return;
      const bytes = new Uint8Array(m.memory, m.offset, m.length);
      job.hash.update(bytes);
      job.hashed += BigInt(bytes.length);
      Atomics.store(job.progress, 0, job.hashed);
      Atomics.notify(job.progress, 0);
    } else if (m.type === 'digest') {
      jobs.delete(m.job);
      if (job) parentPort.postMessage({ job: m.job, digest: job.hash.digest('hex') });
    } else if (m.type === 'close') {
      jobs.delete(m.job);
    }
  } catch (err) {
    jobs.delete(m.job);
    if (job) {
      Atomics.store(job.progress, 0, -1n);
      Atomics.notify(job.progress, 0);
    }
    parentPort.postMessage({ job: m.job, error: String((err && err.message) || err) });
  }
});
`;

interface Pending {
  resolve(hex: string): void;
  reject(err: Error): void;
}

/** An idle hashing thread ends after this long (its isolate costs a few MB of memory). */
const IDLE_EXIT_MS = 30_000;

/**
 * The one hashing thread, started on first use and ended after IDLE_EXIT_MS without jobs; it
 * keeps the process alive only while it has jobs.
 */
class HashThread {
  private worker: Worker | null = null;
  private nextJob = 1;
  /** Jobs started and not yet ended (digest taken, or closed). */
  private active = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private readonly pending = new Map<number, Pending>();
  /** Jobs that failed (the thread died, or hashing threw), by job: their error. */
  readonly failed = new Map<number, Error>();

  post(message: object): void {
    this.start().postMessage(message);
  }

  newJob(): number {
    this.active++;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.start().ref();
    return this.nextJob++;
  }

  /** A job ended: with none left, the thread no longer holds the process, and ends if none comes. */
  endJob(job: number): void {
    this.pending.delete(job);
    this.failed.delete(job);
    if (--this.active > 0 || !this.worker) return;
    const worker = this.worker;
    worker.unref();
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.active > 0 || this.worker !== worker) return;
      this.worker = null;
      void worker.terminate();
    }, IDLE_EXIT_MS).unref();
  }

  awaitDigest(job: number): Promise<string> {
    const failure = this.failed.get(job);
    if (failure) return Promise.reject(failure);
    return new Promise((resolve, reject) => this.pending.set(job, { resolve, reject }));
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    // No execArgv of the parent (no loader, no profiler): the program is plain JavaScript.
    const worker = new Worker(WORKER, { eval: true, execArgv: [] });
    worker.on('message', (m: { job: number; digest?: string; error?: string }) => {
      const waiting = this.pending.get(m.job);
      this.pending.delete(m.job);
      if (m.digest !== undefined) return waiting?.resolve(m.digest);
      const err = new Error(`hashing failed: ${m.error}`);
      if (waiting) waiting.reject(err);
      else this.failed.set(m.job, err);
    });
    const died = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = null;
      // Every job it had is lost: their downloads fail (and are retried by their clients).
      for (const [job, waiting] of this.pending) {
        this.failed.set(job, err);
        waiting.reject(err);
      }
      this.pending.clear();
      this.onDeath.forEach((notify) => notify(err));
      this.onDeath.clear();
    };
    worker.on('error', died);
    worker.on('exit', (code) => died(new Error(`the hashing thread exited (code ${code})`)));
    // After the listeners (adding a 'message' listener refs the worker again).
    if (this.active === 0) worker.unref();
    this.worker = worker;
    return worker;
  }

  /** Callbacks of jobs waiting on progress, told when the thread dies. */
  readonly onDeath = new Set<(err: Error) => void>();
}

let thread: HashThread | null = null;

/** Atomics.waitAsync (Node 16+; not yet in TypeScript's ES2022 library). */
type WaitAsync = (array: BigInt64Array, index: number, value: bigint, timeoutMs: number) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/** Hashes on the shared hashing thread (see above). */
export function threadSegmentHash(algorithm = 'sha256'): SegmentHash {
  thread ??= new HashThread();
  const t = thread;
  const job = t.newJob();
  const progress = new BigInt64Array(new SharedArrayBuffer(8));
  let failure: Error | null = null;
  let closed = false;
  // Rejected on failure, so a waiter never depends on a wake-up that will not come.
  let rejectStopped: (err: Error) => void = () => undefined;
  const stopped = new Promise<never>((_, reject) => (rejectStopped = reject));
  stopped.catch(() => undefined);
  const fail = (err: Error) => {
    if (failure) return;
    failure = err;
    rejectStopped(err);
  };
  t.onDeath.add(fail);
  t.post({ type: 'start', job, algorithm, progress });
  const hashed = () => {
    const n = Atomics.load(progress, 0);
    if (n < 0n) fail(t.failed.get(job) ?? new Error('hashing failed'));
    return Number(n);
  };
  const end = () => {
    if (closed) return;
    closed = true;
    t.onDeath.delete(fail);
    t.endJob(job);
  };
  return {
    update(bytes) {
      if (failure) throw failure;
      // Not shared: a copy (its own buffer) goes instead.
      const view = bytes.buffer instanceof SharedArrayBuffer ? bytes : new Uint8Array(bytes);
      t.post({ type: 'update', job, memory: view.buffer, offset: view.byteOffset, length: view.length });
    },
    get hashed() {
      return Math.max(0, hashed());
    },
    async until(n) {
      for (let now = hashed(); now < n; now = hashed()) {
        if (failure) throw failure;
        // Woken by the thread's notify; the timeout re-checks for a thread that died meanwhile.
        const wait = waitAsync(progress, 0, BigInt(now), 1000);
        if (wait.async) await Promise.race([wait.value, stopped]);
      }
      if (failure) throw failure;
    },
    async digest() {
      if (failure) throw failure;
      const digest = t.awaitDigest(job);
      t.post({ type: 'digest', job });
      try {
        return await digest;
      } finally {
        end();
      }
    },
    close() {
      if (closed) return;
      fail(new Error('hashing stopped: the download failed'));
      end();
      // The thread may be gone already; nothing to stop then.
      try {
        t.post({ type: 'close', job });
      } catch {
        // ignored: nothing left to stop
      }
    },
  };
}
