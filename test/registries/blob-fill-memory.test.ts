import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { BlobFill, BlobFills, type FillDeps } from '../../src/registries/blob-fill.js';
import { FilesystemBlobStore } from '../../src/storage/filesystem.js';

const MiB = 1024 * 1024;
const run = promisify(execFile);

/** `size` bytes repeating one random MiB, as an upstream body in 64 KiB chunks (no allocation per chunk); and its digest. */
function patterned(size: number): { digest: string; body: (gate?: Promise<void>) => Readable } {
  const pattern = randomBytes(MiB);
  const hash = createHash('sha256');
  for (let at = 0; at < size; at += MiB) hash.update(pattern.subarray(0, Math.min(MiB, size - at)));
  const digest = `sha256:${hash.digest('hex')}`;
  const body = (gate?: Promise<void>) =>
    Readable.from(
      (async function* () {
        await gate;
        for (let at = 0; at < size; at += 64 * 1024) yield pattern.subarray(at % MiB, (at % MiB) + Math.min(64 * 1024, size - at));
      })(),
      { objectMode: false },
    );
  return { digest, body };
}

/** The sha256 of a GET of `url` done by curl in another process (its memory and CPU are not this test's). */
async function curlDigest(url: string): Promise<string> {
  const { stdout } = await run('sh', ['-c', `curl -sf "${url}" | sha256sum`], { maxBuffer: 1024 * 1024 });
  return `sha256:${stdout.split(' ')[0]}`;
}

/** A GET whose response is paused until `resume()`: a client that stops reading. Resolves the digest of all it got. */
function stalledGet(url: string): { resume(): void; digest: Promise<string>; started: Promise<void> } {
  let resume = () => undefined as void;
  let started!: () => void;
  const startedP = new Promise<void>((resolve) => (started = resolve));
  const digest = new Promise<string>((resolve, reject) => {
    http
      .get(url, (res) => {
        res.pause();
        started();
        const hash = createHash('sha256');
        resume = () => {
          res.on('data', (chunk: Buffer) => hash.update(chunk));
          res.on('end', () => resolve(`sha256:${hash.digest('hex')}`));
          res.on('error', reject);
          res.resume();
        };
      })
      .on('error', reject);
  });
  return { resume: () => resume(), digest, started: startedP };
}

/**
 * Readers of a download in progress over real HTTP sockets: a client that keeps up is sent the
 * download's in-memory segments (no spool read), a client that stops reading falls back to the
 * spool file, memory stays bounded whatever a stalled client does, and every client gets
 * exactly the blob.
 */
describe('blob fill: readers served from memory, slow readers from the spool', () => {
  let dir: string;
  let deps: FillDeps;
  let server: http.Server;
  let base: string;
  const fills = new Map<string, BlobFill>();
  /** Resolved when the server got a GET of that name. */
  const requested = new Map<string, () => void>();
  const requestOf = (name: string) => new Promise<void>((resolve) => requested.set(name, resolve));

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'berth-fill-mem-'));
    const blobs = await new FilesystemBlobStore(path.join(dir, 'storage')).init();
    deps = { blobs, spoolDir: path.join(dir, 'proxy-spool'), link: async () => undefined };
    server = http.createServer((req, res) => {
      const fill = fills.get(req.url!.slice(1));
      if (!fill) return void res.writeHead(404).end();
      void fill.reader().then((reader) => {
        requested.get(req.url!.slice(1))?.();
        res.writeHead(200, { 'content-length': String(fill.size) });
        reader.on('error', () => res.destroy());
        reader.pipe(res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('a client that keeps up gets identical bytes, sent from memory (the download waits for it)', async (t) => {
    const blob = patterned(48 * MiB + 12345);
    // The upstream starts once the client is there (as a client's GET starts a real fill).
    const fill = new BlobFill('hub/fast', blob.digest, 48 * MiB + 12345, blob.body(requestOf('fast')), deps);
    fills.set('fast', fill);
    assert.equal(await curlDigest(`${base}/fast`), blob.digest);
    await fill.finished();
    assert.equal(fill.error, null);
    assert.equal(fill.served.memory + fill.served.spool, fill.size);
    // The upstream here is faster than the client: the download waits for it (at most 500 ms
    // at a time, then it reads the spool), so all its bytes but a hiccup's come from memory.
    t.diagnostic(`from memory ${fill.served.memory}, from the spool ${fill.served.spool}`);
    assert.ok(
      fill.served.memory >= fill.size * 0.9,
      `sent from memory: ${fill.served.memory} of ${fill.size} (spool ${fill.served.spool})`,
    );
    await fill.cleanup();
  });

  it('a client that stops reading falls back to the spool and gets identical bytes once it reads again', async () => {
    const size = 40 * MiB + 7;
    const blob = patterned(size);
    const fill = new BlobFill('hub/slow', blob.digest, size, blob.body(), deps);
    fills.set('slow', fill);
    const stalled = stalledGet(`${base}/slow`);
    await stalled.started;
    // The download runs on while the client reads nothing.
    await fill.finished();
    assert.equal(fill.error, null);
    stalled.resume();
    assert.equal(await stalled.digest, blob.digest);
    assert.ok(fill.served.spool > 20 * MiB, `read from the spool: ${fill.served.spool} of ${size}`);
    assert.equal(fill.served.memory + fill.served.spool, size);
    await fill.cleanup();
  });

  it('memory stays bounded while 256 MiB flow past a stalled client (RSS growth < 32 MiB); both clients get the blob', async (t) => {
    const size = 256 * MiB;
    const blob = patterned(size);
    const fill = new BlobFill('hub/big', blob.digest, size, blob.body(), deps);
    fills.set('big', fill);
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const stalled = stalledGet(`${base}/big`);
    await stalled.started;
    const fast = curlDigest(`${base}/big`);
    try {
      await fill.finished();
      assert.equal(await fast, blob.digest);
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    assert.equal(fill.error, null);
    const growth = peak - rssBefore;
    t.diagnostic(`RSS growth ${(growth / MiB).toFixed(1)} MiB; from memory ${fill.served.memory}, from the spool ${fill.served.spool}`);
    assert.ok(growth < 32 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB while 256 MiB flowed`);
    stalled.resume();
    assert.equal(await stalled.digest, blob.digest);
    await fill.cleanup();
  });

  it('two concurrent first pulls of one blob share one download and both get identical bytes', async () => {
    const size = 24 * MiB + 99;
    const blob = patterned(size);
    const coalescing = new BlobFills(deps);
    let fetches = 0;
    const fetch = async () => {
      fetches++;
      return { size, body: blob.body() };
    };
    const [a, b] = await Promise.all([coalescing.get('hub/two', blob.digest, fetch), coalescing.get('hub/two', blob.digest, fetch)]);
    assert.equal(fetches, 1, 'one upstream fetch');
    assert.ok(a.fill instanceof BlobFill && a.fill === b.fill);
    assert.deepEqual([a.joined, b.joined].sort(), [false, true]);
    const fill = a.fill;
    fills.set('two', fill);
    const [first, second] = await Promise.all([curlDigest(`${base}/two`), curlDigest(`${base}/two`)]);
    assert.equal(first, blob.digest);
    assert.equal(second, blob.digest);
    await fill.finished();
    assert.equal(fill.error, null);
    assert.equal(fill.served.memory + fill.served.spool, 2 * size);
  });
});
