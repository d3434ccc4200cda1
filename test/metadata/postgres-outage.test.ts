import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { RegistryClient, errorCode, makeImage, type Image } from '../helpers/registry-client.js';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

/**
 * Losing PostgreSQL must not hang requests or the process: /readyz answers 503, registry
 * requests fail fast with 503 UNAVAILABLE, and the same process recovers once the database
 * is back. The database is taken away by a TCP proxy between Berth and the real server.
 */
const CONNECT_TIMEOUT_MS = 1_000;
const STATEMENT_TIMEOUT_MS = 2_000;
/** The longest a request may take while the database does not answer: pg's client-side timeout (2× statement timeout) plus slack. */
const HUNG_DB_BOUND_MS = 2 * STATEMENT_TIMEOUT_MS + 1_500;
/** With the database refusing connections, an answer must come at once. */
const DOWN_DB_BOUND_MS = 1_000;

describe('PostgreSQL outage: 503 UNAVAILABLE without hanging, recovery without restart', () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let server: TestServer;
  let client: RegistryClient;
  let image: Image;

  before(async () => {
    database = await createTestDatabase();
    const target = new URL(ADMIN_URL);
    proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
    server = await startTestServer({
      metadata: {
        driver: 'postgres',
        url: proxy.urlFor(database.url),
        pool: { connecttimeout: `${CONNECT_TIMEOUT_MS}ms` },
        statementtimeout: `${STATEMENT_TIMEOUT_MS}ms`,
      },
    });
    client = new RegistryClient(server.url);
    image = makeImage();
    assert.equal((await client.pushImage('outage/app', 'v1', image)).status, 201);
  });
  after(async () => {
    await server?.destroy();
    await proxy?.close();
    await database?.drop();
  });

  /** Every kind of request that needs the database answers 503 UNAVAILABLE, each within `boundMs`. */
  async function assertUnavailable(boundMs: number): Promise<void> {
    const requests: Array<[string, () => Promise<Response>]> = [
      ['GET /readyz', () => client.fetch('/readyz')],
      ['GET manifest by tag', () => client.fetch('/v2/outage/app/manifests/v1', { headers: { accept: image.mediaType } })],
      ['HEAD blob', () => client.fetch(`/v2/outage/app/blobs/${image.layers[0]!.digest}`, { method: 'HEAD' })],
      ['GET tags/list', () => client.fetch('/v2/outage/app/tags/list')],
      ['POST upload', () => client.fetch('/v2/outage/app/blobs/uploads/', { method: 'POST' })],
    ];
    const answers = await Promise.all(
      requests.map(async ([label, send]) => {
        const started = performance.now();
        const res = await send();
        const body = await res.text();
        return { label, res, body, ms: Math.round(performance.now() - started) };
      }),
    );
    console.log(`  503 answers (bound ${boundMs} ms): ${answers.map((a) => `${a.label} ${a.ms} ms`).join(', ')}`);
    for (const { label, res, body, ms } of answers) {
      assert.equal(res.status, 503, label);
      if (label === 'GET /readyz') assert.equal((JSON.parse(body) as { status: string }).status, 'unavailable');
      else if (label !== 'HEAD blob') assert.equal(await errorCode(new Response(body)), 'UNAVAILABLE', label);
      assert.ok(ms < boundMs, `${label} took ${ms} ms`);
    }
  }

  /** The same process serves again once the database is back: ready, image readable, pushes work. */
  async function assertRecovers(): Promise<void> {
    const deadline = Date.now() + 15_000;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await client.fetch('/readyz')).status;
      if (status === 200) break;
      await sleep(200);
    }
    assert.equal(status, 200, '/readyz recovers');
    const res = await client.fetch('/v2/outage/app/manifests/v1', { headers: { accept: image.mediaType } });
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), image.manifest.data);
    assert.equal((await client.pushImage('outage/app', `after-${Date.now()}`, makeImage())).status, 201);
  }

  it('database down (connections reset and refused): 503 at once, then recovers', async () => {
    proxy.refuse();
    await assertUnavailable(DOWN_DB_BOUND_MS);
    await assertUnavailable(DOWN_DB_BOUND_MS);
    proxy.restore();
    await assertRecovers();
  });

  it('database not answering (blackholed connections): 503 within the configured timeouts, then recovers', async () => {
    // Open several pooled connections first, so stalled sockets (not only new connects) are exercised.
    await Promise.all(Array.from({ length: 6 }, () => client.fetch('/v2/outage/app/tags/list').then((r) => r.arrayBuffer())));
    proxy.blackhole();
    await assertUnavailable(HUNG_DB_BOUND_MS);
    await assertUnavailable(HUNG_DB_BOUND_MS);
    proxy.restore();
    await assertRecovers();
  });
});
