import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ROLES, ROLE_PERMISSIONS } from '../../src/auth/permissions.js';
import { RegistryClient, errorCode, makeImage } from '../helpers/registry-client.js';
import { addMember, addProject, addUser, adminAuth, api, basic, bearer, claims, startAuthServer, token, useAuthServer } from './support.js';

describe('projects and roles (token mode)', () => {
  const image = makeImage();
  let digest: string;
  const reg = useAuthServer('token');
  before(async () => {
    await addProject(reg.server, 'team');
    for (const role of ROLES) {
      await addUser(reg.server, role, `${role}-password`);
      await addMember(reg.server, 'team', role, role);
    }
    await addUser(reg.server, 'outsider', 'outsider-password');
    const admin = new RegistryClient(reg.url, {
      authorization: bearer(await token(reg.server, ['repository:team/app:pull,push'], adminAuth())),
    });
    await admin.pushImage('team/app', 'v1', image);
    digest = image.manifest.digest;
  });

  const creds = (role: string) => basic(role, `${role}-password`);

  for (const role of ROLES) {
    it(`${role}: token grants and /v2 answers follow the permission table`, async () => {
      const allowed = ROLE_PERMISSIONS[role];
      const jwt = await token(reg.server, ['repository:team/app:pull,push,delete'], creds(role));
      const expected = (['pull', 'push', 'delete'] as const).filter((a) => allowed.includes(a));
      assert.deepEqual(claims(jwt).access[0]?.actions ?? [], expected);
      const client = new RegistryClient(reg.url, { authorization: bearer(jwt) });
      assert.equal((await client.fetch(`/v2/team/app/manifests/${digest}`)).status, 200);
      const tags = await client.fetch('/v2/team/app/tags/list');
      assert.equal(tags.status, allowed.includes('list-tags') ? 200 : 403, 'tag listing');
      const push = await client.pushBlob('team/app', makeImage().config);
      assert.equal(push.status, allowed.includes('push') ? 201 : 403, 'push');
    });
  }

  it('a limited-guest gets DENIED with a message naming list-tags', async () => {
    const jwt = await token(reg.server, ['repository:team/app:pull'], creds('limited-guest'));
    const res = await fetch(`${reg.url}/v2/team/app/tags/list`, { headers: { authorization: bearer(jwt) } });
    assert.equal(res.status, 403);
    const body = (await res.json()) as { errors: { message: string }[] };
    assert.match(body.errors[0]!.message, /list-tags/);
  });

  it('a maintainer may delete a manifest, a developer may not', async () => {
    const dev = new RegistryClient(reg.url, {
      authorization: bearer(await token(reg.server, ['repository:team/app:pull,push,delete'], creds('developer'))),
    });
    const other = makeImage();
    await dev.pushImage('team/app', 'temp', other);
    const denied = await dev.fetch(`/v2/team/app/manifests/${other.manifest.digest}`, { method: 'DELETE' });
    assert.equal(denied.status, 403);
    const maintainer = new RegistryClient(reg.url, {
      authorization: bearer(await token(reg.server, ['repository:team/app:delete'], creds('maintainer'))),
    });
    const res = await maintainer.fetch(`/v2/team/app/manifests/${other.manifest.digest}`, { method: 'DELETE' });
    assert.equal(res.status, 202);
  });

  it('an outsider gets nothing in a private project: empty access, 403 on pull', async () => {
    const jwt = await token(reg.server, ['repository:team/app:pull'], creds('outsider'));
    assert.deepEqual(claims(jwt).access, []);
    const res = await fetch(`${reg.url}/v2/team/app/manifests/v1`, { headers: { authorization: bearer(jwt) } });
    assert.equal(res.status, 403);
    assert.equal(await errorCode(res), 'DENIED');
  });

  it('an anonymous token on a private project answers 401 (log in), not 403', async () => {
    const jwt = await token(reg.server, ['repository:team/app:pull']);
    const res = await fetch(`${reg.url}/v2/team/app/manifests/v1`, { headers: { authorization: bearer(jwt) } });
    assert.equal(res.status, 401);
  });

  it('making the project public opens pulls to everyone, anonymous included', async () => {
    await addProject(reg.server, 'pub');
    const admin = new RegistryClient(reg.url, {
      authorization: bearer(await token(reg.server, ['repository:pub/x:pull,push'], adminAuth())),
    });
    await admin.pushImage('pub/x', 'v1', makeImage());
    assert.deepEqual(claims(await token(reg.server, ['repository:pub/x:pull'])).access, []);
    assert.equal((await api(reg.server, 'PATCH', '/projects/pub', adminAuth(), { public: true })).status, 204);
    const jwt = await token(reg.server, ['repository:pub/x:pull']);
    assert.equal((await fetch(`${reg.url}/v2/pub/x/manifests/v1`, { headers: { authorization: bearer(jwt) } })).status, 200);
  });

  it('a single-component repository name belongs to the project of the same name', async () => {
    await addProject(reg.server, 'alpine', true);
    const admin = new RegistryClient(reg.url, {
      authorization: bearer(await token(reg.server, ['repository:alpine:pull,push'], adminAuth())),
    });
    await admin.pushImage('alpine', 'latest', makeImage());
    assert.deepEqual(claims(await token(reg.server, ['repository:alpine:pull,push'], creds('outsider'))).access, [
      { type: 'repository', name: 'alpine', actions: ['pull'] },
    ]);
  });

  it('the catalog needs a signed-in token and lists only repositories the caller may pull', async () => {
    const anon = await token(reg.server, ['registry:catalog:*']);
    assert.deepEqual(claims(anon).access, []);
    assert.equal((await fetch(`${reg.url}/v2/_catalog`, { headers: { authorization: bearer(anon) } })).status, 401);
    const jwt = await token(reg.server, ['registry:catalog:*'], creds('outsider'));
    const res = await fetch(`${reg.url}/v2/_catalog`, { headers: { authorization: bearer(jwt) } });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { repositories: ['alpine', 'pub/x'] });
    const guest = await fetch(`${reg.url}/v2/_catalog`, {
      headers: { authorization: bearer(await token(reg.server, ['registry:catalog:*'], creds('guest'))) },
    });
    assert.deepEqual(await guest.json(), { repositories: ['alpine', 'pub/x', 'team/app'] });
  });

  it('a cross-repository mount needs pull on the source: a stranger cannot mount a private blob', async () => {
    const layer = image.layers[0]!;
    const jwt = await token(reg.server, ['repository:outsider-space/x:pull,push', 'repository:team/app:pull'], creds('outsider'));
    const client = new RegistryClient(reg.url, { authorization: bearer(jwt) });
    const res = await client.fetch(`/v2/outsider-space/x/blobs/uploads/?mount=${layer.digest}&from=team/app`, { method: 'POST' });
    assert.equal(res.status, 202, 'falls back to a regular upload instead of mounting');
    const head = await client.fetch(`/v2/outsider-space/x/blobs/${layer.digest}`, { method: 'HEAD' });
    assert.equal(head.status, 404);
  });
});

describe('project creation settings', () => {
  it('autocreate: false — pushing to a missing project is denied until it is created', async () => {
    const server = await startAuthServer('basic', { projects: { autocreate: false } });
    try {
      await addUser(server, 'erin', 'erin-password');
      const erin = new RegistryClient(server.url, { authorization: basic('erin', 'erin-password') });
      assert.equal((await erin.pushBlob('newproj/app', makeImage().config)).status, 403);
      assert.equal((await api(server, 'POST', '/projects', basic('erin', 'erin-password'), { name: 'newproj' })).status, 201);
      assert.equal((await erin.pushBlob('newproj/app', makeImage().config)).status, 201, 'the creator is project-admin');
    } finally {
      await server.destroy();
    }
  });

  it('creation: adminonly — users can neither create projects nor autocreate them', async () => {
    const server = await startAuthServer('basic', { projects: { creation: 'adminonly' } });
    try {
      await addUser(server, 'frank', 'frank-password');
      const res = await api(server, 'POST', '/projects', basic('frank', 'frank-password'), { name: 'mine' });
      assert.equal(res.status, 403);
      const frank = new RegistryClient(server.url, { authorization: basic('frank', 'frank-password') });
      assert.equal((await frank.pushBlob('mine/app', makeImage().config)).status, 403);
      const admin = new RegistryClient(server.url, { authorization: adminAuth() });
      assert.equal((await admin.pushBlob('adminproj/app', makeImage().config)).status, 201, 'an admin still autocreates');
    } finally {
      await server.destroy();
    }
  });
});
