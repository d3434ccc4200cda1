import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AuthStore } from '../../src/auth/ports.js';
import { deploy, type Backend, type Deployment } from './deployment.js';

/**
 * The IdentityBindingRows contract (src/auth/ports.ts; adapter src/metadata/identity-store.ts),
 * run on every metadata back end by test/contracts/identity-bindings-<backend>.test.ts: bindings
 * with their events and audit entries in one transaction, candidate look-ups, and the grants
 * external users hold, read by every role look-up beside the memberships.
 */
export function identityBindingsContract(backend: Backend): void {
  describe(`IdentityBindingRows contract: ${backend}`, () => {
    let deployment: Deployment;
    let auth: AuthStore;
    const actor = { name: 'root', ip: '192.0.2.1' };
    before(async () => {
      deployment = await deploy(backend);
      auth = deployment.stores.auth;
      for (const name of ['team-a', 'team-b', 'team-c']) await auth.createProject({ name, public: false, createdBy: 'root' });
      for (const username of ['ext-alice', 'ext-bob', 'local-carol'])
        await auth.createUser({ username, passwordHash: username.startsWith('ext') ? '!source:ldap' : 'hash', admin: false });
    });
    after(async () => deployment?.destroy());

    const bind = (
      subject: string,
      project: string,
      role: 'developer' | 'guest' | 'maintainer' | 'project-admin',
      kind: 'group' | 'id' | 'prefix' = 'group',
      source = 'ldap',
    ) => auth.createBinding({ source, kind, subject, project, role, createdBy: 'root' }, actor);

    async function eventsOf(type: string): Promise<Record<string, unknown>[]> {
      await deployment.stores.outbox.sequence(1e6);
      return (await deployment.stores.outbox.read(0, 10_000))
        .map((e) => e.event as unknown as Record<string, unknown>)
        .filter((e) => e.type === type);
    }

    it('createBinding stores it with its id, event and audit entry; the same binding again is refused and writes neither', async () => {
      const created = await bind('cn=devs,ou=groups,dc=example,dc=org', 'team-a', 'developer');
      assert.ok(created);
      assert.equal(typeof created.id, 'number');
      assert.deepEqual(
        { ...created, createdAt: undefined },
        {
          id: created.id,
          source: 'ldap',
          kind: 'group',
          subject: 'cn=devs,ou=groups,dc=example,dc=org',
          project: 'team-a',
          role: 'developer',
          createdBy: 'root',
          createdAt: undefined,
        },
      );
      assert.deepEqual(await auth.getBinding(created.id), created);
      const eventsBefore = (await eventsOf('binding.created')).length;
      assert.equal(await bind('cn=devs,ou=groups,dc=example,dc=org', 'team-a', 'guest'), null, 'same source, kind, subject, project');
      assert.equal((await eventsOf('binding.created')).length, eventsBefore);
      const events = await eventsOf('binding.created');
      assert.deepEqual(events.at(-1), {
        type: 'binding.created',
        id: created.id,
        source: 'ldap',
        kind: 'group',
        subject: 'cn=devs,ou=groups,dc=example,dc=org',
        project: 'team-a',
        role: 'developer',
      });
      const audit = await auth.queryAudit({ limit: 10, action: 'binding.create' });
      assert.equal(audit.length, 1);
      assert.equal(audit[0]!.actor, 'root');
      assert.equal(audit[0]!.ip, '192.0.2.1');
      assert.equal(audit[0]!.project, 'team-a', 'project admins may read it');
      assert.equal(audit[0]!.target, 'ldap:group:cn=devs,ou=groups,dc=example,dc=org');
    });

    it('subjects compare byte-wise; other kinds, sources and projects are other bindings', async () => {
      assert.ok(
        await bind('CN=Devs,ou=groups,dc=example,dc=org', 'team-a', 'guest'),
        'case differs (the service lowercases LDAP groups, not the store)',
      );
      assert.ok(await bind('cn=devs,ou=groups,dc=example,dc=org', 'team-b', 'guest'));
      assert.ok(await bind('cn=devs,ou=groups,dc=example,dc=org', 'team-a', 'guest', 'id'));
      assert.ok(await bind('cn=devs,ou=groups,dc=example,dc=org', 'team-a', 'guest', 'group', 'oidc:kc'));
      const list = await auth.listBindings({ project: 'team-a', source: 'ldap' });
      assert.deepEqual(
        list.map((b) => [b.kind, b.subject, b.role]),
        [
          ['group', 'cn=devs,ou=groups,dc=example,dc=org', 'developer'],
          ['group', 'CN=Devs,ou=groups,dc=example,dc=org', 'guest'],
          ['id', 'cn=devs,ou=groups,dc=example,dc=org', 'guest'],
        ],
      );
      assert.equal((await auth.listBindings({ source: 'oidc:kc' })).length, 1);
    });

    it('candidateBindings: groups among the given, the id, and every prefix of the source', async () => {
      await bind('spiffe://example.org/ns/ci', 'team-c', 'developer', 'prefix', 'spiffe');
      await bind('spiffe://example.org/ns/ci/sa/one', 'team-b', 'guest', 'id', 'spiffe');
      const spiffe = await auth.candidateBindings('spiffe', [], 'spiffe://example.org/ns/ci/sa/one');
      assert.deepEqual(spiffe.map((b) => [b.kind, b.project]).sort(), [
        ['id', 'team-b'],
        ['prefix', 'team-c'],
      ]);
      const ldap = await auth.candidateBindings('ldap', ['cn=devs,ou=groups,dc=example,dc=org', 'nobody'], undefined);
      assert.deepEqual(
        ldap.map((b) => [b.kind, b.project, b.role]),
        [
          ['group', 'team-a', 'developer'],
          ['group', 'team-b', 'guest'],
        ],
      );
      assert.deepEqual(await auth.candidateBindings('ldap', [], undefined), []);
    });

    it('grants count in every role look-up beside memberships; the stronger role wins', async () => {
      await auth.setMember('team-b', 'ext-alice', 'maintainer');
      await auth.setGrants('ext-alice', 'ldap', [
        { project: 'team-a', role: 'developer' },
        { project: 'team-b', role: 'guest' },
      ]);
      assert.equal(await auth.getRole('team-a', 'ext-alice'), 'developer');
      assert.equal(await auth.getRole('team-b', 'ext-alice'), 'maintainer', 'the membership is stronger');
      assert.equal(await auth.getRole('team-c', 'ext-alice'), null);
      await deployment.stores.metadata.transaction(async (tx) => {
        const rows = auth.within(tx);
        assert.equal((await rows.getProjectAndRole('team-a', 'ext-alice'))?.role, 'developer');
        assert.equal((await rows.getProjectAndRole('team-b', 'ext-alice'))?.role, 'maintainer');
        assert.equal((await rows.getProjectAndRole('team-c', 'ext-alice'))?.role, null);
        assert.equal(await rows.getProjectAndRole('no-such', 'ext-alice'), null);
        assert.equal(await rows.getRole('team-a', 'ext-alice'), 'developer');
      });
      assert.deepEqual(await auth.listMemberships('ext-alice'), [
        { project: 'team-a', username: 'ext-alice', role: 'developer', source: 'ldap' },
        { project: 'team-b', username: 'ext-alice', role: 'maintainer' },
      ]);
      assert.deepEqual(
        (await auth.listMembers('team-a')).filter((m) => m.username.startsWith('ext-')),
        [{ project: 'team-a', username: 'ext-alice', role: 'developer', source: 'ldap' }],
      );
    });

    it('setGrants replaces the whole set; a project that no longer exists is skipped', async () => {
      await auth.setGrants('ext-bob', 'ldap', [
        { project: 'team-a', role: 'guest' },
        { project: 'gone', role: 'developer' },
      ]);
      assert.deepEqual(await auth.listMemberships('ext-bob'), [{ project: 'team-a', username: 'ext-bob', role: 'guest', source: 'ldap' }]);
      await auth.setGrants('ext-bob', 'ldap', [{ project: 'team-c', role: 'developer' }]);
      assert.equal(await auth.getRole('team-a', 'ext-bob'), null, 'the previous grant is gone');
      assert.equal(await auth.getRole('team-c', 'ext-bob'), 'developer');
      await auth.setGrants('ext-bob', 'ldap', []);
      assert.deepEqual(await auth.listMemberships('ext-bob'), []);
    });

    it('deleteBinding removes it with its event and audit entry, and the grants of its source in its project at once', async () => {
      await auth.setGrants('ext-bob', 'ldap', [
        { project: 'team-a', role: 'developer' },
        { project: 'team-c', role: 'guest' },
      ]);
      const binding = (await auth.listBindings({ source: 'ldap', project: 'team-a' }))[0]!;
      assert.equal(await auth.deleteBinding(binding.id, actor), true);
      assert.equal(await auth.getBinding(binding.id), null);
      assert.equal(await auth.deleteBinding(binding.id, actor), false, 'already gone');
      assert.equal(await auth.getRole('team-a', 'ext-bob'), null);
      assert.equal(await auth.getRole('team-a', 'ext-alice'), null);
      assert.equal(await auth.getRole('team-c', 'ext-bob'), 'guest', 'other projects keep their grants');
      const deleted = await eventsOf('binding.deleted');
      assert.equal(deleted.length, 1);
      assert.equal(deleted[0]!.id, binding.id);
      assert.equal((await auth.queryAudit({ limit: 10, action: 'binding.delete' })).length, 1);
    });

    it('grants and bindings go with their user or project', async () => {
      await auth.setGrants('ext-bob', 'ldap', [{ project: 'team-c', role: 'guest' }]);
      assert.equal(await auth.deleteUser('ext-bob'), true);
      assert.deepEqual(
        (await auth.listMembers('team-c')).filter((m) => m.username === 'ext-bob'),
        [],
      );
      await auth.createProject({ name: 'team-d', public: false, createdBy: 'root' });
      await bind('devs', 'team-d', 'guest');
      await auth.setGrants('ext-alice', 'ldap', [{ project: 'team-d', role: 'guest' }]);
      assert.equal(await auth.deleteProject('team-d'), true);
      assert.deepEqual(await auth.listBindings({ project: 'team-d' }), []);
      assert.equal(await auth.getRole('team-d', 'ext-alice'), null);
      assert.equal(await auth.createProject({ name: 'team-d', public: false, createdBy: 'root' }), true);
      assert.equal(await auth.getRole('team-d', 'ext-alice'), null, 'a new project of that name inherits nothing');
    });
  });
}
