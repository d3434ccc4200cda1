import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { SignJWT, generateKeyPair, importJWK, type JWK } from 'jose';
import { RegistryClient, errorCode, makeImage } from '../helpers/registry-client.js';
import { openStores } from '../../src/stores.js';
import { ROOT } from '../helpers/server.js';
import {
  ADMIN_PASSWORD,
  addMember,
  addProject,
  addUser,
  adminAuth,
  api,
  basic,
  bearer,
  claims,
  getToken,
  header,
  token,
  type TokenAnswer,
  useAuthServer,
} from './support.js';

const run = promisify(execFile);

describe('auth: token — Docker Registry token authentication', () => {
  const alice = basic('alice', 'alice-password');
  const reg = useAuthServer('token');
  before(async () => {
    await addUser(reg.server, 'alice', 'alice-password');
    await addUser(reg.server, 'guest', 'guest-password');
    await addProject(reg.server, 'team');
    await addProject(reg.server, 'open', true);
    await addMember(reg.server, 'team', 'alice', 'developer');
    await addMember(reg.server, 'team', 'guest', 'guest');
    await new RegistryClient(reg.url, {
      authorization: bearer(await token(reg.server, ['repository:open/tool:pull,push'], adminAuth())),
    }).pushImage('open/tool', 'v1', makeImage());
  });

  /** Signs a token with the server's own current key (read from its DB), with claims of our choosing. */
  async function forge(payload: Record<string, unknown>, headerOverrides: Record<string, unknown> = {}): Promise<string> {
    // Through the store, so this works on SQLite and PostgreSQL alike.
    const stores = await openStores(reg.server.config);
    const keys = await stores.auth.listSigningKeys();
    await stores.close();
    const row = keys.find((k) => k.retiredAt === null)!;
    const key = await importJWK(JSON.parse(row.privateJwk) as JWK, 'ES256');
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ access: [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }], ...payload })
      .setProtectedHeader({ alg: 'ES256', kid: row.kid, ...headerOverrides })
      .setIssuer((payload.iss as string) ?? 'berth')
      .setSubject('alice')
      .setAudience((payload.aud as string) ?? 'berth')
      .setIssuedAt((payload.iat as number) ?? now)
      .setNotBefore((payload.nbf as number) ?? now)
      .setExpirationTime((payload.exp as number) ?? now + 300)
      .sign(key);
  }

  const tagsList = (jwt: string, repo = 'team/app') =>
    fetch(`${reg.url}/v2/${repo}/tags/list`, { headers: { authorization: bearer(jwt) } });

  it('GET /v2/ without a token answers 401 with a Bearer challenge naming the realm and service', async () => {
    const res = await fetch(`${reg.url}/v2/`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), `Bearer realm="${reg.url}/token",service="berth"`);
    assert.equal(await errorCode(res), 'UNAUTHORIZED');
  });

  it('the challenge carries the scope the request needs: pull for a GET, pull,push for an upload', async () => {
    const get = await fetch(`${reg.url}/v2/team/app/manifests/latest`);
    assert.equal(get.headers.get('www-authenticate'), `Bearer realm="${reg.url}/token",service="berth",scope="repository:team/app:pull"`);
    const post = await fetch(`${reg.url}/v2/team/app/blobs/uploads/`, { method: 'POST' });
    assert.equal(
      post.headers.get('www-authenticate'),
      `Bearer realm="${reg.url}/token",service="berth",scope="repository:team/app:pull,push"`,
    );
  });

  it('issues an ES256 JWT with kid, iss, sub, aud, exp, nbf, iat, jti and the access granted', async () => {
    const res = await getToken(reg.server, ['repository:team/app:pull,push'], alice);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as TokenAnswer;
    assert.equal(body.token, body.access_token);
    assert.equal(body.expires_in, 300);
    assert.ok(Math.abs(Date.parse(body.issued_at) - Date.now()) < 5000);
    const h = header(body.token);
    assert.equal(h.alg, 'ES256');
    assert.equal(typeof h.kid, 'string');
    const c = claims(body.token);
    assert.equal(c.iss, 'berth');
    assert.equal(c.sub, 'alice');
    assert.equal(c.aud, 'berth');
    assert.equal((c.exp as number) - (c.iat as number), 300);
    assert.equal(c.nbf, c.iat);
    assert.match(c.jti as string, /^[0-9a-f-]{36}$/);
    assert.deepEqual(c.access, [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }]);
  });

  it('grants only the intersection of requested and allowed actions, and omits denied scopes without failing', async () => {
    const jwt = await token(
      reg.server,
      ['repository:team/app:pull,push,delete', 'repository:secret/x:pull', 'registry:catalog:*', 'bogus'],
      basic('guest', 'guest-password'),
    );
    assert.deepEqual(claims(jwt).access, [
      { type: 'repository', name: 'team/app', actions: ['pull'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
  });

  it('anonymous requests get a token with an empty subject that only covers public projects', async () => {
    const jwt = await token(reg.server, ['repository:open/tool:pull,push', 'repository:team/app:pull']);
    const c = claims(jwt);
    assert.equal(c.sub, '');
    assert.deepEqual(c.access, [{ type: 'repository', name: 'open/tool', actions: ['pull'] }]);
    const pulled = await fetch(`${reg.url}/v2/open/tool/manifests/v1`, { headers: { authorization: bearer(jwt) } });
    assert.equal(pulled.status, 200);
  });

  it('a wrong password is refused with 401 (and no token)', async () => {
    const res = await getToken(reg.server, ['repository:team/app:pull'], basic('alice', 'wrong-password'));
    assert.equal(res.status, 401);
    assert.equal(await errorCode(res), 'UNAUTHORIZED');
  });

  it('a token is accepted for what it grants: push and pull with it work', async () => {
    const jwt = await token(reg.server, ['repository:team/app:pull,push'], alice);
    const client = new RegistryClient(reg.url, { authorization: bearer(jwt) });
    await client.pushImage('team/app', 'v1', makeImage());
    assert.equal((await tagsList(jwt)).status, 200);
  });

  it('a token for repository A used on B answers 401 error="insufficient_scope" with B\'s scope', async () => {
    const jwt = await token(reg.server, ['repository:team/app:pull'], alice);
    const res = await tagsList(jwt, 'team/other');
    assert.equal(res.status, 401);
    assert.equal(
      res.headers.get('www-authenticate'),
      `Bearer realm="${reg.url}/token",service="berth",scope="repository:team/other:pull",error="insufficient_scope",error_description="token lacks pull access to repository:team/other:pull"`,
    );
  });

  it('a pull-only token used to push answers 401 insufficient_scope when the user could get push', async () => {
    const jwt = await token(reg.server, ['repository:team/app:pull'], alice);
    const res = await new RegistryClient(reg.url, { authorization: bearer(jwt) }).pushBlob('team/app', makeImage().config);
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate')!, /error="insufficient_scope"/);
  });

  it('pushing where the user can never get push answers 403 DENIED instead of another challenge', async () => {
    const jwt = await token(reg.server, ['repository:team/app:pull,push'], basic('guest', 'guest-password'));
    const res = await new RegistryClient(reg.url, { authorization: bearer(jwt) }).pushBlob('team/app', makeImage().config);
    assert.equal(res.status, 403);
    assert.equal(await errorCode(res), 'DENIED');
  });

  for (const [what, payload] of [
    [
      'expired',
      { exp: Math.floor(Date.now() / 1000) - 120, iat: Math.floor(Date.now() / 1000) - 600, nbf: Math.floor(Date.now() / 1000) - 600 },
    ],
    ['not yet valid', { nbf: Math.floor(Date.now() / 1000) + 3600 }],
    ['wrong-audience', { aud: 'someone-else' }],
    ['wrong-issuer', { iss: 'evil' }],
  ] as const) {
    it(`rejects a ${what} token with 401 error="invalid_token"`, async () => {
      const good = await forge({});
      assert.equal((await tagsList(good)).status, 200, 'control: the forged-with-real-key token works');
      const res = await tagsList(await forge(payload));
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate')!, /error="invalid_token"/);
    });
  }

  it('rejects alg "none"', async () => {
    const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const unsigned = `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ iss: 'berth', sub: 'alice', aud: 'berth', iat: now, nbf: now, exp: now + 300, access: [{ type: 'repository', name: 'team/app', actions: ['pull'] }] })}.`;
    assert.equal((await tagsList(unsigned)).status, 401);
  });

  it('rejects a token signed by another key under the same kid', async () => {
    const real = await forge({});
    const { privateKey } = await generateKeyPair('ES256');
    const now = Math.floor(Date.now() / 1000);
    const fake = await new SignJWT({ access: [{ type: 'repository', name: 'team/app', actions: ['pull'] }] })
      .setProtectedHeader({ alg: 'ES256', kid: header(real).kid! })
      .setIssuer('berth')
      .setSubject('alice')
      .setAudience('berth')
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + 300)
      .sign(privateKey);
    assert.equal((await tagsList(fake)).status, 401);
  });

  it('rejects a tampered token (payload changed after signing)', async () => {
    const jwt = await token(reg.server, ['repository:team/app:pull'], alice);
    const [h, p, s] = jwt.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString()) as { access: { actions: string[] }[] };
    payload.access[0]!.actions = ['pull', 'push', 'delete'];
    const tampered = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    assert.equal((await tagsList(tampered)).status, 401);
    assert.equal((await tagsList(jwt)).status, 200, 'control: the untampered token works');
  });

  it('a token stops working as soon as its user is deleted', async () => {
    await addUser(reg.server, 'temp', 'temp-password');
    await addMember(reg.server, 'team', 'temp', 'guest');
    const jwt = await token(reg.server, ['repository:team/app:pull'], basic('temp', 'temp-password'));
    assert.equal((await tagsList(jwt)).status, 200);
    assert.equal((await api(reg.server, 'DELETE', '/users/temp', adminAuth())).status, 204);
    assert.equal((await tagsList(jwt)).status, 401);
  });

  it('offline_token=true returns a refresh token; POST grant_type=refresh_token exchanges it for new scopes', async () => {
    const first = (await (
      await getToken(reg.server, ['repository:team/app:pull'], alice, { offline_token: 'true', client_id: 'test-cli' })
    ).json()) as TokenAnswer;
    assert.match(first.refresh_token ?? '', /^berth_rt_/);
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: first.refresh_token!,
      client_id: 'test-cli',
      service: 'berth',
      scope: 'repository:team/app:pull,push',
    });
    const res = await fetch(`${reg.url}/token`, { method: 'POST', body: form });
    assert.equal(res.status, 200);
    const second = (await res.json()) as TokenAnswer;
    assert.equal(claims(second.access_token).sub, 'alice');
    assert.deepEqual(claims(second.access_token).access, [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }]);
    const otherClient = await fetch(`${reg.url}/token`, {
      method: 'POST',
      body: new URLSearchParams({ ...Object.fromEntries(form), client_id: 'other' }),
    });
    assert.equal(otherClient.status, 401, 'a refresh token is bound to its client_id');
  });

  it('POST grant_type=password issues tokens (and a refresh token for access_type=offline); a password change revokes refresh tokens', async () => {
    await addUser(reg.server, 'dave', 'dave-password');
    const form = new URLSearchParams({
      grant_type: 'password',
      username: 'dave',
      password: 'dave-password',
      client_id: 'c',
      access_type: 'offline',
      service: 'berth',
    });
    const res = await fetch(`${reg.url}/token`, { method: 'POST', body: form });
    assert.equal(res.status, 200);
    const answer = (await res.json()) as TokenAnswer;
    assert.equal(claims(answer.access_token).sub, 'dave');
    assert.ok(answer.refresh_token);
    const bad = await fetch(`${reg.url}/token`, {
      method: 'POST',
      body: new URLSearchParams({ ...Object.fromEntries(form), password: 'wrong-password' }),
    });
    assert.equal(bad.status, 401);
    assert.equal((await api(reg.server, 'PUT', '/users/dave/password', adminAuth(), { password: 'dave-password-2' })).status, 204);
    const refresh = await fetch(`${reg.url}/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: answer.refresh_token!, client_id: 'c' }),
    });
    assert.equal(refresh.status, 401);
  });

  it('a token request for another service is refused', async () => {
    const res = await fetch(`${reg.url}/token?service=elsewhere&scope=repository:team/app:pull`, { headers: { authorization: alice } });
    assert.equal(res.status, 400);
  });

  it('`berth auth rotate-key`: new tokens use the new kid, tokens signed with the old key stay valid', async () => {
    const before = await token(reg.server, ['repository:team/app:pull'], alice);
    const { driver, url } = reg.server.config.metadata;
    const env = {
      ...process.env,
      BERTH_DATA_DIR: reg.server.dataDir,
      BERTH_METADATA_DRIVER: driver,
      ...(url ? { BERTH_METADATA_URL: url } : {}),
      BERTH_AUTH_MODE: 'token',
      BERTH_AUTH_ADMIN_PASSWORD: ADMIN_PASSWORD,
    };
    const { stdout } = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'auth', 'rotate-key'], {
      cwd: ROOT,
      env,
    });
    const kid = /new signing key (\S+)/.exec(stdout)?.[1];
    assert.ok(kid && kid !== header(before).kid);
    // A token from the new key is accepted at once (an unknown kid makes the server reload its keys)…
    const fresh = await forge({});
    assert.equal(header(fresh).kid, kid);
    assert.equal((await tagsList(fresh)).status, 200);
    // …and both keys are published until the old one's tokens have expired.
    const jwks = (await (await fetch(`${reg.url}/token/jwks.json`)).json()) as { keys: { kid: string }[] };
    assert.deepEqual(jwks.keys.map((k) => k.kid).sort(), [kid, header(before).kid].sort());
    assert.equal((await tagsList(before)).status, 200);
  });
});
