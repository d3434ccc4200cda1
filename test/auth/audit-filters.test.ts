import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { makeImage, RegistryClient } from '../helpers/registry-client.js';
import { useServer } from '../helpers/use-server.js';
import { addMember, addProject, addUser, adminAuth, api, authConfig, basic, type AuditEntry } from './support.js';

/** A row of the audit API with the filter columns of migrations/0009-audit.ts. */
interface FilteredEntry extends AuditEntry {
  at: string;
  project: string | null;
  outcome: 'success' | 'failure' | 'denied';
}

const ALICE = basic('alice', 'alice-secret-1');
const CAROL = basic('carol', 'carol-secret-1');

async function audit(url: string, query: string, authorization = adminAuth()): Promise<FilteredEntry[]> {
  const res = await api({ url }, 'GET', `/audit${query}`, authorization);
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as FilteredEntry[];
}

async function errorOf(res: Response): Promise<{ status: number; code: string | undefined }> {
  const body = (await res.json()) as { errors?: { code: string }[] };
  return { status: res.status, code: body.errors?.[0]?.code };
}

describe('audit query filters', () => {
  const reg = useServer(authConfig('basic', {}, { events: { interval: '100ms' } }));
  let all: FilteredEntry[] = [];

  // alice administers alpha and pushes there; bob administers beta; carol, a guest of alpha, is refused a push;
  // a wrong password for alice; alice deletes her tag (audited by the outbox consumer).
  before(async () => {
    const server = reg.server;
    await addUser(server, 'alice', 'alice-secret-1');
    await addUser(server, 'bob', 'bob-secret-1');
    await addUser(server, 'carol', 'carol-secret-1');
    await addProject(server, 'alpha');
    await addProject(server, 'beta');
    await addMember(server, 'alpha', 'alice', 'project-admin');
    await addMember(server, 'beta', 'bob', 'project-admin');
    await addMember(server, 'alpha', 'carol', 'guest');
    const image = makeImage({ layers: 1, layerSize: 64 });
    await new RegistryClient(server.url, { authorization: ALICE }).pushImage('alpha/app', '1', image);
    const refused = await new RegistryClient(server.url, { authorization: CAROL }).pushBlob('alpha/app', image.layers[0]!);
    assert.equal(refused.status, 403);
    const wrong = await fetch(`${server.url}/v2/`, { headers: { authorization: basic('alice', 'not-her-password') } });
    assert.equal(wrong.status, 401);
    const deleted = await new RegistryClient(server.url, { authorization: ALICE }).fetch('/v2/alpha/app/manifests/1', { method: 'DELETE' });
    assert.equal(deleted.status, 202);
    const deadline = Date.now() + 10_000;
    while (!(await audit(server.url, '?action=tag.delete')).length) {
      assert.ok(Date.now() < deadline, 'the tag delete reached the audit log within 10 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    all = await audit(server.url, '?limit=1000');
  });

  it('every entry has a project (or null) and an outcome; ids descend', () => {
    assert.ok(all.length >= 10, `a dozen entries, got ${all.length}`);
    for (const e of all) assert.ok(['success', 'failure', 'denied'].includes(e.outcome), JSON.stringify(e));
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1]!.id > all[i]!.id);
  });

  it('actor: only that actor, including their delete through /v2', async () => {
    const alice = await audit(reg.url, '?actor=alice');
    assert.ok(alice.length >= 2);
    assert.ok(alice.every((e) => e.actor === 'alice'));
    assert.ok(alice.some((e) => e.action === 'login' && e.outcome === 'success'));
    assert.ok(alice.some((e) => e.action === 'tag.delete' && e.target === 'alpha/app:1' && e.project === 'alpha'));
  });

  it('action and outcome: a failed login is a failure, a refused push is denied', async () => {
    const failed = await audit(reg.url, '?action=login.failed');
    assert.deepEqual(
      failed.map((e) => [e.actor, e.outcome]),
      [['alice', 'failure']],
    );
    assert.deepEqual(await audit(reg.url, '?outcome=failure'), failed);
    const denied = await audit(reg.url, '?outcome=denied');
    assert.equal(denied.length, 1);
    assert.equal(denied[0]!.actor, 'carol');
    assert.equal(denied[0]!.action, 'access.denied');
    assert.equal(denied[0]!.project, 'alpha');
    const successes = await audit(reg.url, '?outcome=success&limit=1000');
    assert.equal(successes.length + failed.length + denied.length, all.length);
  });

  it('project: that project only, account changes of users are not in any project', async () => {
    const alpha = await audit(reg.url, '?project=alpha');
    assert.ok(alpha.every((e) => e.project === 'alpha'));
    const actions = new Set(alpha.map((e) => e.action));
    for (const action of ['project.create', 'member.set', 'access.denied', 'tag.delete'])
      assert.ok(actions.has(action), `alpha has ${action}`);
    const beta = await audit(reg.url, '?project=beta');
    assert.deepEqual(beta.map((e) => e.action).sort(), ['member.set', 'project.create']);
    assert.ok(all.filter((e) => e.action === 'user.create').every((e) => e.project === null));
  });

  it('resource: the target or anything under it, not a longer name', async () => {
    const app = await audit(reg.url, '?resource=alpha/app');
    assert.deepEqual(
      app.map((e) => e.target),
      ['alpha/app:1'],
    );
    assert.deepEqual(await audit(reg.url, '?resource=alpha/ap'), []);
    assert.deepEqual(
      (await audit(reg.url, '?resource=alpha')).map((e) => e.target).sort(),
      all
        .filter((e) => e.target === 'alpha' || e.target.startsWith('alpha/'))
        .map((e) => e.target)
        .sort(),
    );
    // LIKE wildcards in the value match themselves only.
    assert.deepEqual(await audit(reg.url, '?resource=alpha%25'), []);
    assert.deepEqual(await audit(reg.url, '?resource=_lpha'), []);
  });

  it('time range: from is inclusive, to exclusive (RFC 3339)', async () => {
    const middle = all[Math.floor(all.length / 2)]!;
    const from = await audit(reg.url, `?limit=1000&from=${encodeURIComponent(middle.at)}`);
    const to = await audit(reg.url, `?limit=1000&to=${encodeURIComponent(middle.at)}`);
    assert.ok(from.some((e) => e.id === middle.id));
    assert.ok(from.every((e) => e.at >= middle.at));
    assert.ok(to.every((e) => e.at < middle.at));
    assert.equal(from.length + to.length, all.length);
    const offset = new Date(Date.parse(middle.at)).toISOString().replace('Z', '+00:00');
    assert.equal((await audit(reg.url, `?limit=1000&from=${encodeURIComponent(offset)}`)).length, from.length, 'an offset is accepted');
  });

  it('pagination with filters: pages follow Link rel="next", no entry twice or missing', async () => {
    const seen: FilteredEntry[] = [];
    let next: string | null = '/api/v1/audit?project=alpha&limit=2';
    while (next) {
      const res: Response = await fetch(`${reg.url}${next}`, { headers: { authorization: adminAuth() } });
      assert.equal(res.status, 200);
      const page = (await res.json()) as FilteredEntry[];
      assert.ok(page.length <= 2);
      seen.push(...page);
      next = /<([^>]+)>; rel="next"/.exec(res.headers.get('link') ?? '')?.[1] ?? null;
      if (next) assert.match(next, /project=alpha/);
    }
    assert.deepEqual(seen, await audit(reg.url, '?project=alpha&limit=1000'));
  });

  it('bad filters answer 400 naming the problem', async () => {
    for (const [query, code] of [
      ['?outcome=maybe', 'INVALID_ARGUMENT'],
      ['?from=yesterday', 'INVALID_ARGUMENT'],
      ['?to=2026-13-01T00:00:00Z', 'INVALID_ARGUMENT'],
      ['?actor=', 'INVALID_ARGUMENT'],
      ['?colour=blue', 'INVALID_ARGUMENT'],
      ['?limit=0', 'PAGINATION_NUMBER_INVALID'],
      ['?before=x', 'PAGINATION_NUMBER_INVALID'],
    ]) {
      assert.deepEqual(await errorOf(await api(reg, 'GET', `/audit${query}`, adminAuth())), { status: 400, code }, query);
    }
  });

  it("a project admin reads their project's entries only", async () => {
    const res = await api(reg, 'GET', '/projects/alpha/audit?limit=1000', ALICE);
    assert.equal(res.status, 200);
    const entries = (await res.json()) as FilteredEntry[];
    assert.deepEqual(entries, await audit(reg.url, '?project=alpha&limit=1000'));
    const denied = await api(reg, 'GET', '/projects/alpha/audit?outcome=denied', ALICE);
    assert.deepEqual(
      ((await denied.json()) as FilteredEntry[]).map((e) => e.actor),
      ['carol'],
    );
  });

  it("another tenant's project is 404 to a project admin; the global log is 403; a guest gets 403; no credentials 401", async () => {
    assert.deepEqual(await errorOf(await api(reg, 'GET', '/projects/beta/audit', ALICE)), { status: 404, code: 'NOT_FOUND' });
    assert.deepEqual(await errorOf(await api(reg, 'GET', '/projects/nonexistent/audit', ALICE)), { status: 404, code: 'NOT_FOUND' });
    assert.deepEqual(await errorOf(await api(reg, 'GET', '/audit?project=beta', ALICE)), { status: 403, code: 'DENIED' });
    assert.deepEqual(await errorOf(await api(reg, 'GET', '/audit', ALICE)), { status: 403, code: 'DENIED' });
    assert.deepEqual(await errorOf(await api(reg, 'GET', '/projects/alpha/audit', CAROL)), { status: 403, code: 'DENIED' });
    const anonymous = await fetch(`${reg.url}/api/v1/projects/alpha/audit`);
    assert.equal(anonymous.status, 401);
    // The project route takes no project filter: no way to name another tenant's project through it.
    assert.deepEqual(await errorOf(await api(reg, 'GET', '/projects/alpha/audit?project=beta', ALICE)), {
      status: 400,
      code: 'INVALID_ARGUMENT',
    });
  });

  it('a system admin reads any project through the project route', async () => {
    const res = await api(reg, 'GET', '/projects/beta/audit', adminAuth());
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as FilteredEntry[]).map((e) => e.action).sort(), ['member.set', 'project.create']);
  });

  it('openapi.json documents the filters', async () => {
    const doc = (await (await fetch(`${reg.url}/api/v1/openapi.json`)).json()) as {
      paths: Record<string, { get: { parameters: { name: string; in: string }[] } }>;
    };
    const names = (path: string) =>
      doc.paths[path]!.get.parameters.filter((p) => p.in === 'query')
        .map((p) => p.name)
        .sort();
    assert.deepEqual(names('/api/v1/audit'), ['action', 'actor', 'before', 'from', 'limit', 'outcome', 'project', 'resource', 'to']);
    assert.deepEqual(names('/api/v1/projects/{project}/audit'), [
      'action',
      'actor',
      'before',
      'from',
      'limit',
      'outcome',
      'resource',
      'to',
    ]);
  });
});
