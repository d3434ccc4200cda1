import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { adoptOrphanRepositories } from '../../src/auth/orphans.js';
import { runFsck } from '../../src/fsck/check.js';
import { corruptionCount } from '../../src/fsck/types.js';
import { RegistryClient, errorCode, makeBlob, makeImage, type Image } from '../helpers/registry-client.js';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import {
  addMember,
  addProject,
  addUser,
  adminAuth,
  api,
  auditLog,
  authConfig,
  basic,
  bearer,
  claims,
  token,
  useAuthServer,
  type AuditEntry,
} from './support.js';

/**
 * Issue 12: nobody gains access to existing content by creating a project, explicitly or by
 * pushing. Repositories without a project (pushed with auth.mode none, or by an admin with
 * autocreate off) stay admin-only until an admin claims them or a token-mode start assigns
 * them to the admin; a token request creates nothing; the project a push needs is created by
 * its first successful write; a token's grants do not outlive a role or a project's re-creation.
 */

type AuditRow = AuditEntry;

async function audit(server: { url: string }, action: string): Promise<AuditRow[]> {
  return (await auditLog(server)).filter((row) => row.action === action);
}

async function status(server: { url: string }, method: string, path: string, authorization: string, body?: unknown): Promise<number> {
  const res = await api(server, method, path, authorization, body);
  await res.arrayBuffer();
  return res.status;
}

/** A RegistryClient holding a token for `scopes` as `authorization`. */
async function tokenClient(server: { url: string }, scopes: string[], authorization: string): Promise<RegistryClient> {
  return new RegistryClient(server.url, { authorization: bearer(await token(server, scopes, authorization)) });
}

function fsck(server: TestServer) {
  return runFsck(server.stores.blobs, server.stores.fsck, { repair: false, verifyContent: false, graceMs: 0, orphans: true });
}

describe('switching from auth none to basic, then token, over existing repositories', () => {
  const dir = tempDir();
  let server: TestServer | undefined;
  const images: Record<string, Image> = { 'demo/hello': makeImage(), 'secretteam/app': makeImage(), solo: makeImage() };
  const mallory = basic('mallory', 'mallory-password');

  /** Stops the running server (keeping its data) and starts the next on the same data directory. */
  async function restart(overrides: Record<string, unknown>): Promise<TestServer> {
    await server?.close();
    server = await startTestServer({ ...overrides, data: { dir } });
    return server;
  }

  before(async () => {
    const open = new RegistryClient((await restart({})).url);
    for (const [repo, image] of Object.entries(images)) await open.pushImage(repo, 'v1', image);
  });
  after(async () => {
    await server?.destroy();
  });

  it('auth.mode basic: nothing is adopted, fsck reports the orphans, and a user can claim none of them', async () => {
    const s = await restart(authConfig('basic'));
    await addUser(s, 'mallory', 'mallory-password');
    assert.equal(await status(s, 'GET', '/projects/demo', adminAuth()), 404, 'basic mode adopts nothing');

    const report = await fsck(s);
    const orphans = report.problems.filter((p) => p.kind === 'orphan-repository');
    assert.deepEqual(
      orphans.map((p) => [p.subject, p.severity, p.repairable]),
      [
        ['demo/hello', 'notice', false],
        ['secretteam/app', 'notice', false],
        ['solo', 'notice', false],
      ],
    );
    assert.equal(report.checked.orphanRepositories, 3);
    assert.equal(corruptionCount(report), 0, 'orphans are not corruption');

    const m = new RegistryClient(s.url, { authorization: mallory });
    // Pushing into the namespace would have auto-created project demo with mallory as its admin.
    const push = await m.pushBlob('demo/anything', makeBlob(64));
    assert.equal(push.status, 403);
    assert.equal(await errorCode(push), 'DENIED');
    assert.equal((await m.fetch('/v2/demo/hello/manifests/v1')).status, 403);
    assert.equal((await m.fetch('/v2/solo/manifests/v1', { method: 'DELETE' })).status, 403);
    // Creating the project explicitly would have handed over secretteam/app: the name is taken.
    const res = await api(s, 'POST', '/projects', mallory, { name: 'secretteam' });
    assert.equal(res.status, 409);
    assert.equal(await errorCode(res), 'CONFLICT');
    assert.equal(await status(s, 'GET', '/projects/secretteam', adminAuth()), 404, 'and nothing was created');
    const catalog = await m.fetch('/v2/_catalog');
    assert.deepEqual(((await catalog.json()) as { repositories: string[] }).repositories, []);
    // Admins still reach everything, and may create a project over orphans (claiming them).
    const admin = new RegistryClient(s.url, { authorization: adminAuth() });
    assert.equal((await admin.fetch(`/v2/secretteam/app/manifests/${images['secretteam/app']!.manifest.digest}`)).status, 200);
    assert.equal(await status(s, 'POST', '/projects', adminAuth(), { name: 'solo' }), 201);
    assert.equal((await fsck(s)).checked.orphanRepositories, 2, 'solo is no orphan any more');
  });

  it('auth.mode token: at start every orphan repository gets a private project owned by the admin, audited as project.adopt', async () => {
    const s = await restart(authConfig('token'));
    const res = await api(s, 'GET', '/projects', adminAuth());
    const projects = (await res.json()) as { name: string; public: boolean; createdBy: string }[];
    assert.deepEqual(
      projects.map((p) => [p.name, p.public, p.createdBy]),
      [
        ['demo', false, 'system'],
        ['secretteam', false, 'system'],
        ['solo', false, 'admin'],
      ],
    );
    const members = (await (await api(s, 'GET', '/projects/demo/members', adminAuth())).json()) as { username: string; role: string }[];
    assert.deepEqual(members, [{ project: 'demo', username: 'admin', role: 'project-admin' }]);
    const adopted = await audit(s, 'project.adopt');
    assert.deepEqual(
      adopted.map((row) => [row.actor, row.target, row.detail?.owner, row.detail?.repositories]),
      [
        ['system', 'demo', 'admin', 1],
        ['system', 'secretteam', 'admin', 1],
      ],
    );
  });

  it('auth.mode token: a user gets no grant on adopted content, cannot push into it, and cannot take the project name', async () => {
    const s = server!;
    const jwt = await token(s, ['repository:demo/anything:pull,push', 'repository:demo/hello:pull,delete'], mallory);
    assert.deepEqual(claims(jwt).access, [], 'a token request grants nothing on another project');
    const m = new RegistryClient(s.url, { authorization: bearer(jwt) });
    const push = await m.pushBlob('demo/anything', makeBlob(64));
    assert.equal(push.status, 403);
    assert.equal((await m.fetch('/v2/demo/hello/manifests/v1')).status, 403);
    assert.equal(await status(s, 'POST', '/projects', mallory, { name: 'secretteam' }), 409);
    assert.equal(await status(s, 'GET', '/projects/secretteam/members', mallory), 404, 'adopted projects are private');
    assert.equal((await fsck(s)).checked.orphanRepositories, 0, 'no orphan left');
  });

  it('a second start adopts nothing twice', async () => {
    const before = (await audit(server!, 'project.adopt')).length;
    const s = await restart(authConfig('token'));
    assert.equal((await audit(s, 'project.adopt')).length, before);
  });
});

describe('adopting orphans: idempotent, safe with replicas starting together', () => {
  const reg = useAuthServer('token', { projects: { autocreate: false } });

  it('concurrent adoptions create each project once, with one event and one audit row, and log what they assigned', async () => {
    const admin = await tokenClient(
      reg.server,
      ['repository:legacy/app:pull,push', 'repository:legacy/db:pull,push', 'repository:old:pull,push'],
      adminAuth(),
    );
    for (const repo of ['legacy/app', 'legacy/db', 'old']) await admin.pushImage(repo, 'v1', makeImage({ layers: 1 }));
    assert.equal(
      await status(reg.server, 'GET', '/projects/legacy', adminAuth()),
      404,
      'an admin push with autocreate off leaves an orphan',
    );

    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const store = reg.server.stores.auth;
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => adoptOrphanRepositories(store, 'admin', logger)));
    const created = [...a!, ...b!, ...c!].filter((x) => x.created).map((x) => [x.project, x.repositories, x.owner]);
    assert.deepEqual(created.sort(), [
      ['legacy', 2, 'admin'],
      ['old', 1, 'admin'],
    ]);
    assert.deepEqual((await audit(reg.server, 'project.adopt')).map((row) => row.target).sort(), ['legacy', 'old']);
    await reg.server.stores.outbox.sequence(1e6);
    const events = (await reg.server.stores.outbox.read(0, 10_000)).filter((e) => e.event.type === 'project.created');
    assert.deepEqual(events.map((e) => (e.event as { project: string }).project).sort(), ['legacy', 'old']);
    const logged = lines.filter((l) => l.level === 40).map((l) => [l.project, l.repositories, l.examples]);
    assert.deepEqual(logged.sort(), [
      ['legacy', 2, ['legacy/app', 'legacy/db']],
      ['old', 1, ['old']],
    ]);
    assert.deepEqual(await adoptOrphanRepositories(store, 'admin', logger), [], 'nothing left to adopt');
  });
});

describe('creation: adminonly — the permission table decides', () => {
  const reg = useAuthServer('token', { projects: { creation: 'adminonly' } });

  it('a user gets no push grant on a missing project, and a push creates nothing', async () => {
    await addUser(reg.server, 'dan', 'dan-password');
    const jwt = await token(reg.server, ['repository:danproj/app:pull,push'], basic('dan', 'dan-password'));
    assert.deepEqual(claims(jwt).access, []);
    assert.equal((await new RegistryClient(reg.url, { authorization: bearer(jwt) }).pushBlob('danproj/app', makeBlob(8))).status, 403);
    assert.equal(await reg.server.stores.auth.getProject('danproj'), null);
  });
});

describe('token auth with the default settings', () => {
  const reg = useAuthServer('token');

  describe('project creation happens at the first successful write, never at a token request', () => {
    before(async () => {
      for (const name of ['alice', 'bob', 'carol']) await addUser(reg.server, name, `${name}-password`);
    });
    const creds = (name: string) => basic(name, `${name}-password`);

    it('a token request with push on a missing project grants pull,push but creates nothing', async () => {
      const jwt = await token(reg.server, ['repository:newproj/app:pull,push'], creds('alice'));
      assert.deepEqual(claims(jwt).access, [{ type: 'repository', name: 'newproj/app', actions: ['pull', 'push'] }]);
      assert.equal(await reg.server.stores.auth.getProject('newproj'), null);
      assert.equal((await audit(reg.server, 'project.autocreate')).length, 0);
    });

    it('a refused write creates nothing: a digest mismatch and a manifest with unknown blobs', async () => {
      const alice = await tokenClient(reg.server, ['repository:newproj/app:pull,push'], creds('alice'));
      const blob = makeBlob(64);
      const bad = await alice.fetch(`/v2/newproj/app/blobs/uploads/?digest=sha256:${'0'.repeat(64)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: new Uint8Array(blob.data),
      });
      assert.equal(bad.status, 400);
      const image = makeImage();
      assert.equal((await alice.pushManifest('newproj/app', 'v1', image.manifest)).status, 400);
      assert.equal(await reg.server.stores.auth.getProject('newproj'), null);
    });

    it('the first blob creates the project: the pusher is project-admin, audited as project.autocreate with the client IP', async () => {
      const alice = await tokenClient(reg.server, ['repository:newproj/app:pull,push'], creds('alice'));
      await alice.pushImage('newproj/app', 'v1', makeImage());
      const project = await reg.server.stores.auth.getProject('newproj');
      assert.equal(project?.createdBy, 'alice');
      assert.equal(await reg.server.stores.auth.getRole('newproj', 'alice'), 'project-admin');
      const rows = await audit(reg.server, 'project.autocreate');
      assert.deepEqual(
        rows.map((r) => [r.actor, r.target, r.detail]),
        [['alice', 'newproj', { owner: 'alice' }]],
      );
      assert.match(rows[0]!.ip ?? '', /127\.0\.0\.1/, 'the audit row names the client address');
    });

    it('a mount into a missing project creates it too', async () => {
      const alice = await tokenClient(reg.server, ['repository:newproj/app:pull', 'repository:mounted/x:pull,push'], creds('alice'));
      const source = makeImage({ layers: 1 });
      await (await tokenClient(reg.server, ['repository:newproj/app:pull,push'], creds('alice'))).pushImage('newproj/app', 'm', source);
      const res = await alice.fetch(`/v2/mounted/x/blobs/uploads/?mount=${source.layers[0]!.digest}&from=newproj/app`, { method: 'POST' });
      assert.equal(res.status, 201);
      assert.equal(await reg.server.stores.auth.getRole('mounted', 'alice'), 'project-admin');
    });

    it('two users racing for a new project: the first write wins, the other token is refused at once (push and pull)', async () => {
      const bob = await tokenClient(reg.server, ['repository:race/app:pull,push'], creds('bob'));
      const carol = await tokenClient(reg.server, ['repository:race/app:pull,push'], creds('carol'));
      const image = makeImage();
      await bob.pushImage('race/app', 'v1', image);
      const push = await carol.pushBlob('race/app', makeBlob(64));
      assert.equal(
        push.status,
        403,
        `carol may not push into bob’s project with a token from before it existed: ${push.status} ${await push.clone().text()}`,
      );
      assert.equal(await errorCode(push), 'DENIED');
      assert.equal((await carol.fetch(`/v2/race/app/manifests/${image.manifest.digest}`)).status, 403, 'nor pull from it');
      const head = await carol.fetch(`/v2/race/app/blobs/${image.layers[0]!.digest}`, { method: 'HEAD' });
      // HEAD carries no body: the refusal may come as a 401 challenge naming the reason.
      assert.ok(head.status === 403 || head.status === 401, `HEAD answered ${head.status}`);
      assert.equal(await reg.server.stores.auth.getRole('race', 'carol'), null);
    });
  });

  describe('a removed role ends deletes and pushes at once; pulls last until the token expires', () => {
    const image = makeImage();
    before(async () => {
      await addProject(reg.server, 'team');
      await addUser(reg.server, 'dave', 'dave-password');
      await addMember(reg.server, 'team', 'dave', 'maintainer');
      await (await tokenClient(reg.server, ['repository:team/app:pull,push'], adminAuth())).pushImage('team/app', 'v1', image);
      // Tokens issued within a second of a project's creation are checked as if issued before it (clock skew between replicas).
      await sleep(2100);
    });

    it('DELETE and push with a token issued before the removal are refused; a pull still works', async () => {
      const dave = await tokenClient(reg.server, ['repository:team/app:pull,push,delete'], basic('dave', 'dave-password'));
      const extra = makeImage({ layers: 1 });
      await dave.pushImage('team/app', 'extra', extra);
      assert.equal(await status(reg.server, 'DELETE', '/projects/team/members/dave', adminAuth()), 204);

      const del = await dave.fetch(`/v2/team/app/manifests/${extra.manifest.digest}`, { method: 'DELETE' });
      assert.equal(del.status, 403);
      assert.equal(await errorCode(del), 'DENIED');
      assert.equal((await dave.fetch(`/v2/team/app/blobs/${extra.layers[0]!.digest}`, { method: 'DELETE' })).status, 403);
      const push = await dave.pushBlob('team/app', makeBlob(32));
      assert.equal(push.status, 403);
      assert.equal(await errorCode(push), 'DENIED');
      // Documented bound: a pull is taken on the token's word until it expires (auth.token.expiration).
      const pull = await dave.fetch(`/v2/team/app/manifests/${image.manifest.digest}`);
      assert.equal(pull.status, 200, `${pull.headers.get('www-authenticate')} ${await pull.clone().text()}`);
      // The manifest is still there for the admin.
      const admin = await tokenClient(reg.server, ['repository:team/app:pull'], adminAuth());
      assert.equal((await admin.fetch(`/v2/team/app/manifests/${extra.manifest.digest}`)).status, 200);
    });

    it('a role lowered to developer loses delete at once as well', async () => {
      await addMember(reg.server, 'team', 'dave', 'maintainer');
      const dave = await tokenClient(reg.server, ['repository:team/app:pull,push,delete'], basic('dave', 'dave-password'));
      await addMember(reg.server, 'team', 'dave', 'developer');
      assert.equal((await dave.fetch(`/v2/team/app/manifests/${image.manifest.digest}`, { method: 'DELETE' })).status, 403);
    });
  });

  describe('member endpoints do not reveal which user names exist', () => {
    before(async () => {
      await addProject(reg.server, 'proj');
      for (const name of ['owner', 'guest', 'outsider', 'realuser']) await addUser(reg.server, name, `${name}-password`);
      await addMember(reg.server, 'proj', 'owner', 'project-admin');
      await addMember(reg.server, 'proj', 'guest', 'guest');
    });
    const creds = (name: string) => basic(name, `${name}-password`);

    /** Status and body of a call, with the probed name masked. */
    async function answer(method: string, username: string, authorization: string): Promise<[number, string]> {
      const res = await api(
        reg.server,
        method,
        `/projects/proj/members/${username}`,
        authorization,
        method === 'PUT' ? { role: 'guest' } : undefined,
      );
      return [res.status, (await res.text()).replaceAll(username, '<name>')];
    }

    for (const caller of ['guest', 'outsider']) {
      it(`${caller}: adding or removing an unknown and an existing user answer alike`, async () => {
        for (const method of ['PUT', 'DELETE']) {
          const unknown = await answer(method, 'nosuchuser', creds(caller));
          const known = await answer(method, 'realuser', creds(caller));
          assert.deepEqual(unknown, known, `${method} as ${caller}`);
          assert.equal(unknown[0], caller === 'guest' ? 403 : 404);
        }
        assert.equal(await reg.server.stores.auth.getRole('proj', 'realuser'), null, 'nothing changed');
      });
    }

    it('anonymous: 401 for both', async () => {
      for (const name of ['nosuchuser', 'realuser'])
        assert.equal((await fetch(`${reg.url}/api/v1/projects/proj/members/${name}`, { method: 'DELETE' })).status, 401);
    });

    it('project-admin: removing an unknown user and a non-member answer alike', async () => {
      assert.deepEqual(await answer('DELETE', 'nosuchuser', creds('owner')), await answer('DELETE', 'realuser', creds('owner')));
    });
  });
});
