import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { nodeBody } from '../../src/client/index.js';
import { BlobFill, SpoolWriter, type FillDeps } from '../../src/registries/blob-fill.js';
import { endpointFetch } from '../../src/registries/index.js';
import { FilesystemBlobStore } from '../../src/storage/filesystem.js';

const digestOf = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** An upstream body that sends `data` in `chunk`-byte pieces, yielding to the event loop between them. */
function upstreamOf(data: Buffer, chunk = 64 * 1024): Readable {
  return Readable.from(
    (async function* () {
      for (let offset = 0; offset < data.length; offset += chunk) {
        yield data.subarray(offset, offset + chunk);
        await new Promise((resolve) => setImmediate(resolve));
      }
    })(),
    { objectMode: false },
  );
}

/**
 * BlobFill on a real filesystem store: the spool file becomes the staged upload (renamed, not
 * copied), readers at any pace get exactly the blob, the last bytes wait for the digest, and a
 * mismatch or short body stores nothing.
 */
describe('blob fill (pull-through cache downloads)', () => {
  let dir: string;
  let blobs: FilesystemBlobStore;
  let deps: FillDeps;
  const linked: string[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'berth-fill-'));
    blobs = await new FilesystemBlobStore(path.join(dir, 'storage')).init();
    deps = { blobs, spoolDir: path.join(dir, 'proxy-spool'), link: async (repo, digest) => void linked.push(`${repo}@${digest}`) };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A fill of the wrong content: its reader fails before the last byte, nothing is stored, the spool file goes. */
  async function refusedAsMismatch(fill: BlobFill): Promise<void> {
    let received = 0;
    await assert.rejects(
      (async () => {
        for await (const chunk of await fill.reader()) received += (chunk as Buffer).length;
      })(),
      /digest/,
    );
    await fill.finished();
    assert.ok(received < fill.size, `the reader got ${received} of ${fill.size} bytes, not all`);
    assert.equal(await blobs.stat(fill.digest), null, 'nothing stored');
    await fill.cleanup();
  }

  it('streams to a live reader, a slow reader and a late reader; stores the spool file itself', async () => {
    const data = randomBytes(9 * 1024 * 1024 + 123);
    const digest = digestOf(data);
    const fill = new BlobFill('hub/app', digest, data.length, upstreamOf(data), deps);
    const live = readAll(await fill.reader());
    // A reader that pauses falls behind the download and catches up from the spool file.
    const slow = (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of await fill.reader({ start: 1000, end: data.length - 1 })) {
        chunks.push(chunk as Buffer);
        if (chunks.length % 8 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return Buffer.concat(chunks);
    })();
    assert.ok((await live).equals(data), 'the live reader got the blob');
    assert.ok((await slow).equals(data.subarray(1000)), 'the slow reader got its range');
    await fill.finished();
    assert.equal(fill.error, null);
    assert.deepEqual(linked, [`hub/app@${digest}`]);
    assert.ok(readFileSync(blobs.blobPath(digest)).equals(data), 'the stored blob is the content');
    assert.equal(
      statSync(blobs.blobPath(digest)).ino,
      statSync(path.join(deps.spoolDir, readdirSync(deps.spoolDir)[0]!)).ino,
      'the stored blob is the spool file itself (a hard link: written once)',
    );
    await fill.cleanup();
    assert.deepEqual(readdirSync(deps.spoolDir), [], 'the spool file is removed once the fill ends');
    assert.deepEqual(readdirSync(path.join(dir, 'storage', 'uploads')), [], 'no staging left');
    const late = await readAll(await fill.reader({ start: 5, end: 20 }));
    assert.ok(late.equals(data.subarray(5, 21)), 'a reader after the fill reads the stored blob');
  });

  it('spools whole pages with O_DIRECT and only the last partial page through the page cache', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 4096 * 3 + 77);
    const digest = digestOf(data);
    const fill = new BlobFill('hub/direct', digest, data.length, upstreamOf(data), deps);
    assert.ok((await readAll(await fill.reader())).equals(data));
    await fill.finished();
    assert.equal(fill.error, null);
    assert.deepEqual(fill.spoolWrites, { direct: data.length - 77, buffered: 77 }, 'every whole page went around the page cache');
    assert.ok(readFileSync(blobs.blobPath(digest)).equals(data), 'the stored blob is the content');
    await fill.cleanup();
  });

  it('a blob smaller than a segment is spooled through the page cache', async () => {
    const data = randomBytes(300 * 1024 + 5);
    const digest = digestOf(data);
    const fill = new BlobFill('hub/small', digest, data.length, upstreamOf(data), deps);
    assert.ok((await readAll(await fill.reader())).equals(data));
    await fill.finished();
    assert.equal(fill.error, null);
    assert.deepEqual(fill.spoolWrites, { direct: 0, buffered: data.length });
    assert.ok(readFileSync(blobs.blobPath(digest)).equals(data));
    await fill.cleanup();
  });

  it('a digest mismatch never hands out the last bytes and stores nothing', async () => {
    const data = randomBytes(3 * 1024 * 1024);
    const claimed = digestOf(randomBytes(16));
    const fill = new BlobFill('hub/bad', claimed, data.length, upstreamOf(data), deps);
    await refusedAsMismatch(fill);
    assert.match(String(fill.error), /digest/);
    assert.ok(!linked.some((l) => l.startsWith('hub/bad')), 'nothing linked');
    assert.deepEqual(readdirSync(deps.spoolDir), []);
  });

  it('a body of an endpoint fetch is read straight into the segments: a live and a slow reader get the blob, a wrong body stores nothing', async () => {
    const data = randomBytes(20 * 1024 * 1024 + 4096 + 5);
    const digest = digestOf(data);
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-length': String(data.length) });
      res.end(data);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const fetchOf = endpointFetch({ insecure: false, caBundle: null });
      const fill = new BlobFill('hub/direct', digest, data.length, nodeBody(await fetchOf(`${base}/blob`))!, deps);
      // The only reader is slow at first: the download waits for it (every segment in use), then catches up.
      const reader = await fill.reader();
      const chunks: Buffer[] = [];
      for await (const chunk of reader) {
        chunks.push(chunk as Buffer);
        if (chunks.length < 12) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.ok(Buffer.concat(chunks).equals(data), 'the reader got the blob');
      await fill.finished();
      assert.equal(fill.error, null);
      assert.equal(fill.readInto, true, 'the connection read into the segments');
      assert.ok(readFileSync(blobs.blobPath(digest)).equals(data), 'the stored blob is the content');
      await fill.cleanup();

      const claimed = digestOf(randomBytes(16));
      const bad = new BlobFill('hub/direct-bad', claimed, data.length, nodeBody(await fetchOf(`${base}/blob`))!, deps);
      await refusedAsMismatch(bad);
      assert.equal(bad.readInto, true);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('spool writes run two at a time and may end in any order: the spooled mark never passes a write still in flight', async () => {
    const size = 6 * 1024 * 1024;
    const data = randomBytes(size);
    const file = Buffer.alloc(size);
    const writes: Array<{ at: number; bytes: number; finish: () => void }> = [];
    let maxInFlight = 0;
    // A file whose writes end when the test says so (the disk completing them out of order).
    const handle = {
      writev: (parts: Buffer[], at: number) =>
        new Promise<{ bytesWritten: number }>((resolve) => {
          const bytes = parts.reduce((n, p) => n + p.length, 0);
          writes.push({
            at,
            bytes,
            finish: () => {
              Buffer.concat(parts).copy(file, at);
              resolve({ bytesWritten: bytes });
            },
          });
          maxInFlight = Math.max(maxInFlight, writes.length);
        }),
    } as unknown as FileHandle;
    const spooledMarks: number[] = [];
    const writer = new SpoolWriter(
      handle,
      null,
      size,
      () => spooledMarks.push(writer.spooled),
      () => undefined,
      () => null,
    );
    const adding = writer.add(data);
    // Two writes in flight (4 MiB and what followed); the later one ends first.
    while (writes.length < 2) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(writes.length, 2, 'two writes in flight at once');
    const [first, second] = writes.splice(0, 2);
    assert.ok(first!.at < second!.at);
    second!.finish();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(writer.spooled, 0, 'a write ended beyond a gap does not move the spooled mark');
    first!.finish();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(writer.spooled, second!.at + second!.bytes, 'both ended: the mark covers both');
    const flushing = writer.flush();
    for (;;) {
      const next = writes.shift();
      if (next) next.finish();
      if (writer.spooled === size) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    await adding;
    await flushing;
    assert.ok(file.equals(data), 'every byte at its place');
    assert.ok(maxInFlight <= 2, `at most two writes in flight (${maxInFlight})`);
    assert.deepEqual(
      [...spooledMarks].sort((a, b) => a - b),
      spooledMarks,
      'the mark only moves forward',
    );
  });

  it('an upstream that trickles: a reader gets the bytes as they come, not once a 1 MiB batch is full', async () => {
    const data = randomBytes(64 * 1024);
    const body = new PassThrough();
    const fill = new BlobFill('hub/trickle', digestOf(data), data.length, body, deps);
    const reader = await (async () => {
      body.write(data.subarray(0, 1024));
      return fill.reader();
    })();
    let sent = 1024;
    const got: Buffer[] = [];
    let firstAt = -1;
    const reading = (async () => {
      for await (const chunk of reader) {
        if (firstAt < 0) firstAt = sent;
        got.push(chunk as Buffer);
      }
    })();
    for (; sent < data.length; sent += 1024) {
      await new Promise((resolve) => setTimeout(resolve, 2));
      body.write(data.subarray(sent, sent + 1024));
    }
    body.end();
    await reading;
    assert.ok(Buffer.concat(got).equals(data));
    assert.ok(
      firstAt >= 0 && firstAt < data.length / 2,
      `the first bytes reached the reader when ${firstAt} of ${data.length} had been sent`,
    );
    await fill.finished();
    await fill.cleanup();
  });

  it('an upstream that ends early fails the fill; readers get an error, not a short blob', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const body = new PassThrough();
    const fill = new BlobFill('hub/short', digestOf(data), data.length, body, deps);
    const reading = fill.reader().then(readAll);
    body.end(data.subarray(0, 1024 * 1024));
    await assert.rejects(reading, /ended after 1048576 of 2097152 bytes/);
    await fill.finished();
    assert.equal(await blobs.stat(digestOf(data)), null);
    await fill.cleanup();
  });
});
