import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { API_OPERATIONS } from '../../src/auth/permissions.js';
import { registeredRoutes } from '../../src/http/app.js';
import { ADMIN_PASSWORD, addUser, basic } from '../auth/support.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const PREFIX = '/api/v1';

/**
 * The admin API has one route table: every route the server registers under /api/ must be in
 * openapi.json and in the permission table (API_OPERATIONS), and every non-public one must
 * refuse callers over real HTTP.
 */
describe('the /api route table', () => {
  let server: TestServer;
  let routes: { method: string; url: string }[];
  let openapi: { paths: Record<string, Record<string, { 'x-berth-access'?: string }>> };
  const user = basic('ursula', 'ursula-password');

  before(async () => {
    server = await startTestServer({ auth: { mode: 'token', admin: { password: ADMIN_PASSWORD } } });
    routes = registeredRoutes(server.app).filter((r) => r.url.startsWith('/api/') && r.method !== 'HEAD' && r.method !== 'OPTIONS');
    openapi = (await (await fetch(`${server.url}${PREFIX}/openapi.json`)).json()) as typeof openapi;
    await addUser(server, 'ursula', 'ursula-password');
  });
  after(async () => server.destroy());

  const openApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');
  const concrete = (url: string) => url.replace(/:(\w+)/g, (_m, name: string) => `no-such-${name}`);

  it('collects the routes, gc and storage included', () => {
    const names = routes.map((r) => `${r.method} ${r.url}`);
    for (const expected of ['POST /api/v1/gc', 'GET /api/v1/storage', 'GET /api/v1/users', 'GET /api/v1/openapi.json']) {
      assert.ok(names.includes(expected), `${expected} is not registered: ${names.join(', ')}`);
    }
  });

  it('every registered /api route is in openapi.json', () => {
    for (const route of routes) {
      const operation = openapi.paths[openApiPath(route.url)]?.[route.method.toLowerCase()];
      assert.ok(operation, `${route.method} ${route.url} is missing from openapi.json`);
    }
  });

  it('every registered /api route is in the permission table, with the access openapi.json advertises', () => {
    for (const route of routes) {
      const row = API_OPERATIONS.find((o) => o.method === route.method && `${PREFIX}${o.path}` === route.url);
      assert.ok(row, `${route.method} ${route.url} is missing from API_OPERATIONS (src/auth/permissions.ts)`);
      assert.equal(
        openapi.paths[openApiPath(route.url)]![route.method.toLowerCase()]!['x-berth-access'],
        row.access,
        `${route.method} ${route.url}`,
      );
    }
  });

  it('every permission-table row is served and documented (no stale rows)', () => {
    for (const row of API_OPERATIONS) {
      assert.ok(
        routes.some((r) => r.method === row.method && r.url === `${PREFIX}${row.path}`),
        `${row.method} ${PREFIX}${row.path} is in API_OPERATIONS but not registered`,
      );
    }
  });

  it('anonymous callers get 401 with a Bearer challenge on every non-public route', async () => {
    for (const row of API_OPERATIONS.filter((o) => o.access !== 'public')) {
      const res = await fetch(`${server.url}${PREFIX}${concrete(row.path)}`, { method: row.method });
      assert.equal(res.status, 401, `${row.method} ${row.path} answered ${res.status} to an anonymous caller`);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm=/, `${row.method} ${row.path}`);
      assert.equal(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code, 'UNAUTHORIZED');
    }
  });

  it('a signed-in user who is not an admin gets 403 DENIED on every admin route', async () => {
    for (const row of API_OPERATIONS.filter((o) => o.access === 'admin')) {
      const res = await fetch(`${server.url}${PREFIX}${concrete(row.path)}`, { method: row.method, headers: { authorization: user } });
      assert.equal(res.status, 403, `${row.method} ${row.path} answered ${res.status} to a non-admin`);
      assert.equal(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code, 'DENIED');
    }
  });

  it('public routes answer anonymous callers (200; 404 when a path parameter names nothing, e.g. an OIDC provider)', async () => {
    for (const row of API_OPERATIONS.filter((o) => o.access === 'public')) {
      const res = await fetch(`${server.url}${PREFIX}${concrete(row.path)}`, { method: row.method, redirect: 'manual' });
      // The browser session: signing in needs a body (400), reading one needs a session (401), signing out always works (204).
      const session: Record<string, number> = { POST: 400, GET: 401, DELETE: 204 };
      assert.equal(
        res.status,
        row.path === '/session' ? session[row.method] : row.path.includes(':') ? 404 : 200,
        `${row.method} ${row.path}`,
      );
    }
  });

  it('an /api path outside the table is refused to non-admins (deny by default), and is 404 for admins', async () => {
    assert.equal((await fetch(`${server.url}${PREFIX}/not-a-route`)).status, 401);
    assert.equal((await fetch(`${server.url}${PREFIX}/not-a-route`, { headers: { authorization: user } })).status, 403);
    const res = await fetch(`${server.url}${PREFIX}/not-a-route`, { headers: { authorization: basic('admin', ADMIN_PASSWORD) } });
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code, 'UNSUPPORTED');
  });

  it('admin-API conditions answer with their own rows: 409 CONFLICT, 404 NOT_FOUND, 400 INVALID_ARGUMENT', async () => {
    const admin = basic('admin', ADMIN_PASSWORD);
    const post = (path: string, body: string) =>
      fetch(`${server.url}${PREFIX}${path}`, {
        method: 'POST',
        headers: { authorization: admin, 'content-type': 'application/json' },
        body,
      });
    const code = async (res: Response) => ((await res.json()) as { errors: { code: string }[] }).errors[0]!.code;
    const dup = await post('/users', JSON.stringify({ username: 'ursula', password: 'ursula-password' }));
    assert.deepEqual([dup.status, await code(dup)], [409, 'CONFLICT']);
    const bad = await post('/users', '{not json');
    assert.deepEqual([bad.status, await code(bad)], [400, 'INVALID_ARGUMENT']);
    const missing = await fetch(`${server.url}${PREFIX}/users/nobody-here`, { headers: { authorization: admin } });
    assert.deepEqual([missing.status, await code(missing)], [404, 'NOT_FOUND']);
    const gc = await fetch(`${server.url}${PREFIX}/gc?dryRun=maybe`, { method: 'POST', headers: { authorization: admin } });
    assert.deepEqual([gc.status, await code(gc)], [400, 'INVALID_ARGUMENT']);
  });
});
