import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { RegistryClient, errorCode, makeImage } from '../helpers/registry-client.js';
import {
  addMember,
  addProject,
  addUser,
  adminAuth,
  api,
  basic,
  bearer,
  claims,
  getToken,
  token,
  type TokenAnswer,
  useAuthServer,
} from './support.js';

/** Issue 12: a scoped registry token must not act as its whole user on /api/v1. */
describe('API tokens: registry tokens are refused on /api/v1, API tokens (scope api) are refused on /v2', () => {
  const dana = basic('dana', 'dana-password');
  const reg = useAuthServer('token');
  before(async () => {
    await addUser(reg.server, 'dana', 'dana-password');
    await addProject(reg.server, 'team');
    await addMember(reg.server, 'team', 'dana', 'project-admin');
  });

  it('a pull-only registry token of a project-admin cannot manage the project: 401 with a message naming the way out', async () => {
    const pull = await token(reg.server, ['repository:team/app:pull'], dana);
    assert.equal(claims(pull).aud, 'berth');
    for (const [method, path, body] of [
      ['GET', '/me', undefined],
      ['PATCH', '/projects/team', { public: true }],
      ['PUT', '/projects/team/members/admin', { role: 'guest' }],
      ['POST', '/projects/team/robots', { name: 'sneak', permissions: [{ project: 'team', actions: ['pull', 'push'] }] }],
      ['DELETE', '/projects/team', undefined],
    ] as const) {
      const res = await api(reg.server, method, path, bearer(pull), body);
      assert.equal(res.status, 401, `${method} ${path}`);
      const challenge = res.headers.get('www-authenticate') ?? '';
      assert.match(challenge, /^Bearer realm="[^"]+\/token",service="berth",scope="api",error="invalid_token"$/, challenge);
      const body401 = (await res.json()) as { errors: { code: string; message: string }[] };
      assert.equal(body401.errors[0]!.code, 'UNAUTHORIZED');
      assert.match(body401.errors[0]!.message, /registry token .* not accepted on \/api\/v1.*scope=api/);
    }
    const project = (await (await api(reg.server, 'GET', '/projects/team', adminAuth())).json()) as { public: boolean };
    assert.equal(project.public, false, 'nothing changed');
    const robots = (await (await api(reg.server, 'GET', '/projects/team/robots', adminAuth())).json()) as unknown[];
    assert.deepEqual(robots, []);
  });

  it('a registry token with no scopes at all (docker login) is refused on /api/v1 too', async () => {
    const empty = await token(reg.server, [], adminAuth());
    assert.equal((await api(reg.server, 'GET', '/users', bearer(empty))).status, 401);
  });

  it('an API token (GET /token?scope=api) acts as its holder on /api/v1, with aud <service>/api and no access', async () => {
    const jwt = await token(reg.server, ['api'], dana);
    const c = claims(jwt);
    assert.equal(c.aud, 'berth/api');
    assert.equal(c.sub, 'dana');
    assert.deepEqual(c.access, []);
    const me = await api(reg.server, 'GET', '/me', bearer(jwt));
    assert.equal(me.status, 200);
    assert.equal(((await me.json()) as { name: string }).name, 'dana');
    assert.equal((await api(reg.server, 'PATCH', '/projects/team', bearer(jwt), { public: false })).status, 204);
    // Still only what dana may do: no admin endpoints.
    assert.equal((await api(reg.server, 'GET', '/users', bearer(jwt))).status, 403);
  });

  it('an API token is refused on /v2 (401 invalid_token): it carries no registry scopes', async () => {
    const apiToken = await token(reg.server, ['api'], adminAuth());
    const res = await fetch(`${reg.url}/v2/team/app/tags/list`, { headers: { authorization: bearer(apiToken) } });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    const push = new RegistryClient(reg.url, { authorization: bearer(apiToken) });
    await assert.rejects(push.pushImage('team/app', 'v1', makeImage()), /401/);
  });

  it('the OAuth2 password grant gives API tokens too (scope=api), and refresh tokens redeem to them', async () => {
    const res = await fetch(`${reg.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'password',
        username: 'dana',
        password: 'dana-password',
        service: 'berth',
        scope: 'api',
        access_type: 'offline',
        client_id: 'cli',
      }),
    });
    assert.equal(res.status, 200);
    const answer = (await res.json()) as TokenAnswer & { scope: string };
    assert.equal(answer.scope, 'api');
    assert.equal((await api(reg.server, 'GET', '/me', bearer(answer.token))).status, 200);
    const refreshed = await fetch(`${reg.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: answer.refresh_token!,
        service: 'berth',
        scope: 'api',
        client_id: 'cli',
      }),
    });
    assert.equal(refreshed.status, 200);
    assert.equal(claims(((await refreshed.json()) as TokenAnswer).token).aud, 'berth/api');
  });

  it('anonymous callers get no API token (401 with a Basic challenge); scope api mixed with registry scopes is 400', async () => {
    const anon = await getToken(reg.server, ['api']);
    assert.equal(anon.status, 401);
    assert.equal(await errorCode(anon), 'UNAUTHORIZED');
    assert.match(anon.headers.get('www-authenticate') ?? '', /^Basic realm=/);
    const mixed = await getToken(reg.server, ['api', 'repository:team/app:pull'], dana);
    assert.equal(mixed.status, 400);
    assert.equal(await errorCode(mixed), 'INVALID_ARGUMENT');
  });

  it('Basic credentials keep working on /api/v1, and anonymous calls get a challenge asking for scope api', async () => {
    assert.equal((await api(reg.server, 'GET', '/me', dana)).status, 200);
    const anon = await fetch(`${reg.url}/api/v1/me`);
    assert.equal(anon.status, 401);
    assert.match(anon.headers.get('www-authenticate') ?? '', /^Bearer realm="[^"]+",service="berth",scope="api"$/);
  });
});
