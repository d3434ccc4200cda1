import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { RegistryClient, makeImage } from '../helpers/registry-client.js';
import { startBerthProcess, tempDir, type BerthProcess } from '../helpers/server.js';
import {
  ADMIN_PASSWORD,
  addMember,
  addProject,
  addUser,
  adminAuth,
  api,
  auditLog,
  basic,
  bearer,
  token,
  useAuthServer,
  type AuditEntry,
} from './support.js';

type Audit = AuditEntry;

/** Issue 12: logins, failed and rate-limited logins, refusals and /v2 deletes reach the audit log. */
describe('audit log: logins, refusals and /v2 deletes', () => {
  const ip = '203.0.113.50';
  const reg = useAuthServer(
    'token',
    { ratelimit: { failures: 3, perip: 50, window: '1m', backoff: '1m' } },
    { http: { trustproxy: true }, events: { interval: '100ms' } },
  );
  before(async () => {
    await addUser(reg.server, 'gina', 'gina-password');
    await addProject(reg.server, 'team');
    await addMember(reg.server, 'team', 'gina', 'guest');
  });

  async function auditSince(id: number): Promise<Audit[]> {
    return (await auditLog(reg.server)).filter((e) => e.id > id);
  }
  async function lastId(): Promise<number> {
    return ((await (await api(reg.server, 'GET', '/audit?limit=1', adminAuth())).json()) as Audit[])[0]?.id ?? 0;
  }
  const tokenAt = (authorization: string, at = ip) =>
    fetch(`${reg.url}/token?service=berth`, { headers: { authorization, 'x-forwarded-for': at } });

  it('a login records who, from where and how; a failed login records the attempted username but never the password', async () => {
    const start = await lastId();
    assert.equal((await tokenAt(basic('gina', 'gina-password'))).status, 200);
    assert.equal((await tokenAt(basic('gina', 'Wr0ng-Secret-Guess'))).status, 401);
    assert.equal((await tokenAt(basic('no-such-user', 'An0ther-Secret-Guess'))).status, 401);
    const entries = await auditSince(start);
    const mine = entries.filter((e) => e.ip === ip).map((e) => [e.action, e.actor, e.target, e.detail]);
    assert.deepEqual(mine, [
      ['login', 'gina', 'gina', { via: 'token' }],
      ['login.failed', 'gina', 'gina', { via: 'token' }],
      ['login.failed', 'no-such-user', 'no-such-user', { via: 'token' }],
    ]);
    const all = JSON.stringify(await (await api(reg.server, 'GET', '/audit?limit=1000', adminAuth())).json());
    assert.ok(
      !all.includes('Wr0ng-Secret-Guess') && !all.includes('An0ther-Secret-Guess') && !all.includes('gina-password'),
      'no password in the audit log',
    );
  });

  it('rate-limited attempts are recorded once per block (not once per attempt)', async () => {
    const at = '203.0.113.51';
    const start = await lastId();
    for (let i = 0; i < 3; i++) assert.equal((await tokenAt(basic('gina', `bad-${i}-password`), at)).status, 401);
    for (let i = 0; i < 4; i++) assert.equal((await tokenAt(basic('gina', 'gina-password'), at)).status, 429);
    const entries = (await auditSince(start)).filter((e) => e.ip === at);
    assert.deepEqual(
      entries.map((e) => e.action),
      ['login.failed', 'login.failed', 'login.failed', 'login.ratelimited'],
    );
    assert.equal(entries[3]!.actor, 'gina');
    assert.ok(Number(entries[3]!.detail!.retryAfter) > 0);
  });

  it('denied authorizations (403) on /api/v1 and /v2 are recorded with the caller and the request', async () => {
    const start = await lastId();
    const gina = basic('gina', 'gina-password');
    const users = await fetch(`${reg.url}/api/v1/users`, { headers: { authorization: gina, 'x-forwarded-for': ip } });
    assert.equal(users.status, 403);
    // A guest's token for team/app holds pull only; a DELETE needs delete, which gina can never get.
    const jwt = await token(reg.server, ['repository:team/app:pull,delete'], gina);
    const del = await fetch(`${reg.url}/v2/team/app/manifests/sha256:${'0'.repeat(64)}`, {
      method: 'DELETE',
      headers: { authorization: bearer(jwt), 'x-forwarded-for': ip },
    });
    assert.equal(del.status, 403);
    const denied = (await auditSince(start)).filter((e) => e.action === 'access.denied').map((e) => [e.actor, e.target, e.ip]);
    assert.deepEqual(denied, [
      ['gina', 'GET /api/v1/users', ip],
      ['gina', `DELETE /v2/team/app/manifests/sha256:${'0'.repeat(64)}`, ip],
    ]);
  });

  it('a login still succeeds when its audit entry cannot be written (e.g. a full disk): pulls must keep working', async () => {
    await addUser(reg.server, 'hank', 'hank-password'); // not in the verified-login cache: its login is audited
    const store = reg.server.stores.auth;
    let attempts = 0;
    store.audit = async () => {
      attempts++;
      throw new Error('SQLITE_FULL: database or disk is full');
    };
    try {
      assert.equal((await tokenAt(basic('hank', 'hank-password'), '203.0.113.60')).status, 200);
      assert.equal((await tokenAt(basic('hank', 'not-hank-password'), '203.0.113.60')).status, 401, 'a failed login is still a 401');
    } finally {
      delete (store as { audit?: unknown }).audit;
    }
    assert.equal(attempts, 2, 'both entries were attempted');
  });

  it('/v2 deletes of a tag, a manifest and a blob are recorded with their actor (through the outbox)', async () => {
    const start = await lastId();
    const admin = new RegistryClient(reg.url, {
      authorization: bearer(await token(reg.server, ['repository:team/app:pull,push,delete'], adminAuth())),
    });
    const image = makeImage();
    await admin.pushImage('team/app', 'v1', image);
    await admin.pushImage('team/app', 'v2', image);
    const v = (path: string) => admin.fetch(path, { method: 'DELETE' });
    assert.equal((await v('/v2/team/app/manifests/v2')).status, 202);
    assert.equal((await v(`/v2/team/app/manifests/${image.manifest.digest}`)).status, 202);
    assert.equal((await v(`/v2/team/app/blobs/${image.config.digest}`)).status, 202);
    const wanted = [
      ['admin', 'tag.delete', 'team/app:v2'],
      ['admin', 'manifest.delete', `team/app@${image.manifest.digest}`],
      ['admin', 'blob.delete', `team/app@${image.config.digest}`],
    ];
    let got: string[][] = [];
    for (let i = 0; i < 100 && got.length < wanted.length; i++) {
      got = (await auditSince(start)).filter((e) => e.action.endsWith('.delete')).map((e) => [e.actor, e.action, e.target]);
      if (got.length < wanted.length) await sleep(100);
    }
    assert.deepEqual(got, wanted);
  });
});

/** Issue 12: request-log lines carry the client address (http.trustproxy honoured) and the identity. */
describe('request log: client IP and identity', () => {
  let berth: BerthProcess | undefined;
  let dataDir = '';
  before(async () => {
    dataDir = tempDir();
    berth = await startBerthProcess({
      BERTH_DATA_DIR: dataDir,
      BERTH_AUTH_MODE: 'token',
      BERTH_AUTH_ADMIN_PASSWORD: ADMIN_PASSWORD,
      BERTH_HTTP_TRUSTPROXY: 'true',
    });
  });
  after(async () => {
    await berth?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  function logged(marker: string): Record<string, unknown>[] {
    return berth!
      .output()
      .split('\n')
      .filter((line) => line.includes('"msg":"request"') && line.includes(marker))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }
  async function lineFor(marker: string): Promise<Record<string, unknown>> {
    for (let i = 0; i < 50; i++) {
      const [line] = logged(marker);
      if (line) return line;
      await sleep(50);
    }
    throw new Error(`no request line for ${marker}`);
  }

  it('each line names the client IP and, once authenticated, the user (/token, /v2, /api/v1); anonymous and refused requests name no one', async () => {
    const admin = basic('admin', ADMIN_PASSWORD);
    await fetch(`${berth!.url}/token?service=berth&marker=tok`, { headers: { authorization: admin, 'x-forwarded-for': '192.0.2.10' } });
    const jwt = await token(berth!, [], admin);
    await fetch(`${berth!.url}/v2/?marker=v2`, { headers: { authorization: bearer(jwt), 'x-forwarded-for': '192.0.2.11' } });
    await fetch(`${berth!.url}/api/v1/me?marker=api`, { headers: { authorization: admin, 'x-forwarded-for': '192.0.2.12' } });
    await fetch(`${berth!.url}/v2/?marker=anon`, { headers: { 'x-forwarded-for': '192.0.2.13' } });
    await fetch(`${berth!.url}/api/v1/me?marker=bad`, {
      headers: { authorization: basic('admin', 'not-the-password'), 'x-forwarded-for': '192.0.2.14' },
    });

    const tok = await lineFor('marker=tok');
    assert.equal(tok.ip, '192.0.2.10');
    assert.equal(tok.user, 'admin');
    assert.equal(tok.status, 200);
    const v2 = await lineFor('marker=v2');
    assert.deepEqual([v2.ip, v2.user, v2.status], ['192.0.2.11', 'admin', 200]);
    const apiLine = await lineFor('marker=api');
    assert.deepEqual([apiLine.ip, apiLine.user, apiLine.status], ['192.0.2.12', 'admin', 200]);
    const anon = await lineFor('marker=anon');
    assert.deepEqual([anon.ip, anon.user, anon.status], ['192.0.2.13', undefined, 401]);
    const bad = await lineFor('marker=bad');
    assert.deepEqual([bad.ip, bad.user, bad.status], ['192.0.2.14', undefined, 401]);
    assert.ok(!berth!.output().includes('not-the-password'), 'no password in the log');
  });
});
