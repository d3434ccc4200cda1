import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { RegistryClient, makeImage } from '../helpers/registry-client.js';
import { addProject, addUser, adminAuth, api, basic, bearer, claims, token, useAuthServer } from './support.js';

describe('admin API /api/v1', () => {
  const pat = basic('pat', 'pat-password');
  const reg = useAuthServer('token');
  before(async () => {
    await addUser(reg.server, 'pat', 'pat-password');
    await addUser(reg.server, 'quinn', 'quinn-password');
  });

  it('needs credentials (401 with a challenge) and answers 403 to non-admins on admin endpoints', async () => {
    const anon = await fetch(`${reg.url}/api/v1/users`);
    assert.equal(anon.status, 401);
    assert.match(anon.headers.get('www-authenticate')!, /^Bearer realm=/);
    assert.equal((await api(reg.server, 'GET', '/users', pat)).status, 403);
    assert.equal((await api(reg.server, 'GET', '/users', adminAuth())).status, 200);
  });

  it('accepts an API token from /token (scope api) as well as Basic credentials', async () => {
    const jwt = await token(reg.server, ['api'], adminAuth());
    const res = await fetch(`${reg.url}/api/v1/me`, { headers: { authorization: bearer(jwt) } });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { name: string }).name, 'admin');
  });

  it('endpoints added by other modules under /api/ are admin-only by default (gc, storage)', async () => {
    for (const [method, path] of [
      ['POST', '/gc?dryRun=true'],
      ['GET', '/storage'],
    ] as const) {
      assert.equal((await fetch(`${reg.url}/api/v1${path}`, { method })).status, 401, `${path} anonymous`);
      assert.equal((await api(reg.server, method, path, pat)).status, 403, `${path} as a user`);
      assert.equal((await api(reg.server, method, path, adminAuth())).status, 200, `${path} as admin`);
    }
    for (const spelling of ['/api/v1/storage/', '/api//v1/storage', '/API/v1/storage', '/api/v1/%73torage', '/v2/../api/v1/storage']) {
      const res = await fetch(`${reg.url}${spelling}`, { headers: { authorization: pat } });
      assert.ok(res.status === 403 || res.status === 404, `${spelling} answered ${res.status}`);
    }
  });

  it('users: create, list, grant admin, change own password (with the current one), delete', async () => {
    assert.equal((await api(reg.server, 'POST', '/users', adminAuth(), { username: 'rita', password: 'rita-password' })).status, 201);
    assert.equal((await api(reg.server, 'POST', '/users', adminAuth(), { username: 'rita', password: 'rita-password' })).status, 409);
    assert.equal((await api(reg.server, 'POST', '/users', adminAuth(), { username: 'Bad Name', password: 'whatever-long' })).status, 400);
    assert.equal((await api(reg.server, 'POST', '/users', adminAuth(), { username: 'shorty', password: 'short' })).status, 400);
    const list = (await (await api(reg.server, 'GET', '/users', adminAuth())).json()) as { username: string }[];
    assert.ok(list.some((u) => u.username === 'rita'));
    const rita = basic('rita', 'rita-password');
    assert.equal(
      (await api(reg.server, 'PUT', '/users/rita/password', rita, { password: 'rita-password-2' })).status,
      403,
      'needs currentPassword',
    );
    assert.equal(
      (await api(reg.server, 'PUT', '/users/rita/password', rita, { password: 'rita-password-2', currentPassword: 'rita-password' }))
        .status,
      204,
    );
    assert.equal(
      (await api(reg.server, 'PUT', '/users/pat/password', basic('rita', 'rita-password-2'), { password: 'hijacked-pw' })).status,
      403,
    );
    assert.equal((await api(reg.server, 'PATCH', '/users/rita', adminAuth(), { admin: true })).status, 204);
    assert.equal((await api(reg.server, 'GET', '/users', basic('rita', 'rita-password-2'))).status, 200);
    assert.equal((await api(reg.server, 'DELETE', '/users/rita', adminAuth())).status, 204);
    assert.equal((await api(reg.server, 'GET', '/me', basic('rita', 'rita-password-2'))).status, 401);
  });

  it('rejects malformed JSON and unknown fields with 400 and a spec error body', async () => {
    const res = await fetch(`${reg.url}/api/v1/users`, {
      method: 'POST',
      headers: { authorization: adminAuth(), 'content-type': 'application/json' },
      body: '{not json',
    });
    assert.equal(res.status, 400);
    assert.ok(((await res.json()) as { errors: unknown[] }).errors.length === 1);
    assert.equal((await api(reg.server, 'POST', '/users', adminAuth(), { username: 'x1', password: 'long-enough', extra: 1 })).status, 400);
  });

  it('projects: a user creates one (becoming project-admin), adds a member, others cannot see or manage it', async () => {
    assert.equal((await api(reg.server, 'POST', '/projects', pat, { name: 'pats' })).status, 201);
    assert.equal((await api(reg.server, 'PUT', '/projects/pats/members/quinn', pat, { role: 'guest' })).status, 204);
    assert.equal((await api(reg.server, 'PUT', '/projects/pats/members/quinn', pat, { role: 'overlord' })).status, 400);
    const members = (await (await api(reg.server, 'GET', '/projects/pats/members', pat)).json()) as { username: string; role: string }[];
    assert.deepEqual(
      members.map((m) => `${m.username}:${m.role}`),
      ['pat:project-admin', 'quinn:guest'],
    );
    const quinn = basic('quinn', 'quinn-password');
    assert.equal((await api(reg.server, 'GET', '/projects/pats', quinn)).status, 200, 'a guest can read the project');
    assert.equal((await api(reg.server, 'PATCH', '/projects/pats', quinn, { public: true })).status, 403, 'a guest cannot manage it');
    await addUser(reg.server, 'stranger', 'stranger-password');
    assert.equal(
      (await api(reg.server, 'GET', '/projects/pats', basic('stranger', 'stranger-password'))).status,
      404,
      'private projects do not leak',
    );
    const visible = (await (await api(reg.server, 'GET', '/projects', basic('stranger', 'stranger-password'))).json()) as unknown[];
    assert.deepEqual(visible, []);
  });

  it('robots: created with a secret shown once, usable for push within their grant only, revocable', async () => {
    await addProject(reg.server, 'ci');
    const created = await api(reg.server, 'POST', '/projects/ci/robots', adminAuth(), {
      name: 'builder',
      permissions: [{ project: 'ci', repository: 'ci/app*', actions: ['pull', 'push'] }],
    });
    assert.equal(created.status, 201);
    const robot = (await created.json()) as { name: string; secret: string };
    assert.equal(robot.name, 'robot$ci+builder');
    assert.ok(robot.secret.length >= 40);
    const listed = (await (await api(reg.server, 'GET', '/projects/ci/robots', adminAuth())).json()) as Record<string, unknown>[];
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.secret, undefined, 'the secret is never shown again');

    const creds = basic(robot.name, robot.secret);
    const jwt = await token(reg.server, ['repository:ci/app:pull,push,delete', 'repository:ci/other:pull,push'], creds);
    assert.deepEqual(claims(jwt).access, [{ type: 'repository', name: 'ci/app', actions: ['pull', 'push'] }]);
    await new RegistryClient(reg.url, { authorization: bearer(jwt) }).pushImage('ci/app', 'v1', makeImage());

    assert.equal(
      (
        await api(reg.server, 'POST', '/projects/ci/robots', adminAuth(), {
          name: 'sneaky',
          permissions: [{ project: 'pats', actions: ['pull'] }],
        })
      ).status,
      400,
    );
    assert.equal((await api(reg.server, 'DELETE', `/projects/ci/robots/${encodeURIComponent(robot.name)}`, adminAuth())).status, 204);
    const after = await fetch(`${reg.url}/token?service=berth&scope=repository:ci/app:pull`, { headers: { authorization: creds } });
    assert.equal(after.status, 401, 'a revoked robot cannot log in');
    assert.equal(
      (await fetch(`${reg.url}/v2/ci/app/tags/list`, { headers: { authorization: bearer(jwt) } })).status,
      401,
      'its tokens die with it',
    );
  });

  it('a project with repositories cannot be deleted (its name could be re-created by anyone); an empty one can', async () => {
    const busy = await api(reg.server, 'DELETE', '/projects/ci', adminAuth());
    assert.equal(busy.status, 409);
    await addProject(reg.server, 'empty');
    assert.equal((await api(reg.server, 'DELETE', '/projects/empty', adminAuth())).status, 204);
    assert.equal((await api(reg.server, 'GET', '/projects/empty', adminAuth())).status, 404);
  });

  it('an expired robot cannot log in', async () => {
    const res = await api(reg.server, 'POST', '/robots', adminAuth(), {
      name: 'shortlived',
      expiresIn: '1s',
      permissions: [{ project: 'ci', actions: ['pull'] }],
    });
    assert.equal(res.status, 201);
    const robot = (await res.json()) as { name: string; secret: string };
    assert.equal(robot.name, 'robot$shortlived');
    assert.equal(
      (await fetch(`${reg.url}/token?service=berth`, { headers: { authorization: basic(robot.name, robot.secret) } })).status,
      200,
    );
    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.equal(
      (await fetch(`${reg.url}/token?service=berth`, { headers: { authorization: basic(robot.name, robot.secret) } })).status,
      401,
    );
  });

  it('every mutating call is in the audit log with actor, action, target, time and client IP (admin only)', async () => {
    assert.equal((await api(reg.server, 'GET', '/audit', pat)).status, 403);
    const entries = (await (await api(reg.server, 'GET', '/audit?limit=1000', adminAuth())).json()) as {
      actor: string;
      action: string;
      target: string;
      ip: string | null;
      at: string;
    }[];
    const find = (action: string, target: string) => entries.find((e) => e.action === action && e.target === target);
    const created = find('user.create', 'rita');
    assert.ok(created, 'user.create rita');
    assert.equal(created.actor, 'admin');
    assert.match(created.ip ?? '', /127\.0\.0\.1/);
    assert.ok(Date.parse(created.at) > Date.now() - 60_000);
    for (const [action, target] of [
      ['user.password', 'rita'],
      ['user.grant-admin', 'rita'],
      ['user.delete', 'rita'],
      ['project.create', 'pats'],
      ['member.set', 'pats/quinn'],
      ['robot.create', 'robot$ci+builder'],
      ['robot.delete', 'robot$ci+builder'],
    ]) {
      assert.ok(find(action!, target!), `${action} ${target}`);
    }
    assert.equal(find('project.create', 'pats')!.actor, 'pat');
    const page = (await (await api(reg.server, 'GET', '/audit?limit=2', adminAuth())).json()) as { id: number }[];
    assert.equal(page.length, 2);
    const next = (await (await api(reg.server, 'GET', `/audit?limit=2&before=${page[1]!.id}`, adminAuth())).json()) as { id: number }[];
    assert.ok(next[0]!.id < page[1]!.id);
  });

  it('serves an OpenAPI 3 document describing every endpoint, without authentication', async () => {
    const res = await fetch(`${reg.url}/api/v1/openapi.json`);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: unknown }>> };
    assert.match(doc.openapi, /^3\./);
    for (const path of [
      '/api/v1/users',
      '/api/v1/projects/{project}/members/{username}',
      '/api/v1/projects/{project}/robots',
      '/api/v1/audit',
    ]) {
      assert.ok(doc.paths[path], path);
    }
    assert.ok(doc.paths['/api/v1/users']!.post!.requestBody, 'POST /users documents its JSON body');
  });
});
