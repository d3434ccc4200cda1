import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { DomainEvent, StoredEvent } from '../../src/core/events.js';
import { RegistryClient, makeBlob } from '../helpers/registry-client.js';
import type { TestServer } from '../helpers/server.js';
import {
  addUser,
  adminAuth,
  api,
  auditLog,
  basic,
  bearer,
  claims,
  getToken,
  token,
  useAuthServer,
  type AuditEntry,
  type TokenAnswer,
} from './support.js';

/**
 * Account changes through the admin API (and a project created by a push) become domain
 * events, appended with their audit entry in the change's own transaction: one event per
 * audit row, same actor, same order; a refused change writes neither; no event carries a
 * password, secret or hash.
 */

const AUTH_EVENTS = new Set([
  'user.created',
  'user.updated',
  'user.deleted',
  'project.created',
  'project.updated',
  'project.deleted',
  'member.set',
  'member.removed',
  'robot.created',
  'robot.deleted',
]);

type AuditRow = AuditEntry;

/** Every event in the outbox (sequenced first, as the dispatcher would). */
async function allEvents(server: TestServer): Promise<StoredEvent[]> {
  await server.stores.outbox.sequence(1e6);
  return server.stores.outbox.read(0, 1000);
}

async function lastSeq(server: TestServer): Promise<number> {
  return (await allEvents(server)).at(-1)?.seq ?? 0;
}

/** Auth events after `seq`, in order. */
async function authEventsAfter(server: TestServer, seq: number): Promise<StoredEvent[]> {
  return (await allEvents(server)).filter((e) => e.seq > seq && AUTH_EVENTS.has(e.event.type));
}

/** Audit actions that record no change (logins, refusals; test/auth/audit-gaps.test.ts): they have no event. */
const NOT_CHANGES = new Set(['login', 'login.failed', 'login.ratelimited', 'access.denied']);

/** The audit log's account changes, oldest first. */
async function changesAudited(server: TestServer): Promise<AuditRow[]> {
  return (await auditLog(server)).filter((row) => !NOT_CHANGES.has(row.action));
}

async function lastAuditId(server: TestServer): Promise<number> {
  return (await changesAudited(server)).at(-1)?.id ?? 0;
}

/** Performs an admin-API call and checks its status. */
async function call(
  server: TestServer,
  method: string,
  path: string,
  authorization: string,
  status: number,
  body?: unknown,
): Promise<unknown> {
  const res = await api(server, method, path, authorization, body);
  const text = await res.text();
  assert.equal(res.status, status, `${method} ${path}: ${res.status} ${text}`);
  return text === '' ? undefined : (JSON.parse(text) as unknown);
}

/** The audit action and target an event's change is recorded under. */
function auditOf(event: DomainEvent): { action: string; target: string } {
  switch (event.type) {
    case 'user.created':
      return { action: 'user.create', target: event.username };
    case 'user.updated':
      return {
        action: event.changes.includes('password') ? 'user.password' : 'user.grant-admin|user.revoke-admin',
        target: event.username,
      };
    case 'user.deleted':
      return { action: 'user.delete', target: event.username };
    case 'project.created':
      return { action: 'project.create|project.autocreate', target: event.project };
    case 'project.updated':
      return { action: 'project.visibility', target: event.project };
    case 'project.deleted':
      return { action: 'project.delete', target: event.project };
    case 'member.set':
      return { action: 'member.set', target: `${event.project}/${event.username}` };
    case 'member.removed':
      return { action: 'member.remove', target: `${event.project}/${event.username}` };
    case 'robot.created':
      return { action: 'robot.create', target: event.robot };
    case 'robot.deleted':
      return { action: 'robot.delete', target: event.robot };
    default:
      throw new Error(`not an account event: ${event.type}`);
  }
}

/** Each event has its audit row: same order, same actor, the matching action and target. */
function assertMatchesAudit(events: StoredEvent[], audit: AuditRow[]): void {
  assert.equal(audit.length, events.length, `one audit row per event: ${JSON.stringify(audit.map((a) => a.action))}`);
  events.forEach((stored, i) => {
    const row = audit[i]!;
    const expected = auditOf(stored.event);
    assert.ok(
      expected.action.split('|').includes(row.action),
      `event ${stored.event.type} #${i}: audit action ${row.action}, expected ${expected.action}`,
    );
    assert.equal(row.target, expected.target, `event ${stored.event.type} #${i}: audit target`);
    assert.equal(row.actor, stored.actor, `event ${stored.event.type} #${i}: the same actor in the event and the audit row`);
  });
}

describe('account changes become domain events, committed with their audit entry', () => {
  const reg = useAuthServer('token');
  const secrets: string[] = [];

  before(async () => {
    // The initial admin exists already: its user.created event has the actor 'system'.
    const initial = (await authEventsAfter(reg.server, 0)).find((e) => e.event.type === 'user.created' && e.event.username === 'admin');
    assert.ok(initial, 'the initial admin is an event too');
    assert.equal(initial.actor, 'system');
    assert.deepEqual(initial.event, { type: 'user.created', username: 'admin', admin: true });
  });

  it('users, projects, members and robots through /api/v1: exactly the expected events, in order, with the actor of each audit row', async () => {
    const seq = await lastSeq(reg.server);
    const auditId = await lastAuditId(reg.server);
    const admin = adminAuth();
    secrets.push('erin-password-1', 'erin-password-2');

    await call(reg.server, 'POST', '/users', admin, 201, { username: 'erin', password: 'erin-password-1' });
    await call(reg.server, 'PATCH', '/users/erin', admin, 204, { admin: true });
    await call(reg.server, 'PATCH', '/users/erin', admin, 204, { admin: false });
    await call(reg.server, 'PUT', '/users/erin/password', admin, 204, { password: 'erin-password-2' });
    await call(reg.server, 'POST', '/projects', admin, 201, { name: 'evt', public: false });
    await call(reg.server, 'PATCH', '/projects/evt', admin, 204, { public: true });
    await call(reg.server, 'PUT', '/projects/evt/members/erin', admin, 204, { role: 'developer' });
    await call(reg.server, 'PUT', '/projects/evt/members/erin', admin, 204, { role: 'maintainer' });
    const robot = (await call(reg.server, 'POST', '/projects/evt/robots', admin, 201, {
      name: 'ci',
      permissions: [{ project: 'evt', repository: 'app*', actions: ['pull', 'push'] }],
    })) as { name: string; secret: string };
    secrets.push(robot.secret);
    assert.equal(robot.name, 'robot$evt+ci');
    await call(reg.server, 'DELETE', `/projects/evt/robots/${encodeURIComponent(robot.name)}`, admin, 204);
    const system = (await call(reg.server, 'POST', '/robots', admin, 201, {
      name: 'sys',
      permissions: [{ project: 'evt', actions: ['pull'] }],
    })) as {
      name: string;
      secret: string;
    };
    secrets.push(system.secret);
    await call(reg.server, 'DELETE', `/robots/${encodeURIComponent(system.name)}`, admin, 204);

    // A user acting with an API token from /token (scope api): the event's actor is that user,
    // and the project they create names them as its owner.
    const erin = bearer(await token(reg.server, ['api'], basic('erin', 'erin-password-2')));
    await call(reg.server, 'POST', '/projects', erin, 201, { name: 'erins', public: false });
    await call(reg.server, 'PUT', '/projects/erins/members/admin', erin, 204, { role: 'guest' });
    await call(reg.server, 'DELETE', '/projects/erins/members/admin', erin, 204);
    await call(reg.server, 'DELETE', '/projects/erins', erin, 204);

    await call(reg.server, 'DELETE', '/projects/evt/members/erin', admin, 204);
    await call(reg.server, 'DELETE', '/projects/evt', admin, 204);
    await call(reg.server, 'DELETE', '/users/erin', admin, 204);

    const events = await authEventsAfter(reg.server, seq);
    assert.deepEqual(
      events.map((e) => [e.actor, e.event]),
      [
        ['admin', { type: 'user.created', username: 'erin', admin: false }],
        ['admin', { type: 'user.updated', username: 'erin', changes: ['admin'] }],
        ['admin', { type: 'user.updated', username: 'erin', changes: ['admin'] }],
        ['admin', { type: 'user.updated', username: 'erin', changes: ['password'] }],
        ['admin', { type: 'project.created', project: 'evt', public: false, owner: null }],
        ['admin', { type: 'project.updated', project: 'evt', public: true }],
        ['admin', { type: 'member.set', project: 'evt', username: 'erin', role: 'developer' }],
        ['admin', { type: 'member.set', project: 'evt', username: 'erin', role: 'maintainer' }],
        [
          'admin',
          {
            type: 'robot.created',
            robot: 'robot$evt+ci',
            project: 'evt',
            permissions: [{ project: 'evt', repository: 'app*', actions: ['pull', 'push'] }],
          },
        ],
        ['admin', { type: 'robot.deleted', robot: 'robot$evt+ci', project: 'evt' }],
        [
          'admin',
          {
            type: 'robot.created',
            robot: 'robot$sys',
            project: null,
            permissions: [{ project: 'evt', repository: '*', actions: ['pull'] }],
          },
        ],
        ['admin', { type: 'robot.deleted', robot: 'robot$sys', project: null }],
        ['erin', { type: 'project.created', project: 'erins', public: false, owner: 'erin' }],
        ['erin', { type: 'member.set', project: 'erins', username: 'admin', role: 'guest' }],
        ['erin', { type: 'member.removed', project: 'erins', username: 'admin' }],
        ['erin', { type: 'project.deleted', project: 'erins' }],
        ['admin', { type: 'member.removed', project: 'evt', username: 'erin' }],
        ['admin', { type: 'project.deleted', project: 'evt' }],
        ['admin', { type: 'user.deleted', username: 'erin' }],
      ],
    );
    // Account events name no repository (the outbox's repository column stays empty for them).
    assert.ok(events.every((e) => !('repository' in e.event)));

    const audit = (await changesAudited(reg.server)).filter((row) => row.id > auditId);
    assertMatchesAudit(events, audit);
    assert.deepEqual(
      audit.map((row) => row.action),
      [
        'user.create',
        'user.grant-admin',
        'user.revoke-admin',
        'user.password',
        'project.create',
        'project.visibility',
        'member.set',
        'member.set',
        'robot.create',
        'robot.delete',
        'robot.create',
        'robot.delete',
        'project.create',
        'member.set',
        'member.remove',
        'project.delete',
        'member.remove',
        'project.delete',
        'user.delete',
      ],
    );
    for (const row of audit) assert.match(row.ip ?? '', /127\.0\.0\.1/, `${row.action} ${row.target}: the client's address`);
  });

  it('a refused change (taken name, unknown user, member, project or robot) appends no event and no audit row', async () => {
    await addUser(reg.server, 'fay', 'fay-password-1');
    await call(reg.server, 'POST', '/projects', adminAuth(), 201, { name: 'taken', public: false });
    await call(reg.server, 'POST', '/projects/taken/robots', adminAuth(), 201, {
      name: 'bot',
      permissions: [{ project: 'taken', actions: ['pull'] }],
    }).then((r) => secrets.push((r as { secret: string }).secret));
    const seq = await lastSeq(reg.server);
    const auditId = await lastAuditId(reg.server);
    const admin = adminAuth();
    const fay = basic('fay', 'fay-password-1');

    await call(reg.server, 'POST', '/projects', admin, 409, { name: 'taken', public: true });
    await call(reg.server, 'POST', '/users', admin, 409, { username: 'fay', password: 'another-password-1' });
    await call(reg.server, 'POST', '/projects/taken/robots', admin, 409, {
      name: 'bot',
      permissions: [{ project: 'taken', actions: ['pull'] }],
    });
    await call(reg.server, 'PATCH', '/users/nobody', admin, 404, { admin: true });
    await call(reg.server, 'PUT', '/users/nobody/password', admin, 404, { password: 'nobody-password-1' });
    await call(reg.server, 'DELETE', '/users/nobody', admin, 404);
    await call(reg.server, 'PATCH', '/projects/nope', admin, 404, { public: true });
    await call(reg.server, 'DELETE', '/projects/nope', admin, 404);
    await call(reg.server, 'PUT', '/projects/taken/members/nobody', admin, 404, { role: 'developer' });
    await call(reg.server, 'PUT', '/projects/taken/members/fay', admin, 400, { role: 'overlord' });
    await call(reg.server, 'DELETE', '/projects/taken/members/fay', admin, 404);
    await call(reg.server, 'DELETE', `/robots/${encodeURIComponent('robot$ghost')}`, admin, 404);
    await call(reg.server, 'POST', '/robots', admin, 400, { name: 'bad', permissions: [] });
    // Not allowed at all: a user managing a project they are no member of, or deleting users.
    await call(reg.server, 'PATCH', '/projects/taken', fay, 404, { public: true });
    await call(reg.server, 'DELETE', '/users/admin', fay, 403);

    assert.deepEqual(await authEventsAfter(reg.server, seq), [], 'no event');
    assert.deepEqual(
      (await changesAudited(reg.server)).filter((row) => row.id > auditId),
      [],
      'no audit row',
    );
  });

  it('a project created by a push (autocreate) is one project.created event, audited as project.autocreate by the pusher', async () => {
    await addUser(reg.server, 'gus', 'gus-password-1');
    const seq = await lastSeq(reg.server);
    const auditId = await lastAuditId(reg.server);
    const res = await getToken(reg.server, ['repository:gusproj/app:pull,push'], basic('gus', 'gus-password-1'));
    assert.equal(res.status, 200);
    const jwt = ((await res.json()) as TokenAnswer).token;
    assert.deepEqual(claims(jwt).access[0]!.actions.sort(), ['pull', 'push']);
    assert.deepEqual(await authEventsAfter(reg.server, seq), [], 'the token request alone creates nothing');
    // The project is created by the first successful write, in its transaction.
    assert.equal((await new RegistryClient(reg.url, { authorization: bearer(jwt) }).pushBlob('gusproj/app', makeBlob(16))).status, 201);

    const events = await authEventsAfter(reg.server, seq);
    assert.deepEqual(
      events.map((e) => [e.actor, e.event]),
      [['gus', { type: 'project.created', project: 'gusproj', public: false, owner: 'gus' }]],
    );
    const audit = (await changesAudited(reg.server)).filter((row) => row.id > auditId);
    assertMatchesAudit(events, audit);
    assert.equal(audit[0]!.action, 'project.autocreate');
    assert.deepEqual(audit[0]!.detail, { owner: 'gus' });
  });

  it('the change, its event and its audit row commit together: an audit write that fails takes the change and the event with it', async () => {
    const seq = await lastSeq(reg.server);
    const auditId = await lastAuditId(reg.server);
    const store = reg.server.stores.auth;
    // A BigInt detail cannot be serialised: the audit insert throws after the row and the event were written.
    const failingAudit = { name: 'test', ip: null, audit: { detail: 1n } };
    await assert.rejects(store.createUser({ username: 'half', passwordHash: 'not-a-hash', admin: false }, failingAudit));
    assert.equal(await store.getUser('half'), null, 'the user row was rolled back');
    await assert.rejects(store.createProject({ name: 'halfproj', public: false, createdBy: 'test' }, undefined, failingAudit));
    assert.equal(await store.getProject('halfproj'), null, 'the project row was rolled back');
    assert.equal(await store.setProjectVisibility('taken', true, failingAudit).catch(() => 'failed'), 'failed');
    assert.equal((await store.getProject('taken'))!.public, false, 'the visibility change was rolled back');
    assert.deepEqual(await authEventsAfter(reg.server, seq), [], 'no event');
    assert.deepEqual(
      (await changesAudited(reg.server)).filter((row) => row.id > auditId),
      [],
      'no audit row',
    );

    // Without an actor (older callers) the change still appends its event, actor null, and writes no audit row.
    assert.equal(await store.createUser({ username: 'quiet', passwordHash: 'not-a-hash', admin: false }), true);
    assert.deepEqual(
      (await authEventsAfter(reg.server, seq)).map((e) => [e.actor, e.event]),
      [[null, { type: 'user.created', username: 'quiet', admin: false }]],
    );
    assert.deepEqual(
      (await changesAudited(reg.server)).filter((row) => row.id > auditId),
      [],
    );
    assert.equal(await store.deleteUser('quiet', { name: 'test', ip: null }), true);
  });

  it('no event carries a password, a robot secret or a hash', async () => {
    assert.ok(secrets.length >= 5, 'the other tests ran first and collected their secrets');
    const serialized = JSON.stringify(await allEvents(reg.server));
    for (const secret of secrets) assert.ok(!serialized.includes(secret), 'a password or robot secret in the outbox');
    assert.doesNotMatch(serialized, /\$2[aby]\$/, 'a bcrypt hash in the outbox');
    assert.doesNotMatch(serialized, /"(password|passwordHash|secret|secretHash|hash)"\s*:/i, 'a credential field in the outbox');
    const audit = JSON.stringify(await changesAudited(reg.server));
    for (const secret of secrets) assert.ok(!audit.includes(secret), 'a password or robot secret in the audit log');
  });
});
