import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { IncomingMessage, createServer as createHttpServer } from 'node:http';
import { Readable } from 'node:stream';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { blobRequests, nodeBody } from '../../src/client/index.js';
import { ADMIN_PASSWORD, addUser, adminAuth, api, basic } from '../auth/support.js';
import { metadataEnvOf, runBerth } from '../helpers/cli.js';
import { startDistribution, type DistributionServer } from '../helpers/distribution.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const SECRET = 'dist-pass-Qm42';

/**
 * Registry endpoints over real HTTP (/api/v1/registries): system admins only, credentials
 * sealed at rest and never returned, and "test connection" against real registries — CNCF
 * Distribution (docker-registry) without auth and with htpasswd (Basic), and a second Berth
 * with token auth (Bearer) — with the reason of each failure.
 */
describe('registry endpoints', () => {
  let server: TestServer;
  let open: DistributionServer;
  let locked: DistributionServer;
  let upstreamBerth: TestServer;
  let silent: Server;
  let silentPort: number;
  const user = basic('ursula', 'ursula-pass-1');
  const responses: string[] = [];

  const call = async (method: string, path: string, authorization: string, body?: unknown) => {
    const res = await api(server, method, path, authorization, body);
    const text = await res.text();
    responses.push(text);
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const add = async (body: Record<string, unknown>) => {
    const res = await call('POST', '/registries', adminAuth(), body);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };

  before(async () => {
    [open, locked] = await Promise.all([startDistribution(), startDistribution({ user: { username: 'dist', password: SECRET } })]);
    // One after the other: two schedulers starting at once in one process collide on croner's job names.
    upstreamBerth = await startTestServer({ auth: { mode: 'token', admin: { password: 'upstream-admin-1' } } });
    server = await startTestServer({
      auth: { mode: 'basic', admin: { password: ADMIN_PASSWORD } },
      secrets: { key: randomBytes(32).toString('base64') },
    });
    await addUser(server, 'ursula', 'ursula-pass-1');
    // A port that accepts connections and never answers (a hung upstream).
    silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as { port: number }).port;
  });
  after(async () => {
    silent?.close();
    await Promise.all([open?.stop(), locked?.stop(), upstreamBerth?.destroy(), server?.destroy()]);
  });

  it('creates, lists, changes and deletes endpoints; the credential is never returned', async () => {
    const created = await add({ name: 'dist', url: `${locked.url}/v2/`, kind: 'distribution', username: 'dist', credential: SECRET });
    assert.equal(created.url, locked.url, 'a trailing /v2/ is dropped');
    assert.equal(created.hasCredential, true);
    assert.equal(created.credential, undefined);
    const listed = await call('GET', '/registries', adminAuth());
    assert.deepEqual(
      listed.body.map((e: { name: string }) => e.name),
      ['dist'],
    );
    const changed = await call('PATCH', '/registries/dist', adminAuth(), { description: 'DR site', insecure: true });
    assert.equal(changed.status, 200);
    assert.equal(changed.body.description, 'DR site');
    assert.equal(changed.body.insecure, true);
    assert.equal(changed.body.hasCredential, true, 'a PATCH without credential keeps it');
    await add({ name: 'gone', url: 'http://127.0.0.1:1' });
    assert.equal((await call('DELETE', '/registries/gone', adminAuth())).status, 204);
    assert.equal((await call('GET', '/registries/gone', adminAuth())).status, 404);
    assert.ok(
      responses.every((text) => !text.includes(SECRET)),
      'no answer ever contains the credential',
    );
  });

  it('the credential is sealed in the database', async () => {
    const db = server.stores.metadata.db as unknown as {
      selectFrom(t: string): {
        select(c: string[]): { where(c: string, o: string, v: string): { executeTakeFirstOrThrow(): Promise<{ credential: string }> } };
      };
    };
    const row = await db.selectFrom('registry_endpoints').select(['credential']).where('name', '=', 'dist').executeTakeFirstOrThrow();
    assert.match(row.credential, /^berth:v1:/);
    assert.ok(!row.credential.includes(SECRET));
    assert.equal((await server.stores.registries.byName('dist'))?.credential, SECRET, 'it opens with the key');
  });

  it('refusals: 401 anonymous, 403 for a user who is not a system admin, 400 bad bodies, 409 duplicate name, 404 unknown', async () => {
    for (const [method, path] of [
      ['GET', '/registries'],
      ['POST', '/registries'],
      ['GET', '/registries/dist'],
      ['PATCH', '/registries/dist'],
      ['DELETE', '/registries/dist'],
      ['POST', '/registries/dist/ping'],
    ] as const) {
      const anonymous = await fetch(`${server.url}/api/v1${path}`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: method === 'GET' || method === 'DELETE' ? undefined : '{}',
      });
      assert.equal(anonymous.status, 401, `${method} ${path} anonymous`);
      const res = await call(method, path, user, method === 'GET' || method === 'DELETE' ? undefined : {});
      assert.equal(res.status, 403, `${method} ${path} as a plain user`);
      assert.equal(res.body.errors[0].code, 'DENIED');
    }
    assert.equal((await call('POST', '/registries', adminAuth(), { name: 'x', url: 'ftp://example' })).status, 400);
    assert.equal(
      (await call('POST', '/registries', adminAuth(), { name: 'x', url: 'http://u:p@example' })).status,
      400,
      'credentials in the URL',
    );
    assert.equal((await call('POST', '/registries', adminAuth(), { name: 'bad name', url: 'http://example' })).status, 400);
    assert.equal(
      (await call('POST', '/registries', adminAuth(), { name: 'x', url: 'http://example/prefix' })).status,
      400,
      'a path under the host',
    );
    assert.equal(
      (await call('POST', '/registries', adminAuth(), { name: 'x', url: 'http://example', credential: 'p' })).status,
      400,
      'a credential without a username',
    );
    assert.equal((await call('POST', '/registries', adminAuth(), { name: 'x', url: 'http://example', caBundle: 'not pem' })).status, 400);
    assert.equal(
      (await call('POST', '/registries', adminAuth(), { name: 'x', url: 'http://example', password: 'p' })).status,
      400,
      'unknown field',
    );
    const duplicate = await call('POST', '/registries', adminAuth(), { name: 'dist', url: 'http://example' });
    assert.equal(duplicate.status, 409);
    assert.equal(duplicate.body.errors[0].code, 'CONFLICT');
    assert.equal((await call('PATCH', '/registries/none', adminAuth(), { description: 'x' })).status, 404);
    assert.equal((await call('DELETE', '/registries/none', adminAuth())).status, 404);
    assert.equal((await call('POST', '/registries/none/ping', adminAuth())).status, 404);
  });

  it('test connection: Distribution without auth, with htpasswd (Basic), and a Berth with token auth (Bearer)', async () => {
    await call('PATCH', '/registries/dist', adminAuth(), { insecure: false });
    await add({ name: 'open', url: open.url, kind: 'distribution' });
    await add({ name: 'berth', url: upstreamBerth.url, kind: 'berth', username: 'admin', credential: 'upstream-admin-1' });
    const ping = async (name: string) => {
      const res = await call('POST', `/registries/${name}/ping`, adminAuth());
      assert.equal(res.status, 200);
      return res.body;
    };
    const a = await ping('open');
    assert.equal(a.ok, true, a.reason);
    assert.equal(a.auth, 'none');
    assert.equal(a.apiVersion, 'registry/2.0');
    const b = await ping('dist');
    assert.equal(b.ok, true, b.reason);
    assert.equal(b.auth, 'basic');
    const c = await ping('berth');
    assert.equal(c.ok, true, c.reason);
    assert.equal(c.auth, 'bearer');
  });

  it("an endpoint's client reads blob bodies from the socket past the HTTP parser: Distribution with htpasswd (Basic), Berth with token auth (Bearer)", async () => {
    const { openRegistryClient } = await import('../../src/registries/index.js');
    const data = randomBytes(3 * 1024 * 1024 + 5);
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    for (const [url, username, credential] of [
      [locked.url, 'dist', SECRET],
      [upstreamBerth.url, 'admin', 'upstream-admin-1'],
    ] as const) {
      const client = openRegistryClient({ url, username, credential, insecure: false, caBundle: null }, { retry: { attempts: 1 } });
      await client.pushBlob('team/raw', Readable.from([data.subarray(0, 1000), data.subarray(1000)]), { digest, size: data.length });
      const res = await client.send(blobRequests.get('team/raw', digest));
      assert.equal(res.status, 200, url);
      const body = nodeBody(res);
      assert.ok(body && !(body instanceof IncomingMessage), `the socket's own chunks, not the parser's copies (${url})`);
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk as Buffer);
      assert.ok(Buffer.concat(chunks).equals(data), url);
      await assert.rejects(res.arrayBuffer(), 'the web body is gone once the Node one was taken');
      const again = [] as Buffer[];
      for await (const chunk of client.getBlob('team/raw', digest)) again.push(chunk as Buffer);
      assert.ok(Buffer.concat(again).equals(data), `getBlob verifies over the raw stream (${url})`);
      const wrong = client.getBlob(
        'team/raw',
        digest.replace(/.$/, (c) => (c === '0' ? '1' : '0')),
      );
      await assert.rejects(async () => {
        for await (const _ of wrong) void _;
      }, /404|BLOB_UNKNOWN|unknown/i);
    }
  });

  it('test connection failures say why: wrong password, no credential, token refused, nothing listening, no answer, not a registry', async () => {
    await add({ name: 'dist-wrong', url: locked.url, username: 'dist', credential: 'wrong-password' });
    await add({ name: 'dist-anon', url: locked.url });
    await add({ name: 'berth-wrong', url: upstreamBerth.url, username: 'admin', credential: 'wrong-password' });
    // A port nothing listens on (fetch refuses port 1 as "bad port" before connecting).
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const closedPort = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));
    await add({ name: 'closed', url: `http://127.0.0.1:${closedPort}` });
    await add({ name: 'hung', url: `http://127.0.0.1:${silentPort}` });
    // A web server that is not a registry: 404 for everything.
    const web = createHttpServer((_req, res) => res.writeHead(404).end('not here'));
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    after(() => web.close());
    await add({ name: 'not-registry', url: `http://127.0.0.1:${(web.address() as { port: number }).port}` });
    const ping = async (name: string) => (await call('POST', `/registries/${name}/ping`, adminAuth())).body;
    const wrong = await ping('dist-wrong');
    assert.equal(wrong.ok, false);
    assert.equal(wrong.status, 401);
    assert.match(wrong.reason, /refused the credential of user dist \(basic\)/);
    const anon = await ping('dist-anon');
    assert.match(anon.reason, /asks for authentication \(basic\) and the endpoint has no username/);
    const token = await ping('berth-wrong');
    assert.equal(token.ok, false);
    assert.equal(token.auth, 'bearer');
    assert.match(token.reason, /token service refused the credential of user admin/);
    const closed = await ping('closed');
    assert.equal(closed.status, 0);
    assert.match(closed.reason, new RegExp(`cannot reach http://127\\.0\\.0\\.1:${closedPort}/v2/.*ECONNREFUSED`));
    const notRegistry = await ping('not-registry');
    assert.equal(notRegistry.ok, false);
    assert.match(notRegistry.reason, /answered HTTP 404 \(not a registry/);
    const hung = await server.composition.registries.ping('hung', 500);
    assert.equal(hung.ok, false);
    assert.match(hung.reason!, /no answer from .* within 500 ms/);
    assert.ok(responses.every((text) => !text.includes('wrong-password') && !text.includes(SECRET)));
  });

  it('the CLI adds (password from stdin or env), lists, pings and removes endpoints', async () => {
    const env = {
      ...metadataEnvOf(server.dataDir, server.config.metadata),
      BERTH_AUTH_MODE: 'basic',
      BERTH_SECRETS_KEY: server.config.secrets.key,
      DIST_PASS: SECRET,
    };
    const berth = (args: string[]) => runBerth(args, env, 60_000);
    const added = await berth([
      'registry',
      'add',
      'cli-dist',
      locked.url,
      '--kind',
      'distribution',
      '--username',
      'dist',
      '--password-env',
      'DIST_PASS',
    ]);
    assert.equal(added.code, 0, added.stderr);
    const listed = await berth(['registry', 'list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const mine = (JSON.parse(listed.stdout) as { name: string; hasCredential: boolean }[]).find((e) => e.name === 'cli-dist');
    assert.equal(mine?.hasCredential, true);
    assert.ok(!listed.stdout.includes(SECRET));
    const ok = await berth(['registry', 'ping', 'cli-dist']);
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    assert.match(ok.stdout, /^ok: cli-dist answered/);
    const failed = await berth(['registry', 'ping', 'dist-wrong']);
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /failed: .*refused the credential/);
    const dup = await berth(['registry', 'add', 'cli-dist', locked.url]);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /already exists/);
    const badKind = await berth(['registry', 'add', 'x', locked.url, '--kind', 'nope']);
    assert.equal(badKind.code, 2);
    const bound = await berth(['registry', 'cache', 'set', 'mirror', 'cli-dist', '--namespace', 'lib', '--tag-ttl', '60']);
    assert.equal(bound.code, 0, bound.stderr);
    assert.match(bound.stdout, /project mirror pulls through cli-dist \(namespace lib\), tags revalidated after 60 s/);
    const caches = await berth(['registry', 'cache', 'list', '--json']);
    assert.deepEqual(
      (JSON.parse(caches.stdout) as { project: string; endpoint: string; keepDeletedTags: boolean | null }[]).map((c) => [
        c.project,
        c.endpoint,
        c.keepDeletedTags,
      ]),
      [['mirror', 'cli-dist', null]],
    );
    const dropping = await berth(['registry', 'cache', 'set', 'mirror', 'cli-dist', '--namespace', 'lib', '--no-keep-deleted-tags']);
    assert.equal(dropping.code, 0, dropping.stderr);
    assert.match(dropping.stdout, /tags deleted upstream are deleted/);
    assert.equal((await server.stores.proxyCache.project('mirror'))?.keepDeletedTags, false);
    const keeping = await berth(['registry', 'cache', 'set', 'mirror', 'cli-dist', '--namespace', 'lib', '--keep-deleted-tags']);
    assert.equal(keeping.code, 0, keeping.stderr);
    assert.equal((await server.stores.proxyCache.project('mirror'))?.keepDeletedTags, true);
    const inUse = await berth(['registry', 'remove', 'cli-dist']);
    assert.equal(inUse.code, 1);
    assert.match(inUse.stderr, /in use by cache project mirror/);
    const badTtl = await berth(['registry', 'cache', 'set', 'mirror', 'cli-dist', '--tag-ttl', 'soon']);
    assert.equal(badTtl.code, 2);
    const unbound = await berth(['registry', 'cache', 'remove', 'mirror']);
    assert.equal(unbound.code, 0, unbound.stderr);
    const removed = await berth(['registry', 'remove', 'cli-dist']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(await server.stores.registries.byName('cli-dist'), null);
  });
});
