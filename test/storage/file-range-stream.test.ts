import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import {
  BIG_RANGE,
  CHUNK_SIZE,
  FileRangeStream,
  MAX_CHUNK_SIZE,
  chunkSizeFor,
  pooledBuffers,
} from '../../src/storage/file-range-stream.js';
import { tempDir } from '../helpers/server.js';

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('FileRangeStream', () => {
  const dir = tempDir('berth-range-stream-');
  const file = path.join(dir, 'blob');
  // A big range (1 MiB chunks), more than the kernel's socket buffers take: a client that hangs up leaves some unsent.
  const data = randomBytes(BIG_RANGE + 12345);
  let server: http.Server;
  let base: string;
  /** What the server's piping ended with, per request path. */
  const outcomes = new Map<string, Promise<string>>();

  before(async () => {
    writeFileSync(file, data);
    server = http.createServer(async (req, res) => {
      const url = new URL(req.url!, 'http://x');
      const start = Number(url.searchParams.get('start') ?? 0);
      const end = url.searchParams.has('end') ? Number(url.searchParams.get('end')) : Infinity;
      const stream = new FileRangeStream(await fs.open(file, 'r'), start, end);
      const outcome = new Promise<string>((resolve) => {
        stream.on('error', (err) => resolve(`error: ${err.message}`));
        stream.on('close', () => resolve(stream.readableEnded ? 'ended' : 'closed'));
      });
      outcomes.set(url.pathname, outcome);
      stream.on('error', () => res.destroy()); // as Fastify does once headers are out
      res.writeHead(200);
      stream.pipe(res);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    server.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function get(pathAndQuery: string): Promise<Buffer> {
    const res = await fetch(`${base}${pathAndQuery}`);
    return Buffer.from(await res.arrayBuffer());
  }

  it('sends a whole file into an HTTP response byte for byte, and recycles its buffers', async () => {
    const got = await get('/whole');
    assert.equal(got.length, data.length);
    assert.equal(sha(got), sha(data));
    assert.equal(await outcomes.get('/whole'), 'ended');
    assert.ok(pooledBuffers() >= 2, 'the two chunk buffers went back to the pool');
  });

  it('keeps reused buffers apart: concurrent responses each get their own bytes', async () => {
    const ranges = Array.from({ length: 12 }, (_, i) => ({ start: i * 7919, end: data.length - 1 - i * 20011 }));
    const bodies = await Promise.all(ranges.map((r, i) => get(`/concurrent-${i}?start=${r.start}&end=${r.end}`)));
    bodies.forEach((body, i) => assert.equal(sha(body), sha(data.subarray(ranges[i]!.start, ranges[i]!.end + 1)), `range ${i}`));
  });

  it('sizes chunks by how many transfers run: 1 MiB for a few, down to 128 KiB for 64 and more', () => {
    assert.deepEqual(
      [1, 8, 9, 16, 17, 32, 64, 1000].map(chunkSizeFor),
      [1, 1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125].map((m) => m * MAX_CHUNK_SIZE),
    );
  });

  it('serves a byte range, including one inside a single chunk', async () => {
    assert.deepEqual(await get(`/range?start=100&end=${CHUNK_SIZE * 2 + 7}`), data.subarray(100, CHUNK_SIZE * 2 + 8));
    assert.deepEqual(await get('/small?start=5&end=9'), data.subarray(5, 10));
  });

  it('fails, instead of sending short, when the file is shorter than the range asked for', async () => {
    const res = await fetch(`${base}/short?start=0&end=${data.length + 10}`).catch((err: Error) => err);
    if (!(res instanceof Error)) await res.arrayBuffer().catch(() => undefined);
    assert.match(await outcomes.get('/short')!, /error: blob file is shorter than recorded/);
  });

  it('stops reading and closes the file when the client hangs up mid-transfer', async () => {
    const req = http.get(`${base}/hangup`);
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    await once(res, 'data');
    req.destroy();
    const outcome = await outcomes.get('/hangup')!;
    assert.match(outcome, /closed|error: /);
    await sleep(50); // an unhandled rejection from the abandoned write would fail the test run here
    assert.equal(sha(await get('/after-hangup')), sha(data), 'the server still serves afterwards');
  });

  it('gives a slow non-socket consumer fresh buffers (a PassThrough holds chunks after their callback)', async () => {
    const stream = new FileRangeStream(await fs.open(file, 'r'), 0, Infinity);
    const through = new PassThrough({ highWaterMark: CHUNK_SIZE * 8 });
    stream.pipe(through);
    await sleep(100); // let everything pile up in the PassThrough before reading any of it
    const chunks: Buffer[] = [];
    for await (const chunk of through) chunks.push(chunk as Buffer);
    assert.equal(sha(Buffer.concat(chunks)), sha(data));
  });

  it('reads with for await (fsck, replication) to the end of the file', async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of new FileRangeStream(await fs.open(file, 'r'), 10, Infinity)) chunks.push(chunk as Buffer);
    assert.deepEqual(Buffer.concat(chunks), data.subarray(10));
  });
});
