import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { RegistryClient, errorCode, makeImage } from '../helpers/registry-client.js';
import { rmSync } from 'node:fs';
import { startBerthProcess, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { ADMIN_PASSWORD, addMember, addProject, addUser, adminAuth, basic, useAuthServer } from './support.js';

describe('auth: basic — every request carries HTTP Basic credentials', () => {
  const reg = useAuthServer('basic', { projects: { autocreate: true } });
  before(async () => {
    await addUser(reg.server, 'alice', 'alice-password');
    await addUser(reg.server, 'bob', 'bob-password');
    await addProject(reg.server, 'public-stuff', true);
    await addProject(reg.server, 'shared');
    await addMember(reg.server, 'shared', 'bob', 'guest');
  });

  it('GET /v2/ without credentials answers 401 with a Basic challenge and a spec error body', async () => {
    const res = await fetch(`${reg.url}/v2/`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Basic realm="berth"');
    assert.equal(await errorCode(res), 'UNAUTHORIZED');
  });

  it('a wrong password answers 401, the right one 200', async () => {
    const wrong = await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('alice', 'nope-nope') } });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get('www-authenticate'), 'Basic realm="berth"');
    const right = await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('alice', 'alice-password') } });
    assert.equal(right.status, 200);
  });

  it('the initial admin exists with the configured password and is an admin', async () => {
    const res = await fetch(`${reg.url}/api/v1/me`, { headers: { authorization: adminAuth() } });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { name: 'admin', kind: 'user', admin: true, memberships: [], username: 'admin', projects: [] });
  });

  it('a user pushing to a new project creates it and becomes its project-admin', async () => {
    const alice = new RegistryClient(reg.url, { authorization: basic('alice', 'alice-password') });
    const image = makeImage();
    await alice.pushImage('alice-team/app', 'v1', image);
    const pulled = await alice.fetch('/v2/alice-team/app/manifests/v1');
    assert.equal(pulled.status, 200);
    assert.deepEqual(Buffer.from(await pulled.arrayBuffer()), image.manifest.data);
    const members = await fetch(`${reg.url}/api/v1/projects/alice-team/members`, { headers: { authorization: adminAuth() } });
    assert.deepEqual(await members.json(), [{ project: 'alice-team', username: 'alice', role: 'project-admin' }]);
  });

  it("pushing to someone else's project answers 403 DENIED naming the user, the repository and the action", async () => {
    const bob = new RegistryClient(reg.url, { authorization: basic('bob', 'bob-password') });
    const res = await bob.pushBlob('alice-team/app', makeImage().config);
    assert.equal(res.status, 403);
    const body = (await res.json()) as { errors: { code: string; message: string }[] };
    assert.equal(body.errors[0]!.code, 'DENIED');
    assert.match(body.errors[0]!.message, /bob may not (pull, )?push repository alice-team\/app/);
  });

  it('pulling a private project answers 401 to anonymous callers and 403 to a signed-in stranger', async () => {
    const anonymous = await fetch(`${reg.url}/v2/alice-team/app/manifests/v1`);
    assert.equal(anonymous.status, 401);
    const stranger = await fetch(`${reg.url}/v2/alice-team/app/manifests/v1`, { headers: { authorization: basic('bob', 'bob-password') } });
    assert.equal(stranger.status, 403);
    assert.equal(await errorCode(stranger), 'DENIED');
  });

  it('anonymous callers may pull from a public project but not push to it', async () => {
    const admin = new RegistryClient(reg.url, { authorization: adminAuth() });
    const image = makeImage();
    await admin.pushImage('public-stuff/tool', 'latest', image);
    const pulled = await fetch(`${reg.url}/v2/public-stuff/tool/manifests/latest`);
    assert.equal(pulled.status, 200);
    const push = await new RegistryClient(reg.url).pushBlob('public-stuff/tool', makeImage().config);
    assert.equal(push.status, 401);
  });

  it('a guest may pull but not push', async () => {
    const admin = new RegistryClient(reg.url, { authorization: adminAuth() });
    await admin.pushImage('shared/lib', 'v1', makeImage());
    const bob = new RegistryClient(reg.url, { authorization: basic('bob', 'bob-password') });
    assert.equal((await bob.fetch('/v2/shared/lib/manifests/v1')).status, 200);
    assert.equal((await bob.pushBlob('shared/lib', makeImage().config)).status, 403);
  });

  it('the catalog needs credentials and lists only what the caller may pull', async () => {
    assert.equal((await fetch(`${reg.url}/v2/_catalog`)).status, 401);
    const res = await fetch(`${reg.url}/v2/_catalog`, { headers: { authorization: basic('bob', 'bob-password') } });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { repositories: ['public-stuff/tool', 'shared/lib'] });
    const all = await fetch(`${reg.url}/v2/_catalog`, { headers: { authorization: adminAuth() } });
    assert.deepEqual(await all.json(), { repositories: ['alice-team/app', 'public-stuff/tool', 'shared/lib'] });
  });
});

describe('failed-login rate limiting', () => {
  const reg = useAuthServer('basic', { ratelimit: { failures: 3, perip: 3, window: '5m', backoff: '1m' } });
  before(async () => {
    await addUser(reg.server, 'carol', 'carol-password');
  });

  it('after too many failures an account answers 429 TOOMANYREQUESTS with Retry-After, even with the right password', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('carol', `wrong-${i}-password`) } });
      assert.equal(res.status, 401);
    }
    const blocked = await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('carol', 'carol-password') } });
    assert.equal(blocked.status, 429);
    assert.equal(await errorCode(blocked), 'TOOMANYREQUESTS');
    const retryAfter = Number(blocked.headers.get('retry-after'));
    assert.ok(retryAfter > 0 && retryAfter <= 300, `Retry-After ${retryAfter}`);
  });

  it('the client IP is throttled too (auth.ratelimit.perip): other accounts from the same address are refused while it is blocked', async () => {
    const res = await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('admin', ADMIN_PASSWORD) } });
    assert.equal(res.status, 429);
  });
});

describe('initial admin', () => {
  it('with no password configured, one is generated, printed once on stderr, and works (no hard-coded default)', async () => {
    let printed = '';
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => ((printed += chunk.toString()), true)) as typeof process.stderr.write;
    let server: TestServer;
    try {
      server = await startTestServer({ auth: { mode: 'basic' } });
    } finally {
      process.stderr.write = write;
    }
    try {
      const password = /initial admin user "admin" created with password: (\S+)/.exec(printed)?.[1];
      assert.ok(password, `stderr: ${printed}`);
      assert.equal((await fetch(`${server.url}/v2/`, { headers: { authorization: basic('admin', password) } })).status, 200);
      assert.equal((await fetch(`${server.url}/v2/`, { headers: { authorization: basic('admin', 'admin') } })).status, 401);
    } finally {
      await server.destroy();
    }
  });

  it('a real berth serve prints the generated password on stderr only, never in the JSON log', async () => {
    const dataDir = tempDir();
    const berth = await startBerthProcess({ BERTH_DATA_DIR: dataDir, BERTH_AUTH_MODE: 'basic' });
    try {
      const password = /initial admin user "admin" created with password: (\S+)/.exec(berth.output())?.[1];
      assert.ok(password, berth.output());
      assert.equal((await fetch(`${berth.url}/v2/`, { headers: { authorization: basic('admin', password) } })).status, 200);
      assert.match(berth.logOutput(), /created the initial admin with a generated password/);
      assert.ok(!berth.logOutput().includes(password), 'the password is not in the JSON log');
    } finally {
      await berth.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('auth: none (the zero-setup default)', () => {
  for (const [addr, warns] of [
    ['127.0.0.1:0', false],
    ['0.0.0.0:0', true],
  ] as const) {
    it(`${warns ? 'warns loudly' : 'does not warn'} when listening on ${addr}`, async () => {
      const dataDir = tempDir();
      const berth = await startBerthProcess({ BERTH_DATA_DIR: dataDir, BERTH_HTTP_ADDR: addr });
      try {
        assert.equal(/auth\.mode is none and Berth listens beyond loopback/.test(berth.output()), warns, berth.output());
        assert.equal((await fetch(`${berth.url}/v2/`)).status, 200, 'no credentials needed');
      } finally {
        await berth.stop();
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  }
});
