import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { OciClient, RegistryClientError, backoffDelay, nextLink, parseRetryAfter } from '../../src/client/index.js';
import { makeBlob, sha256 } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { CuttingProxy, FAST_RETRY, FlakyFront, httpServer, readAll } from './support.js';

describe('client resilience: resume, retry, redirect', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.destroy());

  it('resumes a download cut mid-body with Range and still verifies the whole digest', async () => {
    const blob = makeBlob(2 * 1024 * 1024);
    await new OciClient({ baseUrl: server.url }).pushBlob('resume/app', blob.data);
    const proxy = await CuttingProxy.start(server.url);
    try {
      const client = new OciClient({ baseUrl: proxy.url, retry: FAST_RETRY });
      proxy.cutAfter(300_000);
      const stream = client.getBlob('resume/app', blob.digest);
      const got = await readAll(stream);
      assert.equal(proxy.cuts, 1, 'the connection was cut once');
      assert.equal(got.length, blob.size);
      assert.ok(got.equals(blob.data));
    } finally {
      await proxy.close();
    }
  });

  it('gives up after maxResumes when every connection drops', async () => {
    const blob = makeBlob(512 * 1024);
    await new OciClient({ baseUrl: server.url }).pushBlob('resume/app', blob.data);
    const proxy = await CuttingProxy.start(server.url);
    try {
      const client = new OciClient({ baseUrl: proxy.url, retry: FAST_RETRY });
      const stream = client.getBlob('resume/app', blob.digest, { maxResumes: 1 });
      // Cut the first response, then the resumed one.
      proxy.cutAfter(100_000);
      let chunks = 0;
      const err = await (async () => {
        for await (const _ of stream) if (++chunks === 1) proxy.cutAfter(50_000);
      })().catch((e: unknown) => e);
      assert.ok(err instanceof RegistryClientError, String(err));
      assert.equal(err.code, 'NETWORK');
      assert.equal(proxy.cuts, 2);
    } finally {
      await proxy.close();
    }
  });

  it('fails with DIGEST_INVALID when the bytes do not match the digest', async () => {
    const body = Buffer.from('not what you asked for');
    const liar = await httpServer((_req, res) => res.writeHead(200, { 'content-length': body.length }).end(body));
    try {
      const client = new OciClient({ baseUrl: liar.url, retry: FAST_RETRY });
      await assert.rejects(
        readAll(client.getBlob('x/y', sha256('something else'))),
        (err: RegistryClientError) => err.code === 'DIGEST_INVALID' && err.status === 0,
      );
    } finally {
      await liar.close();
    }
  });

  it('retries a GET twice answered 503 and succeeds on the third try', async () => {
    const blob = makeBlob(1000);
    await new OciClient({ baseUrl: server.url }).pushBlob('retry/app', blob.data);
    const front = await FlakyFront.start(server.url, 2);
    try {
      const client = new OciClient({ baseUrl: front.url, retry: FAST_RETRY });
      assert.deepEqual(await client.headBlob('retry/app', blob.digest), { digest: blob.digest, size: blob.size });
      assert.equal(front.seen.length, 3);
    } finally {
      await front.close();
    }
  });

  it('honours 429 Retry-After, and stops after the last attempt with the spec error', async () => {
    const front = await FlakyFront.start(server.url, 10, 429, '0');
    try {
      const client = new OciClient({ baseUrl: front.url, retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 20 } });
      const err = await client.headManifest('retry/app', 'latest').catch((e: unknown) => e);
      assert.ok(err instanceof RegistryClientError);
      assert.equal(err.status, 429);
      assert.equal(front.seen.length, 3);
    } finally {
      await front.close();
    }
  });

  it('does not retry a PATCH with a streamed body on 503', async () => {
    const front = await FlakyFront.start(server.url, 1);
    try {
      const client = new OciClient({ baseUrl: front.url, retry: FAST_RETRY });
      const res = await client.send({
        method: 'PATCH',
        url: '/v2/retry/app/blobs/uploads/whatever',
        body: (async function* () {
          yield Buffer.from('abc');
        })(),
      });
      assert.equal(res.status, 503);
      await res.arrayBuffer();
      assert.equal(front.seen.length, 1);
    } finally {
      await front.close();
    }
  });

  it('retries a chunked upload whose POST and PATCH meet 503s (Buffer chunks can be resent)', async () => {
    const blob = makeBlob(100_000);
    const front = await FlakyFront.start(server.url, 1);
    try {
      const client = new OciClient({ baseUrl: front.url, retry: FAST_RETRY });
      await client.pushBlob('retry/chunked', blob.data, { mode: 'chunked', chunkSize: 40_000 });
      front.failures = 1;
      await client.pushBlob('retry/chunked', makeBlob(10).data);
      assert.ok((await client.getBlobBytes('retry/chunked', blob.digest)).equals(blob.data));
    } finally {
      await front.close();
    }
  });

  it('a refused connection is retried, then reported as NETWORK with the URL and no credentials', async () => {
    const gone = await httpServer(() => undefined);
    await gone.close();
    const url = new URL(gone.url);
    url.username = 'user';
    url.password = 'secret';
    const client = new OciClient({
      baseUrl: url.toString(),
      credentials: { username: 'user', password: 'secret' },
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
    });
    const err = await client.headBlob('x/y', sha256('z')).catch((e: unknown) => e);
    assert.ok(err instanceof RegistryClientError);
    assert.equal(err.code, 'NETWORK');
    assert.doesNotMatch(`${err.message} ${err.url}`, /secret/);
  });

  it('follows a 307 to another host without the Authorization header', async () => {
    const data = Buffer.from('redirected bytes');
    const digest = sha256(data);
    let storageSawAuth: string | undefined = 'unset';
    const storage = await httpServer((req, res) => {
      storageSawAuth = req.headers.authorization;
      res.writeHead(200, { 'content-length': data.length }).end(data);
    }, 'localhost');
    const registry = await httpServer((req, res) => {
      if (req.headers.authorization !== 'Bearer registry-token') return void res.writeHead(401).end();
      res.writeHead(307, { location: `${storage.url}/bucket/blob?X-Amz-Signature=abc` }).end();
    });
    try {
      const client = new OciClient({ baseUrl: registry.url, headers: { authorization: 'Bearer registry-token' }, retry: FAST_RETRY });
      assert.ok((await client.getBlobBytes('r/app', digest)).equals(data));
      assert.equal(storageSawAuth, undefined);
    } finally {
      await storage.close();
      await registry.close();
    }
  });

  it('backoff grows exponentially within bounds; Retry-After wins but is capped', () => {
    const policy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 1000 };
    for (let attempt = 1; attempt <= 6; attempt++) {
      const cap = Math.min(1000, 100 * 2 ** (attempt - 1));
      const d = backoffDelay(attempt, policy);
      assert.ok(d >= cap / 2 && d <= cap, `attempt ${attempt}: ${d}`);
    }
    assert.equal(backoffDelay(1, policy, 300), 300);
    assert.equal(backoffDelay(1, policy, 60_000), 1000);
    assert.equal(parseRetryAfter('2'), 2000);
    assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6_000);
    assert.equal(parseRetryAfter('soon'), undefined);
  });

  it('parses Link headers with several relations', () => {
    assert.equal(nextLink('</v2/_catalog?n=2&last=b>; rel="next"'), '/v2/_catalog?n=2&last=b');
    assert.equal(nextLink('</a>; rel="prev", </b>; rel="next"'), '/b');
    assert.equal(nextLink('</a>; rel="prev"'), null);
    assert.equal(nextLink(null), null);
  });
});

describe('client memory', () => {
  it('streams a 64 MiB blob with flat memory (no whole-blob buffering)', { timeout: 120_000 }, async () => {
    const size = 64 * 1024 * 1024;
    const piece = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < piece.length; i++) piece[i] = (i * 31) & 0xff;
    const hash = createHash('sha256');
    for (let sent = 0; sent < size; sent += piece.length) hash.update(piece);
    const digest = `sha256:${hash.digest('hex')}`;
    const source = await httpServer(async (_req, res) => {
      res.writeHead(200, { 'content-length': size });
      for (let sent = 0; sent < size; sent += piece.length) {
        if (!res.write(piece)) await once(res, 'drain');
      }
      res.end();
    });
    try {
      const client = new OciClient({ baseUrl: source.url, retry: FAST_RETRY });
      global.gc?.();
      const before = process.memoryUsage();
      let peak = 0;
      let received = 0;
      for await (const chunk of client.getBlob('mem/app', digest) as AsyncIterable<Buffer>) {
        received += chunk.length;
        if (received % (8 * 1024 * 1024) < chunk.length) {
          const now = process.memoryUsage();
          peak = Math.max(peak, now.arrayBuffers - before.arrayBuffers + now.heapUsed - before.heapUsed);
        }
      }
      assert.equal(received, size);
      assert.ok(peak < 32 * 1024 * 1024, `memory grew by ${Math.round(peak / 1024 / 1024)} MiB while streaming 64 MiB`);
    } finally {
      await source.close();
    }
  });
});
