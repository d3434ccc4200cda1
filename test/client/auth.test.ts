import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OciClient, RegistryClientError, parseChallenge, unionScopes } from '../../src/client/index.js';
import { makeImage, OCI_MANIFEST, type Image } from '../helpers/registry-client.js';
import type { TestServer } from '../helpers/server.js';
import { ADMIN_PASSWORD, addMember, addProject, addUser, startAuthServer } from '../auth/support.js';
import { FAST_RETRY, FlakyFront } from './support.js';

async function pushImage(client: OciClient, repo: string, tag: string, image: Image): Promise<void> {
  for (const blob of [image.config, ...image.layers]) await client.pushBlob(repo, blob.data);
  await client.putManifest(repo, tag, image.manifest.data, OCI_MANIFEST);
}

async function failure(promise: Promise<unknown>): Promise<RegistryClientError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof RegistryClientError, `expected a RegistryClientError, got ${String(err)}`);
  return err;
}

describe('client auth: Docker token flow against Berth', () => {
  let server: TestServer;
  const alice = { username: 'alice', password: 'alice-password' };
  const guest = { username: 'guest', password: 'guest-password' };
  before(async () => {
    server = await startAuthServer('token');
    await addUser(server, 'alice', alice.password);
    await addUser(server, 'guest', guest.password);
    await addProject(server, 'team');
    await addProject(server, 'open', true);
    await addMember(server, 'team', 'alice', 'maintainer');
    await addMember(server, 'team', 'guest', 'guest');
  });
  after(() => server.destroy());

  it('pushes, pulls, lists and deletes with tokens fetched per scope from the challenge realm', async () => {
    const client = new OciClient({ baseUrl: server.url, credentials: alice, retry: FAST_RETRY });
    const image = makeImage();
    await pushImage(client, 'team/app', 'v1', image);
    assert.ok((await client.getBlobBytes('team/app', image.layers[0]!.digest)).equals(image.layers[0]!.data));
    assert.deepEqual(await client.listTags('team/app'), ['v1']);
    await client.pushBlob('team/other', image.layers[0]!.data, { mountFrom: 'team/app' }).then((r) => assert.equal(r.mounted, true));
    await client.deleteManifest('team/app', image.manifest.digest);
    assert.equal(await client.headManifest('team/app', image.manifest.digest), null);
  });

  it('sends a cached token up front: a second pull of the same scope costs no 401', async () => {
    const image = makeImage({ layers: 1 });
    await pushImage(new OciClient({ baseUrl: server.url, credentials: alice }), 'team/cached', 'v1', image);
    const front = await FlakyFront.start(server.url, 0);
    try {
      const client = new OciClient({ baseUrl: front.url, credentials: alice, retry: FAST_RETRY });
      await client.headManifest('team/cached', 'v1');
      const first = front.seen.length;
      await client.headManifest('team/cached', 'v1');
      await client.headBlob('team/cached', image.config.digest);
      assert.equal(front.seen.length - first, 2, 'two requests, both carrying the cached token');
      assert.ok(front.seen.slice(first).every((r) => r.headers.authorization?.startsWith('Bearer ')));
    } finally {
      await front.close();
    }
  });

  it('answers insufficient_scope with a token for the scope the challenge names', async () => {
    const client = new OciClient({ baseUrl: server.url, credentials: alice, retry: FAST_RETRY });
    await client.listTags('team/app').catch(() => undefined); // caches a pull token
    // Declare only pull for an upload: the pull token goes out, the registry answers
    // 401 insufficient_scope naming pull,push, and the client fetches that.
    const res = await client.send({ method: 'POST', url: '/v2/team/app/blobs/uploads/', scopes: ['repository:team/app:pull'] });
    assert.equal(res.status, 202);
    await res.arrayBuffer();
  });

  it('anonymous pull works on a public project, anonymous push is 401 UNAUTHORIZED', async () => {
    const image = makeImage({ layers: 1 });
    await pushImage(
      new OciClient({ baseUrl: server.url, credentials: { username: 'admin', password: ADMIN_PASSWORD } }),
      'open/tool',
      'v1',
      image,
    );
    const anonymous = new OciClient({ baseUrl: server.url, retry: FAST_RETRY });
    assert.equal((await anonymous.getManifest('open/tool', 'v1'))?.digest, image.manifest.digest);
    const err = await failure(anonymous.pushBlob('open/tool', Buffer.from('nope')));
    assert.equal(err.status, 401);
    assert.equal(err.code, 'UNAUTHORIZED');
    assert.equal(err.method, 'POST');
  });

  it('a guest pushing is 403 DENIED; a wrong password is 401 from the realm; neither leaks the password', async () => {
    const err = await failure(
      new OciClient({ baseUrl: server.url, credentials: guest, retry: FAST_RETRY }).pushBlob('team/app', Buffer.from('x')),
    );
    assert.equal(err.status, 403);
    assert.equal(err.code, 'DENIED');
    const wrong = await failure(
      new OciClient({ baseUrl: server.url, credentials: { username: 'alice', password: 'wrong-password' }, retry: FAST_RETRY }).listTags(
        'team/app',
      ),
    );
    assert.equal(wrong.status, 401);
    assert.equal(wrong.code, 'UNAUTHORIZED');
    assert.match(wrong.url, /\/token\?/);
    for (const e of [err, wrong]) assert.doesNotMatch(`${e.message} ${e.url} ${JSON.stringify(e.errors)}`, /guest-password|wrong-password/);
  });

  it('the catalog needs a registry:catalog:* token, which the admin gets', async () => {
    const admin = new OciClient({ baseUrl: server.url, credentials: { username: 'admin', password: ADMIN_PASSWORD }, retry: FAST_RETRY });
    const repos = await admin.catalog({ pageSize: 1 });
    assert.ok(repos.includes('team/app') && repos.includes('open/tool'), repos.join(','));
  });
});

describe('client auth: Basic challenge against Berth', () => {
  let server: TestServer;
  before(async () => {
    server = await startAuthServer('basic');
    await addUser(server, 'bob', 'bob-password', true);
  });
  after(() => server.destroy());

  it('answers a Basic challenge with the credentials, then sends them up front', async () => {
    const client = new OciClient({ baseUrl: server.url, credentials: { username: 'bob', password: 'bob-password' }, retry: FAST_RETRY });
    const image = makeImage({ layers: 1 });
    await pushImage(client, 'bob/app', 'v1', image);
    assert.equal((await client.getManifest('bob/app', 'v1'))?.digest, image.manifest.digest);
  });

  it('wrong Basic credentials are 401 UNAUTHORIZED, tried once', async () => {
    const err = await failure(
      new OciClient({ baseUrl: server.url, credentials: { username: 'bob', password: 'nope' }, retry: FAST_RETRY }).listTags('bob/app'),
    );
    assert.equal(err.status, 401);
    assert.equal(err.code, 'UNAUTHORIZED');
  });
});

describe('challenge parsing', () => {
  it('reads quoted values containing commas and bare tokens', () => {
    assert.deepEqual(
      parseChallenge('Bearer realm="https://r/token",service="reg",scope="repository:a/b:pull,push",error="insufficient_scope"'),
      {
        scheme: 'bearer',
        params: { realm: 'https://r/token', service: 'reg', scope: 'repository:a/b:pull,push', error: 'insufficient_scope' },
      },
    );
    assert.deepEqual(parseChallenge('Basic realm=x'), { scheme: 'basic', params: { realm: 'x' } });
    assert.equal(parseChallenge(null), null);
  });

  it('merges scopes per resource', () => {
    assert.deepEqual(unionScopes(['repository:a:pull'], ['repository:a:push,pull', 'repository:b:pull']), [
      'repository:a:pull,push',
      'repository:b:pull',
    ]);
  });
});
