import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { api, auditLog, useAuthServer } from '../auth/support.js';
import { refusal, seedTeam, USERS } from '../policies/tags-support.js';

/**
 * The vulnerability-policy admin API over HTTP: defaults, who may read and change it (members
 * read, project admins change, another tenant's admin gets 404, anonymous 401), bad input in the
 * spec's error format, the allowlist normalised, changes audited, the endpoints in openapi.json.
 */
describe('vulnerability policy API', () => {
  const reg = useAuthServer('basic', {}, {}, { setup: seedTeam });
  const path = '/projects/team/vulnerability-policy';

  it('a project without a policy reads as mode off with the defaults', async () => {
    const res = await api(reg.server, 'GET', path, USERS.guest);
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, unknown>;
    assert.deepEqual(body, {
      project: 'team',
      mode: 'off',
      severity: 'critical',
      allowlist: [],
      unscanned: 'allow',
      graceSeconds: 0,
      inheritIndex: true,
      updatedBy: null,
      updatedAt: null,
    });
  });

  it('a project admin sets it (defaults fill what is left out, the allowlist normalised); members read it; the change is audited', async () => {
    const put = await api(reg.server, 'PUT', path, USERS.owner, {
      mode: 'enforce',
      severity: 'high',
      allowlist: [' cve-2099-0001', 'GHSA-aaaa-bbbb-0001', 'CVE-2099-0001'],
      unscanned: 'grace',
      graceSeconds: 86400,
    });
    assert.equal(put.status, 200, await put.clone().text());
    const read = (await (await api(reg.server, 'GET', path, USERS.guest)).json()) as Record<string, unknown>;
    assert.deepEqual(
      { ...read, updatedAt: typeof read.updatedAt },
      {
        project: 'team',
        mode: 'enforce',
        severity: 'high',
        allowlist: ['CVE-2099-0001', 'GHSA-AAAA-BBBB-0001'],
        unscanned: 'grace',
        graceSeconds: 86400,
        inheritIndex: true,
        updatedBy: 'owner',
        updatedAt: 'string',
      },
    );
    const second = await api(reg.server, 'PUT', path, USERS.owner, { mode: 'audit' });
    assert.deepEqual(
      ((await second.json()) as { severity: string; allowlist: string[]; unscanned: string }).severity,
      'critical',
      'a PUT replaces the policy',
    );
    const entries = (await auditLog(reg.server)).filter((e) => e.target === 'team/vulnerability-policy');
    assert.deepEqual(
      entries.map((e) => [e.action, e.actor]),
      [
        ['vulnerability-policy.update', 'owner'],
        ['vulnerability-policy.update', 'owner'],
      ],
    );
    assert.deepEqual(entries[0]!.detail?.allowlist, ['CVE-2099-0001', 'GHSA-AAAA-BBBB-0001']);
  });

  it('refuses bad input with 400 in the spec error format', async () => {
    const bad = async (body: unknown, message: RegExp) => {
      const error = await refusal(await api(reg.server, 'PUT', path, USERS.owner, body));
      assert.equal(error.status, 400, error.message);
      assert.match(error.message, message);
    };
    await bad({ mode: 'strict' }, /mode/);
    await bad({ mode: 'enforce', severity: 'severe' }, /severity/);
    await bad({ mode: 'enforce', severity: 'High' }, /severity/);
    await bad({ mode: 'enforce', allowlist: ['not an id'] }, /allowlist/);
    await bad({ mode: 'enforce', allowlist: 'CVE-2099-0001' }, /allowlist/);
    await bad({ mode: 'enforce', unscanned: 'maybe' }, /unscanned/);
    await bad({ mode: 'enforce', unscanned: 'grace' }, /graceSeconds/);
    await bad({ mode: 'enforce', unscanned: 'grace', graceSeconds: -5 }, /graceSeconds/);
    await bad({ mode: 'enforce', graceSeconds: 1.5 }, /graceSeconds/);
    await bad({ mode: 'enforce', extra: 1 }, /invalid request body/);
    await bad({}, /mode/);
    const raw = await fetch(`${reg.url}/api/v1${path}`, {
      method: 'PUT',
      headers: { authorization: USERS.owner, 'content-type': 'application/json' },
      body: '{"mode":',
    });
    assert.equal(raw.status, 400);
    assert.ok(((await raw.json()) as { errors: { code: string }[] }).errors[0]!.code);
    const unchanged = (await (await api(reg.server, 'GET', path, USERS.owner)).json()) as { mode: string };
    assert.equal(unchanged.mode, 'audit', 'nothing was stored');
  });

  it("who may: anonymous 401; a developer or guest may read, not change (403); another tenant's admin sees nothing (404); an unknown project 404", async () => {
    assert.equal((await fetch(`${reg.url}/api/v1${path}`)).status, 401);
    assert.equal(
      (await fetch(`${reg.url}/api/v1${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"mode":"off"}' }))
        .status,
      401,
    );
    for (const who of [USERS.dev, USERS.guest]) {
      assert.equal((await api(reg.server, 'GET', path, who)).status, 200);
      const error = await refusal(await api(reg.server, 'PUT', path, who, { mode: 'off' }));
      assert.equal(error.status, 403);
      assert.equal(error.code, 'DENIED');
    }
    for (const method of ['GET', 'PUT']) {
      const error = await refusal(await api(reg.server, method, path, USERS.outsider, method === 'PUT' ? { mode: 'off' } : undefined));
      assert.equal(error.status, 404, `${method} by another project's admin`);
    }
    assert.equal(
      (await api(reg.server, 'PUT', '/projects/other/vulnerability-policy', USERS.outsider, { mode: 'audit' })).status,
      200,
      'their own project',
    );
    assert.equal((await api(reg.server, 'GET', '/projects/nosuch/vulnerability-policy', USERS.owner)).status, 404);
    const mode = ((await (await api(reg.server, 'GET', path, USERS.owner)).json()) as { mode: string }).mode;
    assert.equal(mode, 'audit', 'no refused change was stored');
  });

  it('the endpoints are in openapi.json with their access', async () => {
    const doc = (await (await fetch(`${reg.url}/api/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { 'x-berth-needs': string; requestBody?: unknown }>>;
    };
    assert.equal(doc.paths['/api/v1/projects/{project}/vulnerability-policy']?.get?.['x-berth-needs'], 'read-project');
    assert.equal(doc.paths['/api/v1/projects/{project}/vulnerability-policy']?.put?.['x-berth-needs'], 'manage-project');
    assert.match(JSON.stringify(doc.paths['/api/v1/projects/{project}/vulnerability-policy']?.put?.requestBody), /graceSeconds/);
  });
});
