import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { BlobNotFoundError, type BlobStore, type StagingState } from '../../src/core/ports.js';

/**
 * The storage contract: what every BlobStore adapter must do, run against each of them
 * (like Distribution's registry/storage/driver/testsuites). Adapter-specific behaviour
 * (key layout, request counts) is tested next to each adapter, not here.
 */

export interface ContractTarget {
  /** A new adapter instance over the same storage: what another replica would open. */
  open(): Promise<BlobStore>;
  /** Removes whatever the target created; every instance is closed by then. */
  destroy(): Promise<void>;
}

const MiB = 1024 * 1024;

export function runBlobStoreContract(name: string, setup: () => Promise<ContractTarget>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let target: ContractTarget;
    let store: BlobStore;
    const opened: BlobStore[] = [];
    const open = async () => {
      const instance = await target.open();
      opened.push(instance);
      return instance;
    };

    before(async () => {
      target = await setup();
      store = await open();
    });
    after(async () => {
      await Promise.all(opened.map((s) => s.close()));
      await target.destroy();
    });

    it('an absent blob: stat is null, openRange rejects with BlobNotFoundError, delete succeeds', async () => {
      const digest = sha256(randomBytes(16));
      assert.equal(await store.stat(digest), null);
      await assert.rejects(store.openRange(digest), BlobNotFoundError);
      await assert.rejects(store.openRange(digest, { start: 0, end: 9 }), BlobNotFoundError);
      await store.delete(digest);
    });

    it('stages tiny and large chunks, reads them back exactly, commits, and serves whole and partial ranges', async () => {
      const chunks = [1024, 3 * MiB, 12 * MiB, 100, 0, 6 * MiB + 7].map((n) => randomBytes(n));
      const data = Buffer.concat(chunks);
      const id = randomUUID();
      let state = await store.createUpload(id);
      let offset = 0;
      for (const chunk of chunks) {
        state = await store.appendUpload(id, roundTrip(state), offset, Readable.from(splitInto(chunk, 64 * 1024)));
        offset += chunk.length;
        assertBytes(await readAll(await store.readUpload(id, state, offset)), data.subarray(0, offset));
      }
      const cut = 5 * MiB + 12345;
      assertBytes(await readAll(await store.readUpload(id, state, cut)), data.subarray(0, cut));

      const digest = sha256(data);
      await store.commitUpload(id, roundTrip(state), digest, data.length);
      assert.deepEqual(await store.stat(digest), { size: data.length });
      assertBytes(await readAll(await store.openRange(digest)), data);
      const last = data.length - 1;
      const ranges = [
        [0, 0],
        [1, 1],
        [last, last],
        [0, last],
        [5 * MiB - 10, 5 * MiB + 10],
        [1024 + 3 * MiB - 1, 1024 + 3 * MiB + 12 * MiB],
        [last - 100, last],
      ] as const;
      for (const [start, end] of ranges) {
        assertBytes(await readAll(await store.openRange(digest, { start, end })), data.subarray(start, end + 1), `range ${start}-${end}`);
      }
      await store.abortUpload(id, roundTrip(state));
      await assertStagingGone(store, id, state, data.length);
    });

    it('an append that fails mid-way leaves the upload resumable from the last recorded state', async () => {
      const first = randomBytes(2 * MiB);
      const id = randomUUID();
      const state = await store.appendUpload(id, await store.createUpload(id), 0, Readable.from([first]));
      const failing = Readable.from(failAfter(randomBytes(7 * MiB), 6 * MiB));
      await assert.rejects(store.appendUpload(id, state, first.length, failing));
      const second = randomBytes(MiB);
      const resumed = await store.appendUpload(id, state, first.length, Readable.from([second]));
      const data = Buffer.concat([first, second]);
      assertBytes(await readAll(await store.readUpload(id, resumed, data.length)), data);
      await store.commitUpload(id, resumed, sha256(data), data.length);
      assertBytes(await readAll(await store.openRange(sha256(data))), data);
      await store.abortUpload(id, resumed);
      await assertStagingGone(store, id, resumed, data.length);
    });

    for (const keep of [3 * MiB, 6 * MiB + 5, 11 * MiB - 1]) {
      it(`appending at offset ${keep}, below what is staged, discards the bytes past it`, async () => {
        const id = randomUUID();
        const written = randomBytes(12 * MiB);
        let state = await store.createUpload(id);
        state = await store.appendUpload(id, state, 0, Readable.from(splitInto(written, MiB)));
        const tail = randomBytes(1000);
        state = await store.appendUpload(id, roundTrip(state), keep, Readable.from([tail]));
        const data = Buffer.concat([written.subarray(0, keep), tail]);
        assertBytes(await readAll(await store.readUpload(id, state, data.length)), data);
        await store.commitUpload(id, state, sha256(data), data.length);
        assertBytes(await readAll(await store.openRange(sha256(data))), data);
      });
    }

    it('committing identical content twice keeps one blob; abort then frees both staging areas', async () => {
      const data = randomBytes(MiB + 3);
      const digest = sha256(data);
      const uploads = [];
      for (let i = 0; i < 2; i++) {
        const id = randomUUID();
        const state = await store.appendUpload(id, await store.createUpload(id), 0, Readable.from([data]));
        uploads.push({ id, state });
      }
      for (const { id, state } of uploads) {
        await store.commitUpload(id, state, digest, data.length);
        assert.deepEqual(await store.stat(digest), { size: data.length });
      }
      assertBytes(await readAll(await store.openRange(digest)), data);
      // What core does once the blob is recorded (a commit alone may leave the staging area).
      for (const { id, state } of uploads) await store.abortUpload(id, state);
      for (const { id, state } of uploads) await assertStagingGone(store, id, state, data.length);
    });

    it('abort frees the staging area; aborting again or an unknown upload is not an error', async () => {
      const id = randomUUID();
      const data = randomBytes(6 * MiB);
      const state = await store.appendUpload(id, await store.createUpload(id), 0, Readable.from([data]));
      await store.abortUpload(id, state);
      await assertStagingGone(store, id, state, data.length);
      await store.abortUpload(id, state);
      const unknown = randomUUID();
      await store.abortUpload(unknown, null);
    });

    it('another instance (a replica) continues and commits an upload from the StagingState alone', async () => {
      const replica = await open();
      const parts = [randomBytes(MiB), randomBytes(5 * MiB + 1), randomBytes(77)];
      const id = randomUUID();
      let state = await store.createUpload(id);
      state = await store.appendUpload(id, roundTrip(state), 0, Readable.from([parts[0]!]));
      state = await replica.appendUpload(id, roundTrip(state), parts[0]!.length, Readable.from([parts[1]!]));
      state = await store.appendUpload(id, roundTrip(state), parts[0]!.length + parts[1]!.length, Readable.from([parts[2]!]));
      const data = Buffer.concat(parts);
      assertBytes(await readAll(await replica.readUpload(id, roundTrip(state), data.length)), data);
      await replica.commitUpload(id, roundTrip(state), sha256(data), data.length);
      assertBytes(await readAll(await store.openRange(sha256(data))), data);
    });

    it('an empty blob can be staged, committed and read', async () => {
      const id = randomUUID();
      let state = await store.createUpload(id);
      state = await store.appendUpload(id, state, 0, Readable.from([]));
      assertBytes(await readAll(await store.readUpload(id, state, 0)), Buffer.alloc(0));
      const digest = sha256(Buffer.alloc(0));
      await store.commitUpload(id, state, digest, 0);
      assert.deepEqual(await store.stat(digest), { size: 0 });
      assertBytes(await readAll(await store.openRange(digest)), Buffer.alloc(0));
    });

    it('delete removes a committed blob', async () => {
      const data = randomBytes(4096);
      const id = randomUUID();
      const state = await store.appendUpload(id, await store.createUpload(id), 0, Readable.from([data]));
      await store.commitUpload(id, state, sha256(data), data.length);
      await store.delete(sha256(data));
      assert.equal(await store.stat(sha256(data)), null);
      await assert.rejects(store.openRange(sha256(data)), BlobNotFoundError);
    });

    it('check() succeeds on reachable storage', async () => {
      await store.check();
    });

    it(
      'a 200 MB upload from a slow stream keeps memory bounded (RSS growth < 60 MB) and commits intact',
      { timeout: 300_000 },
      async (t) => {
        const size = 200 * MiB;
        const source = new GeneratedStream(size);
        const id = randomUUID();
        const state = await store.createUpload(id);
        const rss = new RssSampler();
        const staged = await store.appendUpload(id, state, 0, source);
        const growth = rss.stop();
        t.diagnostic(`RSS growth while staging 200 MB: ${(growth / MiB).toFixed(1)} MiB`);
        assert.ok(growth < 60 * MiB, `RSS grew by ${(growth / MiB).toFixed(1)} MiB while staging 200 MB`);
        const digest = source.digest();
        await store.commitUpload(id, staged, digest, size);
        assert.deepEqual(await store.stat(digest), { size });
        const hash = createHash('sha256');
        for await (const chunk of await store.openRange(digest)) hash.update(chunk as Buffer);
        assert.equal(`sha256:${hash.digest('hex')}`, digest);
        await store.delete(digest);
      },
    );
  });
}

/** What the core does between requests: the state goes through the metadata DB as JSON. */
function roundTrip(state: StagingState): StagingState {
  return JSON.parse(JSON.stringify(state ?? null)) as StagingState;
}

/** After abort (core's step once a commit is recorded), the staged bytes are gone: reading them fails, and no listing shows them. */
async function assertStagingGone(store: BlobStore, id: string, state: StagingState, size: number): Promise<void> {
  if (size > 0) await assert.rejects(async () => readAll(await store.readUpload(id, state, size)));
  if (store.listUploads) {
    for await (const upload of store.listUploads()) assert.notEqual(upload.id, id, `staging of ${id} is still listed`);
  }
}

export function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/**
 * Byte-exact comparison that reports the first difference, not a multi-megabyte diff
 * (assert.deepEqual on large buffers can exhaust the heap when they differ).
 */
export function assertBytes(actual: Buffer, expected: Buffer, label = 'bytes'): void {
  if (actual.equals(expected)) return;
  let at = 0;
  while (at < Math.min(actual.length, expected.length) && actual[at] === expected[at]) at++;
  assert.fail(`${label}: got ${actual.length} bytes, expected ${expected.length}; first difference at offset ${at}`);
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function splitInto(data: Buffer, size: number): Buffer[] {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) parts.push(data.subarray(i, i + size));
  return parts;
}

/** Yields `data` in 256 KiB pieces, then fails like a client disconnecting after `failAt` bytes. */
async function* failAfter(data: Buffer, failAt: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < failAt; i += 256 * 1024) yield data.subarray(i, Math.min(i + 256 * 1024, failAt));
  throw Object.assign(new Error('client went away'), { code: 'ECONNRESET' });
}

/** `size` pseudo-random bytes produced on demand, 64 KiB at a time, yielding to the event loop between pieces. */
class GeneratedStream extends Readable {
  private produced = 0;
  private readonly hash = createHash('sha256');
  private readonly piece = randomBytes(64 * 1024);

  constructor(private readonly size: number) {
    super({ highWaterMark: 64 * 1024 });
  }

  override _read(): void {
    setImmediate(() => {
      if (this.produced >= this.size) {
        this.push(null);
        return;
      }
      const length = Math.min(this.piece.length, this.size - this.produced);
      // Vary the bytes so identical pieces cannot hide an ordering bug.
      const chunk = Buffer.from(this.piece.subarray(0, length));
      if (length >= 4) chunk.writeUInt32BE(this.produced >>> 0, 0);
      this.produced += length;
      this.hash.update(chunk);
      this.push(chunk);
    });
  }

  digest(): string {
    return `sha256:${this.hash.copy().digest('hex')}`;
  }
}

/** Samples RSS every 20 ms and reports the largest growth over the starting value. */
class RssSampler {
  private readonly start = process.memoryUsage().rss;
  private peak = this.start;
  private readonly timer = setInterval(() => this.sample(), 20);

  private sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage().rss);
  }

  stop(): number {
    this.sample();
    clearInterval(this.timer);
    return this.peak - this.start;
  }
}
