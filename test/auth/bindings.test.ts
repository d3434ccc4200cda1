import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ROOT, testMetadataEnv } from '../helpers/server.js';
import { addProject, addUser, adminAuth, api, auditLog, basic, bearer, token, useAuthServer } from './support.js';

/**
 * /api/v1/identity/bindings over real HTTP (system admins only), and `berth binding` on the
 * server's database. What a binding gives an external user is tested with a real directory in
 * test/auth/ldap.test.ts; the store itself by test/contracts/identity-bindings.ts.
 */
describe('identity bindings: admin API and CLI', () => {
  const reg = useAuthServer(
    'token',
    {},
    {},
    {
      setup: async (server) => {
        await addUser(server, 'alice', 'alice-password');
        await addProject(server, 'team-a');
      },
    },
  );

  const devs = { source: 'ldap', kind: 'group', subject: 'CN=Devs,ou=groups,dc=example,dc=org', project: 'team-a', role: 'developer' };

  it('an admin adds, lists and removes a binding; each change is audited with the admin as actor', async () => {
    const res = await api(reg.server, 'POST', '/identity/bindings', adminAuth(), devs);
    assert.equal(res.status, 201, await res.clone().text());
    const created = (await res.json()) as Record<string, unknown>;
    assert.equal(created.subject, 'cn=devs,ou=groups,dc=example,dc=org', 'LDAP group names are case-insensitive: stored lowercased');
    assert.equal(created.createdBy, 'admin');
    assert.match(String(created.createdAt), /^\d{4}-\d\d-\d\dT/);

    const list = (await (await api(reg.server, 'GET', '/identity/bindings?source=ldap', adminAuth())).json()) as Record<string, unknown>[];
    assert.deepEqual(
      list.map((b) => b.id),
      [created.id],
    );
    assert.deepEqual(await (await api(reg.server, 'GET', '/identity/bindings?project=other', adminAuth())).json(), []);

    const del = await api(reg.server, 'DELETE', `/identity/bindings/${String(created.id)}`, adminAuth());
    assert.equal(del.status, 204);
    assert.deepEqual(await (await api(reg.server, 'GET', '/identity/bindings', adminAuth())).json(), []);

    const audit = (await auditLog(reg.server)).filter((e) => e.action.startsWith('binding.'));
    assert.deepEqual(
      audit.map((e) => [e.action, e.actor, e.target]),
      [
        ['binding.create', 'admin', 'ldap:group:cn=devs,ou=groups,dc=example,dc=org'],
        ['binding.delete', 'admin', 'ldap:group:cn=devs,ou=groups,dc=example,dc=org'],
      ],
    );
  });

  it('SPIFFE prefixes and OIDC sources are accepted; a prefix with a trailing "/" is refused', async () => {
    const prefix = await api(reg.server, 'POST', '/identity/bindings', adminAuth(), {
      source: 'spiffe',
      kind: 'prefix',
      subject: 'spiffe://example.org/ns/ci',
      project: 'team-a',
      role: 'developer',
    });
    assert.equal(prefix.status, 201);
    const oidc = await api(reg.server, 'POST', '/identity/bindings', adminAuth(), {
      source: 'oidc:keycloak',
      kind: 'group',
      subject: 'Registry-Devs',
      project: 'team-a',
      role: 'guest',
    });
    assert.equal(oidc.status, 201);
    assert.equal(((await oidc.json()) as { subject: string }).subject, 'Registry-Devs', 'only LDAP groups are lowercased');
    const slash = await api(reg.server, 'POST', '/identity/bindings', adminAuth(), {
      source: 'spiffe',
      kind: 'prefix',
      subject: 'spiffe://example.org/ns/',
      project: 'team-a',
      role: 'developer',
    });
    assert.equal(slash.status, 400);
  });

  it('refuses bad input with the error format: 400 for a bad field, 404 for an unknown project or binding, 409 for a duplicate', async () => {
    const cases: [Record<string, unknown>, number, RegExp][] = [
      [{ ...devs, kind: 'team' }, 400, /kind/],
      [{ ...devs, role: 'owner' }, 400, /role/],
      [{ ...devs, source: 'LDAP server' }, 400, /source/],
      [{ ...devs, subject: '' }, 400, /subject/],
      [{ ...devs, subject: 'x'.repeat(385) }, 400, /subject/],
      [{ ...devs, extra: 1 }, 400, /extra|unrecognized/i],
      [{ ...devs, project: 'no-such' }, 404, /project no-such not found/],
    ];
    for (const [body, status, message] of cases) {
      const res = await api(reg.server, 'POST', '/identity/bindings', adminAuth(), body);
      const answer = (await res.json()) as { errors: { code: string; message: string }[] };
      assert.equal(res.status, status, JSON.stringify(body));
      assert.match(answer.errors[0]!.message, message);
    }
    assert.equal((await api(reg.server, 'POST', '/identity/bindings', adminAuth(), devs)).status, 201);
    const duplicate = await api(reg.server, 'POST', '/identity/bindings', adminAuth(), { ...devs, subject: devs.subject.toLowerCase() });
    assert.equal(duplicate.status, 409);
    assert.equal(((await duplicate.json()) as { errors: { code: string }[] }).errors[0]!.code, 'CONFLICT');
    for (const id of ['999999', 'abc', '0', '-1']) {
      const res = await api(reg.server, 'DELETE', `/identity/bindings/${id}`, adminAuth());
      assert.equal(res.status, 404, id);
      assert.equal(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code, 'NOT_FOUND');
    }
  });

  it('only system admins: anonymous 401, a user 403 (Basic or API token), a registry token 401; nothing changes', async () => {
    const before = await (await api(reg.server, 'GET', '/identity/bindings', adminAuth())).json();
    const apiToken = await token(reg.server, ['api'], basic('alice', 'alice-password'));
    const registryToken = await token(reg.server, ['repository:team-a/app:pull'], basic('alice', 'alice-password'));
    const attempts: [string, string, unknown?][] = [
      ['GET', '/identity/bindings'],
      ['POST', '/identity/bindings', { ...devs, project: 'team-a', subject: 'cn=intruders' }],
      ['DELETE', '/identity/bindings/1'],
    ];
    for (const [method, route, body] of attempts) {
      const anonymous = await fetch(`${reg.url}/api/v1${route}`, {
        method,
        headers: body ? { 'content-type': 'application/json' } : {},
        body: body ? JSON.stringify(body) : undefined,
      });
      assert.equal(anonymous.status, 401, `anonymous ${method}`);
      assert.equal((await api(reg.server, method, route, basic('alice', 'alice-password'), body)).status, 403, `user ${method}`);
      assert.equal((await api(reg.server, method, route, bearer(apiToken), body)).status, 403, `user API token ${method}`);
      assert.equal((await api(reg.server, method, route, bearer(registryToken), body)).status, 401, `registry token ${method}`);
    }
    assert.deepEqual(await (await api(reg.server, 'GET', '/identity/bindings', adminAuth())).json(), before);
  });

  it('openapi.json documents the three operations as admin-only', async () => {
    const doc = (await (await fetch(`${reg.url}/api/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { 'x-berth-access': string }>>;
    };
    assert.equal(doc.paths['/api/v1/identity/bindings']?.get?.['x-berth-access'], 'admin');
    assert.equal(doc.paths['/api/v1/identity/bindings']?.post?.['x-berth-access'], 'admin');
    assert.equal(doc.paths['/api/v1/identity/bindings/{id}']?.delete?.['x-berth-access'], 'admin');
  });

  it('berth binding add, list --json and rm work on the server database, audited as cli:<user>', async () => {
    const env = {
      ...process.env,
      ...(await testMetadataEnv(reg.server.dataDir)),
      BERTH_DATA_DIR: reg.server.dataDir,
      BERTH_AUTH_MODE: 'token',
    };
    const berth = (...args: string[]) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'binding', ...args], { cwd: ROOT, env });
    const added = await berth('add', 'ldap', 'group', 'cn=ops,ou=groups,dc=example,dc=org', 'team-a', 'maintainer');
    const id = /^binding (\d+):/.exec(added.stdout)?.[1];
    assert.ok(id, added.stdout);
    const listed = JSON.parse((await berth('list', '--json', '--project', 'team-a')).stdout) as {
      id: number;
      subject: string;
      role: string;
    }[];
    assert.ok(listed.some((b) => b.id === Number(id) && b.role === 'maintainer'));
    await assert.rejects(
      berth('add', 'ldap', 'group', 'cn=ops,ou=groups,dc=example,dc=org', 'team-a', 'maintainer'),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stderr, /already bound/);
        return true;
      },
    );
    await assert.rejects(berth('rm', 'x1'), (err: { code: number }) => err.code === 2);
    assert.match((await berth('rm', id)).stdout, new RegExp(`removed binding ${id}`));
    const audit = (await auditLog(reg.server)).filter((e) => e.target === 'ldap:group:cn=ops,ou=groups,dc=example,dc=org');
    assert.deepEqual(
      audit.map((e) => e.action),
      ['binding.create', 'binding.delete'],
    );
    assert.match(audit[0]!.actor, /^cli:/);
  });
});
