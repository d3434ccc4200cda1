import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditQuery, AuthStore, RobotRecord } from '../../src/auth/ports.js';
import { byteOrder, deploy, type Backend, type Deployment } from './deployment.js';
import { rows } from './fixtures.js';

/**
 * The AuthStore contract (src/auth/ports.ts), run on every metadata back end by
 * test/contracts/auth-store-<backend>.test.ts through the composition root's `stores.auth`.
 * The tests share one database; each uses names of its own (a prefix) and filters global lists by it.
 */
export function authStoreContract(backend: Backend): void {
  describe(`AuthStore contract: ${backend}`, () => {
    let deployment: Deployment;
    let auth: AuthStore;
    before(async () => {
      deployment = await deploy(backend);
      auth = deployment.stores.auth;
    });
    after(async () => deployment?.destroy());

    const user = (username: string, admin = false) => ({ username, passwordHash: `hash-of-${username}`, admin });
    const token = (hash: string, username: string, expiresAt = Date.now() + 3_600_000) => ({
      hash,
      username,
      clientId: 'docker',
      createdAt: new Date(Date.now() - 1000),
      expiresAt: new Date(expiresAt),
    });

    describe('users', () => {
      it('create, get, count; a taken name is refused and the first account kept', async () => {
        const before = await auth.countUsers();
        const started = Date.now();
        assert.equal(await auth.createUser(user('u1-alice', true)), true);
        assert.equal(await auth.createUser({ username: 'u1-alice', passwordHash: 'other', admin: false }), false);
        assert.equal(await auth.countUsers(), before + 1);
        const alice = await auth.getUser('u1-alice');
        assert.ok(alice);
        assert.equal(alice.username, 'u1-alice');
        assert.equal(alice.passwordHash, 'hash-of-u1-alice');
        assert.equal(alice.admin, true);
        assert.ok(alice.createdAt instanceof Date);
        assert.ok(alice.createdAt.getTime() >= started - 1000 && alice.createdAt.getTime() <= Date.now() + 1000, String(alice.createdAt));
        assert.equal(await auth.getUser('u1-nobody'), null);
      });

      it('names compare byte-wise: case and trailing spaces make different names', async () => {
        assert.equal(await auth.createUser(user('u2-carol')), true);
        assert.equal(await auth.createUser(user('U2-CAROL')), true, 'another name, not a duplicate');
        assert.equal(await auth.createUser(user('u2-carol ')), true, 'a trailing space is significant');
        assert.equal(await auth.getUser('U2-Carol'), null);
        assert.equal((await auth.getUser('u2-carol'))?.passwordHash, 'hash-of-u2-carol');
        assert.equal((await auth.getUser('U2-CAROL'))?.passwordHash, 'hash-of-U2-CAROL');
        assert.equal((await auth.getUser('u2-carol '))?.passwordHash, 'hash-of-u2-carol ');
      });

      it('listUsers is in byte order', async () => {
        const names = ['u3-bob', 'U3-zed', 'u3-alice_c', 'u3-alice.b', 'u3-alice-2', 'u3-alice', 'u3-Alice'];
        for (const n of names) assert.equal(await auth.createUser(user(n)), true);
        const listed = (await auth.listUsers()).map((u) => u.username).filter((n) => n.toLowerCase().startsWith('u3-'));
        assert.deepEqual(listed, byteOrder(names));
        const all = (await auth.listUsers()).map((u) => u.username);
        assert.deepEqual(all, byteOrder(all), 'the whole list too');
        assert.equal(all.length, await auth.countUsers());
      });

      it('setAdmin changes the flag, also to its current value; unknown users are false', async () => {
        await auth.createUser(user('u4-dave'));
        assert.equal(await auth.setAdmin('u4-dave', true), true);
        assert.equal((await auth.getUser('u4-dave'))?.admin, true);
        assert.equal(await auth.setAdmin('u4-dave', true), true, 'unchanged value: the user still exists');
        assert.equal(await auth.setAdmin('u4-dave', false), true);
        assert.equal((await auth.getUser('u4-dave'))?.admin, false);
        assert.equal(await auth.setAdmin('u4-nobody', true), false);
      });

      it("setPassword changes the hash and revokes that user's refresh tokens only", async () => {
        await auth.createUser(user('u5-erin'));
        await auth.createUser(user('u5-frank'));
        await auth.saveRefreshToken(token('u5-t1', 'u5-erin'));
        await auth.saveRefreshToken(token('u5-t2', 'u5-erin'));
        await auth.saveRefreshToken(token('u5-t3', 'u5-frank'));
        assert.equal(await auth.setPassword('u5-erin', 'new-hash'), true);
        assert.equal((await auth.getUser('u5-erin'))?.passwordHash, 'new-hash');
        assert.equal(await auth.getRefreshToken('u5-t1'), null);
        assert.equal(await auth.getRefreshToken('u5-t2'), null);
        assert.equal((await auth.getRefreshToken('u5-t3'))?.username, 'u5-frank', "another user's token is kept");
        assert.equal(await auth.setPassword('u5-erin', 'new-hash'), true, 'the same hash again: the user still exists');
        assert.equal(await auth.setPassword('u5-nobody', 'x'), false);
        assert.equal(await auth.getUser('u5-nobody'), null);
      });

      it('deleteUser removes the user with their memberships and refresh tokens', async () => {
        await auth.createUser(user('u6-gina'));
        await auth.createUser(user('u6-hank'));
        await auth.createProject({ name: 'u6-proj', public: false, createdBy: 'u6-gina' }, 'u6-gina');
        await auth.setMember('u6-proj', 'u6-hank', 'developer');
        await auth.saveRefreshToken(token('u6-t1', 'u6-gina'));
        await auth.saveRefreshToken(token('u6-t2', 'u6-hank'));
        const count = await auth.countUsers();
        assert.equal(await auth.deleteUser('u6-gina'), true);
        assert.equal(await auth.getUser('u6-gina'), null);
        assert.equal(await auth.countUsers(), count - 1);
        assert.deepEqual(await auth.listMemberships('u6-gina'), []);
        assert.equal(await auth.getRole('u6-proj', 'u6-gina'), null);
        assert.equal(await auth.getRefreshToken('u6-t1'), null);
        assert.deepEqual(
          await auth.listMembers('u6-proj'),
          [{ project: 'u6-proj', username: 'u6-hank', role: 'developer' }],
          'other members stay',
        );
        assert.equal((await auth.getRefreshToken('u6-t2'))?.username, 'u6-hank');
        assert.ok(await auth.getProject('u6-proj'), 'the project stays');
        assert.equal(await auth.deleteUser('u6-gina'), false, 'deleting twice');
        assert.equal(await auth.createUser(user('u6-gina')), true, 'the name is free again');
        assert.deepEqual(await auth.listMemberships('u6-gina'), [], 'a new account with the name inherits nothing');
      });
    });

    describe('projects', () => {
      it('create with an owner makes them project-admin; creating it again is false and changes nothing', async () => {
        await auth.createUser(user('p1-owner'));
        await auth.createUser(user('p1-other'));
        const started = Date.now();
        assert.equal(await auth.createProject({ name: 'p1-team', public: true, createdBy: 'p1-owner' }, 'p1-owner'), true);
        const project = await auth.getProject('p1-team');
        assert.ok(project);
        assert.deepEqual(
          { ...project, createdAt: undefined },
          { name: 'p1-team', public: true, createdBy: 'p1-owner', createdAt: undefined },
        );
        assert.ok(project.createdAt.getTime() >= started - 1000 && project.createdAt.getTime() <= Date.now() + 1000);
        assert.equal(await auth.getRole('p1-team', 'p1-owner'), 'project-admin');
        assert.equal(await auth.createProject({ name: 'p1-team', public: false, createdBy: 'p1-other' }, 'p1-other'), false);
        assert.equal((await auth.getProject('p1-team'))?.public, true, 'the first project is kept');
        assert.equal(await auth.getRole('p1-team', 'p1-other'), null, 'a refused create adds no member');
        assert.deepEqual(await auth.listMembers('p1-team'), [{ project: 'p1-team', username: 'p1-owner', role: 'project-admin' }]);
      });

      it('create without an owner adds no member; createdBy may be null', async () => {
        assert.equal(await auth.createProject({ name: 'p2-solo', public: false, createdBy: null }), true);
        assert.deepEqual(await auth.listMembers('p2-solo'), []);
        const project = await auth.getProject('p2-solo');
        assert.equal(project?.createdBy, null);
        assert.equal(project?.public, false);
        assert.equal(await auth.getProject('p2-nothing'), null);
      });

      it('create with an owner that cannot be a member fails as a whole: no project is left behind', async () => {
        await assert.rejects(auth.createProject({ name: 'p3-orphan', public: false, createdBy: null }, 'p3-no-such-user'));
        assert.equal(await auth.getProject('p3-orphan'), null, 'the insert of the project was rolled back');
        assert.equal(await auth.createProject({ name: 'p3-orphan', public: false, createdBy: null }), true, 'and the name is free');
      });

      it('visibility can be changed; unknown projects are false', async () => {
        await auth.createProject({ name: 'p4-vis', public: false, createdBy: null });
        assert.equal(await auth.setProjectVisibility('p4-vis', true), true);
        assert.equal((await auth.getProject('p4-vis'))?.public, true);
        assert.equal(await auth.setProjectVisibility('p4-vis', true), true, 'unchanged value: the project still exists');
        assert.equal(await auth.setProjectVisibility('p4-vis', false), true);
        assert.equal((await auth.getProject('p4-vis'))?.public, false);
        assert.equal(await auth.setProjectVisibility('p4-none', true), false);
      });

      it('listProjects is in byte order; project names compare byte-wise', async () => {
        const names = ['p5-b', 'P5-Z', 'p5-a_c', 'p5-a.b', 'p5-a-2', 'p5-a', 'p5-A'];
        for (const n of names) assert.equal(await auth.createProject({ name: n, public: false, createdBy: null }), true, n);
        const listed = (await auth.listProjects()).map((p) => p.name).filter((n) => n.toLowerCase().startsWith('p5-'));
        assert.deepEqual(listed, byteOrder(names));
        const all = (await auth.listProjects()).map((p) => p.name);
        assert.deepEqual(all, byteOrder(all));
      });

      it('delete removes the project with its members and robots; users and other projects stay', async () => {
        await auth.createUser(user('p6-owner'));
        await auth.createProject({ name: 'p6-doomed', public: false, createdBy: 'p6-owner' }, 'p6-owner');
        await auth.createProject({ name: 'p6-kept', public: false, createdBy: 'p6-owner' }, 'p6-owner');
        await auth.createRobot(robot('robot$p6-doomed+ci', 'p6-doomed'));
        await auth.createRobot(robot('robot$p6-kept+ci', 'p6-kept'));
        await auth.createRobot(robot('robot$p6-system', null));
        assert.equal(await auth.deleteProject('p6-doomed'), true);
        assert.equal(await auth.getProject('p6-doomed'), null);
        assert.deepEqual(await auth.listMembers('p6-doomed'), []);
        assert.equal(await auth.getRobot('robot$p6-doomed+ci'), null);
        assert.deepEqual(await auth.listRobots('p6-doomed'), []);
        assert.deepEqual(
          (await auth.listMemberships('p6-owner')).map((m) => m.project),
          ['p6-kept'],
        );
        assert.ok(await auth.getRobot('robot$p6-kept+ci'));
        assert.ok(await auth.getRobot('robot$p6-system'));
        assert.ok(await auth.getUser('p6-owner'));
        assert.equal(await auth.deleteProject('p6-doomed'), false, 'deleting twice');
        assert.equal(await auth.createProject({ name: 'p6-doomed', public: true, createdBy: null }), true, 'the name is free again');
        assert.deepEqual(await auth.listMembers('p6-doomed'), [], 'a new project with the name inherits no member');
      });
    });

    describe('projects and the repositories under them', () => {
      it('projectHasRepositories: the repository named like the project, or any under "<project>/"; names compare byte-wise', async () => {
        const write = rows(deployment.stores.metadata);
        await write.repositoryId('o1-solo');
        await write.repositoryId('o1-team/app/x');
        await write.repositoryId('o1-team-b/app');
        assert.equal(await auth.projectHasRepositories('o1-solo'), true);
        assert.equal(await auth.projectHasRepositories('o1-team'), true);
        assert.equal(await auth.projectHasRepositories('o1-team-b'), true);
        for (const empty of ['o1-sol', 'o1-tea', 'O1-team', 'o1-team-', 'o1-team-c'])
          assert.equal(await auth.projectHasRepositories(empty), false, empty);
        const orphans = (await auth.orphanRepositories(undefined, 10_000)).filter((n) => n.startsWith('o1-'));
        assert.deepEqual(orphans, ['o1-solo', 'o1-team-b/app', 'o1-team/app/x']);
        assert.equal(await auth.createProject({ name: 'o1-team', public: false, createdBy: null }), true);
        assert.deepEqual(
          (await auth.orphanRepositories('o1-', 10_000)).filter((n) => n.startsWith('o1-')),
          ['o1-solo', 'o1-team-b/app'],
        );
      });

      it('within(tx): reads and creates a project inside a registry write, which commits or rolls back with it', async () => {
        await auth.createUser(user('o2-owner'));
        const metadata = deployment.stores.metadata;
        await assert.rejects(
          metadata.transaction(async (tx) => {
            const rows = auth.within(tx);
            assert.equal(
              await rows.createProject({ name: 'o2-gone', public: false, createdBy: 'o2-owner' }, 'o2-owner', {
                name: 'o2-owner',
                ip: '192.0.2.1',
              }),
              true,
            );
            assert.equal((await rows.getProject('o2-gone'))?.createdBy, 'o2-owner', 'visible inside');
            throw new Error('the write fails');
          }),
          /the write fails/,
        );
        assert.equal(await auth.getProject('o2-gone'), null, 'rolled back with the write');
        assert.equal((await auth.listAudit(1000)).filter((a) => a.target === 'o2-gone').length, 0, 'its audit row too');

        await metadata.transaction(async (tx) => {
          const rows = auth.within(tx);
          const actor = { name: 'o2-owner', ip: '192.0.2.1', audit: { action: 'project.autocreate', detail: { owner: 'o2-owner' } } };
          assert.equal(await rows.createProject({ name: 'o2-kept', public: false, createdBy: 'o2-owner' }, 'o2-owner', actor), true);
          assert.equal(
            await rows.createProject({ name: 'o2-kept', public: true, createdBy: 'o2-owner' }, 'o2-owner', actor),
            false,
            'a taken name is false',
          );
          assert.equal(await rows.getRole('o2-kept', 'o2-owner'), 'project-admin');
          const both = await rows.getProjectAndRole('o2-kept', 'o2-owner');
          assert.deepEqual(
            [both?.project.name, both?.project.createdBy, both?.project.public, both?.role],
            ['o2-kept', 'o2-owner', false, 'project-admin'],
          );
          assert.equal((await rows.getProjectAndRole('o2-kept', 'o2-stranger'))?.role, null, 'the project, without a role');
          assert.equal(await rows.getProjectAndRole('o2-none', 'o2-owner'), null);
          assert.equal((await rows.getUser('o2-owner'))?.username, 'o2-owner');
          assert.equal(await rows.getRobot('robot$o2-none'), null);
          assert.equal(await rows.projectHasRepositories('o2-kept'), false);
        });
        assert.equal((await auth.getProject('o2-kept'))?.public, false);
        const audit = (await auth.listAudit(1000)).filter((a) => a.target === 'o2-kept');
        assert.deepEqual(
          audit.map((a) => [a.actor, a.action, a.ip, a.detail]),
          [['o2-owner', 'project.autocreate', '192.0.2.1', { owner: 'o2-owner' }]],
        );
      });

      it('within(tx): two writes creating the same project at once: one creates it, the other sees it exists', async () => {
        await auth.createUser(user('o3-a'));
        await auth.createUser(user('o3-b'));
        const metadata = deployment.stores.metadata;
        const attempt = (owner: string) =>
          metadata.transaction(async (tx) => {
            const rows = auth.within(tx);
            if (await rows.getProject('o3-race')) return 'existed';
            return (await rows.createProject({ name: 'o3-race', public: false, createdBy: owner }, owner, { name: owner, ip: null }))
              ? 'created'
              : 'taken';
          });
        const outcomes = await Promise.all([attempt('o3-a'), attempt('o3-b')]);
        assert.equal(outcomes.filter((o) => o === 'created').length, 1, JSON.stringify(outcomes));
        assert.equal((await auth.listMembers('o3-race')).length, 1, 'one owner');
      });
    });

    describe('members', () => {
      it('set adds a member, set again changes the role; getRole, list and remove', async () => {
        for (const n of ['m1-ann', 'm1-Bea', 'm1-cid']) await auth.createUser(user(n));
        await auth.createProject({ name: 'm1-proj', public: false, createdBy: null });
        await auth.setMember('m1-proj', 'm1-cid', 'guest');
        await auth.setMember('m1-proj', 'm1-ann', 'developer');
        await auth.setMember('m1-proj', 'm1-Bea', 'maintainer');
        assert.equal(await auth.getRole('m1-proj', 'm1-ann'), 'developer');
        await auth.setMember('m1-proj', 'm1-ann', 'project-admin');
        assert.equal(await auth.getRole('m1-proj', 'm1-ann'), 'project-admin');
        await auth.setMember('m1-proj', 'm1-ann', 'project-admin');
        assert.equal(await auth.getRole('m1-proj', 'm1-ann'), 'project-admin', 'setting the same role is a no-op');
        assert.deepEqual(
          await auth.listMembers('m1-proj'),
          [
            { project: 'm1-proj', username: 'm1-Bea', role: 'maintainer' },
            { project: 'm1-proj', username: 'm1-ann', role: 'project-admin' },
            { project: 'm1-proj', username: 'm1-cid', role: 'guest' },
          ],
          'one row per member, in byte order of the user name',
        );
        assert.equal(await auth.getRole('m1-proj', 'M1-ANN'), null, 'user names compare byte-wise');
        assert.equal(await auth.getRole('M1-PROJ', 'm1-ann'), null, 'project names compare byte-wise');
        assert.equal(await auth.removeMember('m1-proj', 'm1-ann'), true);
        assert.equal(await auth.removeMember('m1-proj', 'm1-ann'), false);
        assert.equal(await auth.getRole('m1-proj', 'm1-ann'), null);
        assert.deepEqual(
          (await auth.listMembers('m1-proj')).map((m) => m.username),
          ['m1-Bea', 'm1-cid'],
        );
        assert.ok(await auth.getUser('m1-ann'), 'removing a member keeps the user');
        assert.deepEqual(await auth.listMembers('m1-no-project'), []);
      });

      it("listMemberships lists a user's projects in byte order, with the role in each", async () => {
        await auth.createUser(user('m2-user'));
        await auth.createUser(user('m2-other'));
        const projects = ['m2-b', 'M2-Z', 'm2-a.x', 'm2-a-x', 'm2-a'];
        for (const [i, p] of projects.entries()) {
          await auth.createProject({ name: p, public: false, createdBy: null });
          await auth.setMember(p, 'm2-user', i % 2 === 0 ? 'developer' : 'guest');
        }
        await auth.setMember('m2-b', 'm2-other', 'guest');
        const memberships = await auth.listMemberships('m2-user');
        assert.deepEqual(
          memberships.map((m) => m.project),
          byteOrder(projects),
        );
        for (const m of memberships) {
          assert.equal(m.username, 'm2-user');
          assert.equal(m.role, projects.indexOf(m.project) % 2 === 0 ? 'developer' : 'guest');
        }
        assert.deepEqual(await auth.listMemberships('m2-nobody'), []);
      });
    });

    function robot(name: string, project: string | null, fields: Partial<RobotRecord> = {}): Omit<RobotRecord, 'createdAt'> {
      return {
        name,
        project,
        secretHash: `secret-of-${name}`,
        permissions: [],
        description: null,
        expiresAt: null,
        createdBy: 'admin',
        ...fields,
      };
    }

    describe('robots', () => {
      it('create and get round-trip every field; a taken name is refused', async () => {
        await auth.createProject({ name: 'r1-proj', public: false, createdBy: null });
        const permissions = [
          { project: 'r1-proj', repository: '*', actions: ['pull'] },
          { project: 'r1-proj', repository: 'app/ü-ñ "quoted"', actions: ['pull', 'push', 'delete'] },
        ];
        const expiresAt = new Date(Date.now() + 86_400_000 + 123);
        const started = Date.now();
        const record = robot('robot$r1-proj+ci', 'r1-proj', {
          permissions,
          description: 'CI — déploiement',
          expiresAt,
          createdBy: 'r1-admin',
        });
        assert.equal(await auth.createRobot(record), true);
        assert.equal(await auth.createRobot({ ...record, secretHash: 'other' }), false);
        const stored = await auth.getRobot('robot$r1-proj+ci');
        assert.ok(stored);
        assert.deepEqual({ ...stored, createdAt: undefined }, { ...record, createdAt: undefined });
        assert.equal(stored.expiresAt?.getTime(), expiresAt.getTime(), 'millisecond precision');
        assert.ok(stored.createdAt.getTime() >= started - 1000 && stored.createdAt.getTime() <= Date.now() + 1000);
        assert.equal(await auth.getRobot('ROBOT$r1-proj+ci'), null, 'robot names compare byte-wise');
        assert.equal(await auth.getRobot('robot$r1-none'), null);
      });

      it('an expired robot is still stored with its expiry; no expiry is null', async () => {
        const expired = new Date(Date.now() - 60_000);
        assert.equal(await auth.createRobot(robot('robot$r2-old', null, { expiresAt: expired })), true);
        assert.equal((await auth.getRobot('robot$r2-old'))?.expiresAt?.getTime(), expired.getTime());
        assert.equal(await auth.createRobot(robot('robot$r2-forever', null)), true);
        assert.equal((await auth.getRobot('robot$r2-forever'))?.expiresAt, null);
      });

      it("listRobots(project) lists that project's robots, listRobots(null) the system-level ones, each in byte order", async () => {
        await auth.createProject({ name: 'r3-a', public: false, createdBy: null });
        await auth.createProject({ name: 'r3-b', public: false, createdBy: null });
        const inA = ['robot$r3-a+zz', 'robot$r3-a+Ci', 'robot$r3-a+ci', 'robot$r3-a+c-i', 'robot$r3-a+c.i'];
        for (const n of inA) await auth.createRobot(robot(n, 'r3-a'));
        await auth.createRobot(robot('robot$r3-b+ci', 'r3-b'));
        const system = ['robot$r3-Sys', 'robot$r3-sys', 'robot$r3-sys-2'];
        for (const n of system) await auth.createRobot(robot(n, null));
        assert.deepEqual(
          (await auth.listRobots('r3-a')).map((r) => r.name),
          byteOrder(inA),
        );
        assert.ok((await auth.listRobots('r3-a')).every((r) => r.project === 'r3-a'));
        assert.deepEqual(
          (await auth.listRobots('r3-b')).map((r) => r.name),
          ['robot$r3-b+ci'],
        );
        const systemLevel = await auth.listRobots(null);
        assert.ok(
          systemLevel.every((r) => r.project === null),
          'only system-level robots',
        );
        assert.deepEqual(
          systemLevel.map((r) => r.name).filter((n) => n.toLowerCase().startsWith('robot$r3-')),
          byteOrder(system),
        );
        assert.deepEqual(
          systemLevel.map((r) => r.name),
          byteOrder(systemLevel.map((r) => r.name)),
        );
        assert.deepEqual(await auth.listRobots('r3-none'), []);
      });

      it('a robot of an unknown project is refused (not swallowed as a duplicate)', async () => {
        await assert.rejects(auth.createRobot(robot('robot$r4-x+ci', 'r4-no-such-project')));
        assert.equal(await auth.getRobot('robot$r4-x+ci'), null);
      });

      it('delete', async () => {
        await auth.createRobot(robot('robot$r5-gone', null));
        assert.equal(await auth.deleteRobot('robot$r5-gone'), true);
        assert.equal(await auth.getRobot('robot$r5-gone'), null);
        assert.equal(await auth.deleteRobot('robot$r5-gone'), false);
        assert.equal(await auth.createRobot(robot('robot$r5-gone', null)), true, 'the name is free again');
      });
    });

    describe('signing keys', () => {
      // Signing keys are global: these tests run in order on the same table.
      const key = (kid: string, createdAt: number) => ({
        kid,
        privateJwk: `{"d":"${kid}"}`,
        publicJwk: `{"x":"${kid}"}`,
        createdAt: new Date(createdAt),
      });

      it('the first key is active; each new key retires the previous active one; listed newest first', async () => {
        assert.deepEqual(await auth.listSigningKeys(), []);
        const t0 = Date.now() - 10_000;
        await auth.addSigningKey(key('k1', t0));
        assert.deepEqual(await auth.listSigningKeys(), [{ ...key('k1', t0), retiredAt: null }]);
        const beforeRotation = Date.now();
        await auth.addSigningKey(key('k2', t0 + 1000));
        let keys = await auth.listSigningKeys();
        assert.deepEqual(
          keys.map((k) => k.kid),
          ['k2', 'k1'],
        );
        assert.equal(keys[0]!.retiredAt, null);
        assert.ok(keys[1]!.retiredAt instanceof Date);
        const retiredAt = keys[1]!.retiredAt.getTime();
        assert.ok(retiredAt >= beforeRotation - 1000 && retiredAt <= Date.now() + 1000, 'retired now');
        await auth.addSigningKey(key('k3', t0 + 2000));
        keys = await auth.listSigningKeys();
        assert.deepEqual(
          keys.map((k) => [k.kid, k.retiredAt === null]),
          [
            ['k3', true],
            ['k2', false],
            ['k1', false],
          ],
        );
        assert.equal(keys[2]!.retiredAt?.getTime(), retiredAt, 'an already retired key keeps its retirement time');
        assert.deepEqual({ ...keys[0], retiredAt: undefined }, { ...key('k3', t0 + 2000), retiredAt: undefined });
      });

      it('concurrent rotations leave exactly one active key', async () => {
        const t0 = Date.now();
        await Promise.all(Array.from({ length: 4 }, (_, i) => auth.addSigningKey(key(`race-${i}`, t0 + i))));
        const keys = await auth.listSigningKeys();
        assert.equal(keys.length, 7);
        assert.deepEqual(
          keys.filter((k) => k.retiredAt === null).length,
          1,
          `active: ${keys
            .filter((k) => k.retiredAt === null)
            .map((k) => k.kid)
            .join(', ')}`,
        );
      });
    });

    describe('refresh tokens', () => {
      it('save, get (every field), revoke', async () => {
        await auth.createUser(user('t1-user'));
        const saved = {
          ...token('t1-hash', 't1-user'),
          clientId: 'podman',
          createdAt: new Date(Date.now() - 1234),
          expiresAt: new Date(Date.now() + 3_600_567),
        };
        await auth.saveRefreshToken(saved);
        assert.deepEqual(await auth.getRefreshToken('t1-hash'), saved);
        assert.equal(await auth.getRefreshToken('T1-HASH'), null, 'hashes compare byte-wise');
        assert.equal(await auth.revokeRefreshToken('t1-hash'), true);
        assert.equal(await auth.getRefreshToken('t1-hash'), null);
        assert.equal(await auth.revokeRefreshToken('t1-hash'), false);
        assert.equal(await auth.getRefreshToken('t1-unknown'), null);
      });

      it('a token that expired is still returned, with its expiry (the caller refuses it)', async () => {
        await auth.createUser(user('t2-user'));
        const expiresAt = Date.now() + 150;
        await auth.saveRefreshToken(token('t2-hash', 't2-user', expiresAt));
        await sleep(expiresAt - Date.now() + 50);
        const record = await auth.getRefreshToken('t2-hash');
        assert.ok(record, 'still stored');
        assert.equal(record.expiresAt.getTime(), expiresAt);
        assert.ok(record.expiresAt.getTime() < Date.now());
      });

      it('a token of an unknown user is refused', async () => {
        await assert.rejects(auth.saveRefreshToken(token('t3-hash', 't3-nobody')));
        assert.equal(await auth.getRefreshToken('t3-hash'), null);
      });
    });

    describe('audit log', () => {
      it('append; list newest first with every field; page with beforeId', async () => {
        const started = Date.now();
        const entries = Array.from({ length: 7 }, (_, i) => ({
          actor: `a-actor-${i}`,
          action: i % 2 === 0 ? 'user.create' : 'project.delete',
          target: `target-${i}`,
          ip: i === 3 ? null : `10.0.0.${i}`,
          ...(i === 5 ? {} : { detail: { i, nested: { list: [1, 'two', null], text: 'ü "q"' } } }),
        }));
        for (const e of entries) await auth.audit(e);
        const all = await auth.listAudit(100);
        const mine = all.filter((r) => r.actor.startsWith('a-actor-'));
        assert.equal(mine.length, 7);
        assert.deepEqual(
          mine.map((r) => r.actor),
          entries.map((e) => e.actor).reverse(),
          'newest first',
        );
        assert.deepEqual(
          all.map((r) => r.id),
          [...all.map((r) => r.id)].sort((a, b) => b - a),
          'ids descending',
        );
        for (const r of mine) {
          const i = Number(r.actor.slice('a-actor-'.length));
          const { id, at, ...rest } = r;
          assert.ok(Number.isInteger(id));
          assert.ok(at.getTime() >= started - 1000 && at.getTime() <= Date.now() + 1000);
          // Entries given no project or outcome are system-wide successes (migrations/0009-audit.ts).
          const stored = { ...entries[i], project: null, outcome: 'success' };
          assert.deepEqual(rest, i === 5 ? { ...stored, detail: undefined } : stored);
        }
        assert.equal(mine.find((r) => r.actor === 'a-actor-5')?.detail, undefined, 'no detail stays undefined');

        const first = await auth.listAudit(3);
        assert.deepEqual(first, all.slice(0, 3));
        const second = await auth.listAudit(3, first.at(-1)!.id);
        assert.deepEqual(second, all.slice(3, 6));
        const rest = await auth.listAudit(100, second.at(-1)!.id);
        assert.deepEqual(rest, all.slice(6));
        assert.deepEqual(await auth.listAudit(10, Math.min(...all.map((r) => r.id))), [], 'nothing before the oldest entry');
        assert.deepEqual(await auth.listAudit(0), []);
      });

      it('queryAudit: each filter, combined, paged; every entry has its audit.recorded event', async () => {
        const base = Date.now();
        const rows = [
          { actor: 'q-ann', action: 'login', target: 'q-ann', ip: null, outcome: 'success' as const },
          { actor: 'q-ann', action: 'tag.delete', target: 'q_proj/app:1', ip: null, project: 'q_proj' },
          {
            actor: 'q-bob',
            action: 'access.denied',
            target: 'GET /v2/q_proj/app2/manifests/1',
            ip: '10.0.0.9',
            project: 'q_proj',
            outcome: 'denied' as const,
          },
          { actor: 'q-bob', action: 'login.failed', target: 'q-bob', ip: '10.0.0.9', outcome: 'failure' as const },
          { actor: 'q-ann', action: 'manifest.delete', target: 'q_proj/app@sha256:00', ip: null, project: 'q_proj' },
          { actor: 'q-ann', action: 'tag.delete', target: 'q_proj/app2:1', ip: null, project: 'q_proj' },
        ];
        for (const row of rows) await auth.audit(row);
        const ours = (q: Omit<AuditQuery, 'limit'> & { limit?: number }) => auth.queryAudit({ limit: 1000, ...q });
        const ids = async (q: Omit<AuditQuery, 'limit'> & { limit?: number }) =>
          (await ours(q)).filter((r) => r.actor.startsWith('q-')).map((r) => `${r.actor} ${r.action} ${r.target}`);
        assert.deepEqual(await ids({ actor: 'q-bob' }), [
          'q-bob login.failed q-bob',
          'q-bob access.denied GET /v2/q_proj/app2/manifests/1',
        ]);
        assert.deepEqual(await ids({ outcome: 'denied', actor: 'q-bob' }), ['q-bob access.denied GET /v2/q_proj/app2/manifests/1']);
        assert.deepEqual(await ids({ project: 'q_proj', action: 'tag.delete' }), [
          'q-ann tag.delete q_proj/app2:1',
          'q-ann tag.delete q_proj/app:1',
        ]);
        // resource: the target or below it at / : @ — and LIKE's '_' in the name matches itself only.
        assert.deepEqual(await ids({ resource: 'q_proj/app' }), [
          'q-ann manifest.delete q_proj/app@sha256:00',
          'q-ann tag.delete q_proj/app:1',
        ]);
        assert.deepEqual(await ids({ resource: 'qXproj/app' }), []);
        assert.deepEqual(await ids({ resource: 'q_proj/ap' }), []);
        assert.deepEqual(await ids({ resource: 'Q_PROJ/app' }), [], 'case-sensitive on every database');
        assert.deepEqual(await ids({ resource: 'q_proj/a*' }), [], "GLOB's wildcards match themselves only");
        const all = await ours({ actor: 'q-ann' });
        assert.equal(all.length, 4);
        assert.deepEqual(await ours({ actor: 'q-ann', from: base - 1000, to: Date.now() + 1000 }), all);
        assert.deepEqual(await ours({ actor: 'q-ann', from: Date.now() + 60_000 }), []);
        assert.deepEqual(await ours({ actor: 'q-ann', to: base - 60_000 }), []);
        const page1 = await ours({ actor: 'q-ann', limit: 3 });
        const page2 = await ours({ actor: 'q-ann', limit: 3, beforeId: page1.at(-1)!.id });
        assert.deepEqual([...page1, ...page2], all);
        // Each row's event, in the outbox with the row's id and fields.
        const outbox = deployment.stores.outbox;
        while ((await outbox.sequence(500)) === 500);
        const events = (await outbox.read(0, 100_000)).flatMap((e) =>
          e.event.type === 'audit.recorded' && e.event.actor.startsWith('q-') ? [e.event] : [],
        );
        for (const row of await ours({ resource: 'q_proj' })) {
          if (!row.actor.startsWith('q-')) continue;
          const event = events.find((e) => e.id === row.id);
          assert.ok(event, `audit.recorded for entry ${row.id}`);
          assert.deepEqual(
            [event.actor, event.action, event.target, event.project, event.outcome, event.at],
            [row.actor, row.action, row.target, row.project, row.outcome, row.at.getTime()],
          );
        }
      });
    });
  });
}
