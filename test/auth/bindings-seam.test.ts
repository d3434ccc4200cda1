import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { IdentityBindings, prefixMatches } from '../../src/auth/bindings.js';
import { Authenticator } from '../../src/auth/identity.js';
import type { AuthStore } from '../../src/auth/ports.js';
import { LoginRateLimiter } from '../../src/auth/rate-limit.js';
import { hashSecret } from '../../src/auth/secrets.js';
import { ExternalIdentities, externalMarker, type ExternalUser, type PasswordSource, type Verification } from '../../src/auth/sources.js';
import { deploy, type Deployment } from '../contracts/deployment.js';

/**
 * The seam for external identities (src/auth/sources.ts) with a scripted PasswordSource over
 * the real auth store (SQLite): what any source (LDAP, OIDC) gets from the Authenticator —
 * first-login users, no takeover unless configured, grants from bindings at each verified login,
 * 'unavailable' never allowing, the positive cache, and prefix bindings on path boundaries.
 */
class ScriptedSource implements PasswordSource {
  calls = 0;
  answer: (username: string, password: string) => Verification = () => null;
  constructor(
    readonly name: string,
    readonly takeover = false,
    readonly cacheTtlMs = 0,
  ) {}
  async verify(username: string, password: string): Promise<Verification> {
    this.calls++;
    return this.answer(username, password);
  }
}

const user = (username: string, groups: string[], admin?: boolean): ExternalUser => ({
  username,
  groups,
  ...(admin === undefined ? {} : { admin }),
});

describe('external identities: the Authenticator with password sources', () => {
  let deployment: Deployment;
  let store: AuthStore;
  let bindings: IdentityBindings;
  const actor = { name: 'root', ip: null };
  before(async () => {
    deployment = await deploy('sqlite');
    store = deployment.stores.auth;
    bindings = new IdentityBindings(store);
    for (const name of ['team-a', 'team-b']) await store.createProject({ name, public: false, createdBy: 'root' });
    await store.createUser({ username: 'localuser', passwordHash: await hashSecret('local-password'), admin: false });
    await bindings.add(actor, { source: 'dir', kind: 'group', subject: 'devs', project: 'team-a', role: 'developer' });
    await bindings.add(actor, { source: 'dir', kind: 'group', subject: 'leads', project: 'team-a', role: 'maintainer' });
    await bindings.add(actor, { source: 'dir', kind: 'id', subject: 'ann', project: 'team-b', role: 'guest' });
  });
  after(async () => deployment?.destroy());

  const authenticator = (...sources: PasswordSource[]) =>
    new Authenticator(
      store,
      new LoginRateLimiter({ failures: 100, perIp: 1000, windowMs: 60_000, backoffMs: 1 }),
      null,
      new ExternalIdentities(store, bindings, sources),
    );
  const login = (a: Authenticator, name: string, password: string) => a.login(name, password, '192.0.2.9', {}, 'token');

  it('first login creates the user of that source; roles are the strongest of the matching bindings, re-derived at each login', async () => {
    const dir = new ScriptedSource('dir');
    dir.answer = (name, pw) => (pw === 'ann-pw' ? user(name, ['devs', 'leads']) : null);
    const a = authenticator(dir);
    assert.deepEqual(await login(a, 'ann', 'ann-pw'), { kind: 'user', name: 'ann', admin: false, source: 'dir' });
    assert.equal((await store.getUser('ann'))?.passwordHash, externalMarker('dir'));
    assert.equal(await store.getRole('team-a', 'ann'), 'maintainer');
    assert.equal(await store.getRole('team-b', 'ann'), 'guest', 'kind id');
    dir.answer = (name, pw) => (pw === 'ann-pw' ? user(name, ['devs']) : null);
    await login(a, 'ann', 'ann-pw');
    assert.equal(await store.getRole('team-a', 'ann'), 'developer', 'left the leads group');
    assert.deepEqual(await a.current('ann'), { kind: 'user', name: 'ann', admin: false, source: 'dir' });
    await assert.rejects(login(a, 'ann', 'wrong'), /invalid username or password/);
    // Without the source configured, the row matches nothing: no login, and its tokens' subject is gone.
    const without = authenticator();
    await assert.rejects(login(without, 'ann', 'ann-pw'), /invalid username or password/);
    assert.equal(await without.current('ann'), null);
  });

  it('a local user is not taken over by default, and is by a source configured to (its password then the source’s)', async () => {
    const plain = new ScriptedSource('dir');
    plain.answer = (name) => user(name, ['devs']);
    assert.equal((await login(authenticator(plain), 'localuser', 'local-password')).kind, 'user');
    await assert.rejects(login(authenticator(plain), 'localuser', 'directory-password'), /invalid username or password/);
    assert.equal(plain.calls, 0, 'a local user is never sent to a source that may not take it over');
    const taking = new ScriptedSource('dir', true);
    taking.answer = (name, pw) => (pw === 'directory-password' ? user(name, ['devs']) : null);
    assert.equal((await login(authenticator(taking), 'localuser', 'local-password')).kind, 'user', 'the local password still works');
    assert.equal(taking.calls, 0);
    assert.deepEqual(await login(authenticator(taking), 'localuser', 'directory-password'), {
      kind: 'user',
      name: 'localuser',
      admin: false,
      source: 'dir',
    });
    assert.equal((await store.getUser('localuser'))?.passwordHash, externalMarker('dir'));
    const audit = await store.queryAudit({ limit: 5, action: 'user.takeover' });
    assert.equal(audit[0]?.target, 'localuser');
  });

  it('unavailable is a 503, never an allow, and only after every other source refused; the next source may vouch', async () => {
    const down = new ScriptedSource('down');
    down.answer = () => 'unavailable';
    const other = new ScriptedSource('other');
    other.answer = (name, pw) => (pw === 'bo-pw' ? user(name, []) : null);
    const a = authenticator(down, other);
    await assert.rejects(
      login(a, 'nobody', 'x'),
      (err: { status: number; message: string }) => err.status === 503 && /down/.test(err.message),
    );
    assert.equal((await login(a, 'bo', 'bo-pw')).kind, 'user', 'the second source answered');
    assert.equal((await store.getUser('bo'))?.passwordHash, externalMarker('other'));
    const thrower = new ScriptedSource('thrower');
    thrower.verify = async () => {
      throw new Error('socket hang up');
    };
    await assert.rejects(login(authenticator(thrower), 'nobody', 'x'), (err: { status: number }) => err.status === 503);
    const failed = (await store.queryAudit({ limit: 1, action: 'login.failed' }))[0];
    assert.deepEqual(failed?.detail, { via: 'token', source: 'thrower', reason: 'unavailable' });
  });

  it('a source may not vouch for another name, and the admin flag follows the source when it reports one', async () => {
    const liar = new ScriptedSource('dir');
    liar.answer = () => user('someone-else', ['devs']);
    await assert.rejects(login(authenticator(liar), 'cy', 'pw'), /invalid username or password/);
    const dir = new ScriptedSource('dir');
    dir.answer = (name) => user(name, [], true);
    assert.equal(((await login(authenticator(dir), 'cy', 'pw')) as { admin: boolean }).admin, true);
    dir.answer = (name) => user(name, []);
    assert.equal(((await login(authenticator(dir), 'cy', 'pw')) as { admin: boolean }).admin, true, 'undefined leaves the flag');
    dir.answer = (name) => user(name, [], false);
    assert.equal(((await login(authenticator(dir), 'cy', 'pw')) as { admin: boolean }).admin, false);
    await assert.rejects(login(authenticator(dir), 'Not-Valid', 'pw'), /invalid username or password/);
  });

  it('the cache answers repeats of the same name and password without asking; another password asks', async () => {
    const dir = new ScriptedSource('dir', false, 60_000);
    dir.answer = (name, pw) => (pw === 'di-pw' ? user(name, ['devs']) : null);
    const a = authenticator(dir);
    await login(a, 'di', 'di-pw');
    await login(a, 'di', 'di-pw');
    assert.equal(dir.calls, 1);
    await assert.rejects(login(a, 'di', 'other-pw'));
    assert.equal(dir.calls, 2);
    dir.answer = () => 'unavailable';
    assert.equal((await login(a, 'di', 'di-pw')).kind, 'user', 'cached while the source is down');
  });

  it('rolesFor: prefix bindings match on path boundaries, exact ids, and groups of that source only', async () => {
    await bindings.add(actor, {
      source: 'spiffe',
      kind: 'prefix',
      subject: 'spiffe://example.org/ns/ci',
      project: 'team-a',
      role: 'developer',
    });
    await bindings.add(actor, {
      source: 'spiffe',
      kind: 'id',
      subject: 'spiffe://example.org/ns/ci/sa/deploy',
      project: 'team-b',
      role: 'maintainer',
    });
    assert.deepEqual(await bindings.rolesFor('spiffe', [], 'spiffe://example.org/ns/ci/sa/deploy'), [
      { project: 'team-a', role: 'developer' },
      { project: 'team-b', role: 'maintainer' },
    ]);
    assert.deepEqual(await bindings.rolesFor('spiffe', [], 'spiffe://example.org/ns/ci'), [{ project: 'team-a', role: 'developer' }]);
    assert.deepEqual(await bindings.rolesFor('spiffe', [], 'spiffe://example.org/ns/cid/x'), [], 'not on a path boundary');
    assert.deepEqual(await bindings.rolesFor('spiffe', ['devs'], undefined), [], 'groups of another source');
    assert.equal(prefixMatches('spiffe://a/b', 'spiffe://a/b/c'), true);
    assert.equal(prefixMatches('spiffe://a/b', 'spiffe://a/bc'), false);
    assert.equal(prefixMatches('', 'spiffe://a'), false);
  });
});
