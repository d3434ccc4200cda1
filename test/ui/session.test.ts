import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { addMember, addProject, addUser, adminAuth, api, useAuthServer } from '../auth/support.js';
import { signIn, signInRaw, ui } from './support.js';

interface SessionBody {
  username: string;
  admin: boolean;
  csrfToken: string;
  expiresAt: string;
}

describe('web UI sessions /api/v1/session', () => {
  const reg = useAuthServer('token', { ratelimit: { failures: 3, backoff: '30s' } });
  before(async () => {
    await addUser(reg.server, 'sam', 'sam-password');
    await addUser(reg.server, 'gone', 'gone-password');
    await addProject(reg.server, 'team');
    await addMember(reg.server, 'team', 'sam', 'developer');
  });

  it('signs in with a password: 200 {username, admin, csrfToken, expiresAt} and an HttpOnly SameSite=Strict cookie on /', async () => {
    const res = await signInRaw(reg.server, 'sam', 'sam-password');
    assert.equal(res.status, 200);
    const body = (await res.json()) as SessionBody;
    assert.equal(body.username, 'sam');
    assert.equal(body.admin, false);
    assert.match(body.csrfToken, /^[A-Za-z0-9_-]{43}$/);
    const expires = Date.parse(body.expiresAt) - Date.now();
    assert.ok(expires > 60 * 60_000 && expires <= 2 * 60 * 60_000 + 5_000, `expires in ${expires} ms (idle 2h)`);
    const cookie = res.headers.get('set-cookie')!;
    assert.match(cookie, /^berth_session=[A-Za-z0-9_-]{43};/);
    assert.match(cookie, /; HttpOnly/);
    assert.match(cookie, /; SameSite=Strict/);
    assert.match(cookie, /; Path=\//);
    assert.match(cookie, /; Max-Age=43200/);
    assert.doesNotMatch(cookie, /Secure/, 'plain http without an https http.host: no Secure');
    assert.equal(res.headers.get('www-authenticate'), null);
  });

  it('the cookie authenticates /api/v1 as that user: GET /session, /me with projects and roles', async () => {
    const browser = await signIn(reg.server, 'sam', 'sam-password');
    const session = await ui(reg.server, browser, 'GET', '/session', undefined, false);
    assert.equal(session.status, 200);
    assert.equal(((await session.json()) as SessionBody).csrfToken, browser.csrfToken);
    const me = await ui(reg.server, browser, 'GET', '/me', undefined, false);
    assert.equal(me.status, 200);
    const body = (await me.json()) as { username: string; admin: boolean; projects: { name: string; role: string }[] };
    assert.equal(body.username, 'sam');
    assert.equal(body.admin, false);
    assert.deepEqual(body.projects, [{ name: 'team', role: 'developer' }]);
    // Admin-only routes stay admin-only for a user's session.
    assert.equal((await ui(reg.server, browser, 'GET', '/users', undefined, false)).status, 403);
  });

  it('bad credentials: 401 UNAUTHORIZED without a browser challenge; no cookie', async () => {
    const res = await signInRaw(reg.server, 'sam', 'wrong-password');
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code, 'UNAUTHORIZED');
    assert.equal(res.headers.get('set-cookie'), null);
    assert.equal(res.headers.get('www-authenticate'), null);
    assert.equal((await signInRaw(reg.server, 'nobody', 'whatever-pw')).status, 401);
  });

  it('bad bodies: 400 with the JSON error format', async () => {
    const res = await fetch(`${reg.url}/api/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"username":"sam"}',
    });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { errors: { message: string }[] }).errors[0]!.message, /password/);
  });

  it('robot accounts are refused (403), even with their right secret', async () => {
    const created = await api(reg.server, 'POST', '/robots', adminAuth(), {
      name: 'ci',
      permissions: [{ project: 'team', repository: '*', actions: ['pull'] }],
    });
    assert.equal(created.status, 201);
    const robot = (await created.json()) as { name: string; secret: string };
    const res = await signInRaw(reg.server, robot.name, robot.secret);
    assert.equal(res.status, 403);
    assert.match(((await res.json()) as { errors: { message: string }[] }).errors[0]!.message, /robot/);
    assert.equal(res.headers.get('set-cookie'), null);
  });

  it('the login throttle applies: after 3 failures even the right password gets 429', async () => {
    await addUser(reg.server, 'throttled', 'throttled-password');
    for (let i = 0; i < 3; i++) assert.equal((await signInRaw(reg.server, 'throttled', `wrong-${i}`)).status, 401);
    const res = await signInRaw(reg.server, 'throttled', 'throttled-password');
    assert.equal(res.status, 429);
    assert.ok(Number(res.headers.get('retry-after')) >= 1);
  });

  it('mutating calls by cookie need the CSRF header: missing or wrong -> 403 DENIED naming it; right -> done', async () => {
    const browser = await signIn(reg.server, 'admin', 'admin-secret-1');
    const missing = await ui(reg.server, browser, 'POST', '/projects', { name: 'csrf-a' }, false);
    assert.equal(missing.status, 403);
    const missingBody = (await missing.json()) as { errors: { code: string; message: string }[] };
    assert.equal(missingBody.errors[0]!.code, 'DENIED');
    assert.match(missingBody.errors[0]!.message, /missing CSRF token/);
    const wrong = await ui(reg.server, browser, 'POST', '/projects', { name: 'csrf-a' }, 'x'.repeat(43));
    assert.equal(wrong.status, 403);
    assert.match(((await wrong.json()) as { errors: { message: string }[] }).errors[0]!.message, /wrong CSRF token/);
    // Another session's token is wrong too.
    const other = await signIn(reg.server, 'admin', 'admin-secret-1');
    assert.equal((await ui(reg.server, browser, 'DELETE', '/projects/team', undefined, other.csrfToken)).status, 403);
    assert.equal((await api(reg.server, 'GET', '/projects/csrf-a', adminAuth())).status, 404, 'nothing was created');
    assert.equal((await ui(reg.server, browser, 'POST', '/projects', { name: 'csrf-a' })).status, 201);
    // Reads need no token.
    assert.equal((await ui(reg.server, browser, 'GET', '/projects/csrf-a', undefined, false)).status, 200);
  });

  it('sign out: 204, cookie cleared, the session is gone server-side (the old cookie answers 401)', async () => {
    const browser = await signIn(reg.server, 'sam', 'sam-password');
    const noCsrf = await ui(reg.server, browser, 'DELETE', '/session', undefined, false);
    assert.equal(noCsrf.status, 403, 'signing out by cookie needs the CSRF token too');
    const out = await ui(reg.server, browser, 'DELETE', '/session');
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie')!, /^berth_session=; Max-Age=0;/);
    assert.equal((await ui(reg.server, browser, 'GET', '/session', undefined, false)).status, 401);
    const me = await ui(reg.server, browser, 'GET', '/me', undefined, false);
    assert.equal(me.status, 401);
    assert.equal(me.headers.get('www-authenticate'), null, 'a stale cookie gets no browser challenge');
  });

  it("a deleted user's session stops working", async () => {
    const browser = await signIn(reg.server, 'gone', 'gone-password');
    assert.equal((await ui(reg.server, browser, 'GET', '/me', undefined, false)).status, 200);
    assert.equal((await api(reg.server, 'DELETE', '/users/gone', adminAuth())).status, 204);
    assert.equal((await ui(reg.server, browser, 'GET', '/me', undefined, false)).status, 401);
  });

  it('the cookie is not accepted on /v2 (nor /token)', async () => {
    const browser = await signIn(reg.server, 'admin', 'admin-secret-1');
    for (const path of ['/v2/', '/v2/_catalog', '/v2/team/app/tags/list']) {
      const res = await fetch(`${reg.url}${path}`, { headers: { cookie: browser.cookie } });
      assert.equal(res.status, 401, path);
    }
    const token = await fetch(`${reg.url}/token?service=berth&scope=repository:team/app:pull`, { headers: { cookie: browser.cookie } });
    const body = (await token.json()) as { token?: string };
    if (token.status === 200) {
      // Anonymous token: it grants nothing on a private project.
      const res = await fetch(`${reg.url}/v2/team/app/tags/list`, { headers: { authorization: `Bearer ${body.token}` } });
      assert.ok(res.status === 401 || res.status === 403 || res.status === 404, `anonymous token answered ${res.status}`);
    } else {
      assert.equal(token.status, 401);
    }
  });

  it('Basic credentials win over a cookie; a forged cookie is anonymous on public routes and 401 elsewhere', async () => {
    const forged = { cookie: `berth_session=${'A'.repeat(43)}`, csrfToken: '', setCookie: '' };
    assert.equal((await ui(reg.server, forged, 'GET', '/me', undefined, false)).status, 401);
    assert.equal((await ui(reg.server, forged, 'GET', '/openapi.json', undefined, false)).status, 200);
    const res = await fetch(`${reg.url}/api/v1/me`, { headers: { cookie: forged.cookie, authorization: adminAuth() } });
    assert.equal(res.status, 200);
  });
});

describe('web UI session expiry', () => {
  const reg = useAuthServer('token', {}, { ui: { sessionidle: '1500ms', sessionttl: '4s' } });

  it('an idle session expires (401); use keeps it alive until the absolute end', async () => {
    const idle = await signIn(reg.server, 'admin', 'admin-secret-1');
    const used = await signIn(reg.server, 'admin', 'admin-secret-1');
    const start = Date.now();
    while (Date.now() - start < 2_000) {
      assert.equal((await ui(reg.server, used, 'GET', '/session', undefined, false)).status, 200);
      await sleep(300);
    }
    assert.equal((await ui(reg.server, idle, 'GET', '/me', undefined, false)).status, 401, 'idle past 1.5 s');
    assert.equal((await ui(reg.server, used, 'GET', '/me', undefined, false)).status, 200, 'kept alive by use');
    while (Date.now() - start < 4_300) {
      await ui(reg.server, used, 'GET', '/session', undefined, false);
      await sleep(300);
    }
    assert.equal((await ui(reg.server, used, 'GET', '/me', undefined, false)).status, 401, 'past the absolute 4 s');
  });
});

describe('web UI session purge job', () => {
  const reg = useAuthServer('token', {}, { ui: { sessionidle: '1s', sessionttl: '1h' } });
  const rowOf = (browser: { cookie: string }) =>
    reg.server.stores.sessions.getSession(createHash('sha256').update(browser.cookie.split('=')[1]!).digest('hex'));

  it('session-purge deletes expired sessions (not live ones), is listed in GET /api/v1/jobs and records its run', async () => {
    const stale = await signIn(reg.server, 'admin', 'admin-secret-1');
    await sleep(1_200);
    const fresh = await signIn(reg.server, 'admin', 'admin-secret-1');
    assert.notEqual(await rowOf(stale), null, 'signing in leaves expired rows to the job');
    await reg.server.scheduler.runNow('session-purge');
    assert.equal(await rowOf(stale), null, 'the idle session is gone');
    assert.notEqual(await rowOf(fresh), null, 'the live session stays');
    assert.equal((await ui(reg.server, fresh, 'GET', '/session', undefined, false)).status, 200);
    const jobs = (await (await api(reg.server, 'GET', '/jobs?job=session-purge', adminAuth())).json()) as {
      jobs: { name: string; schedule: unknown }[];
      runs: { job: string; outcome: string; summary: unknown }[];
    };
    assert.deepEqual(jobs.jobs.find((j) => j.name === 'session-purge')?.schedule, { everyMs: 3_600_000 });
    assert.equal(jobs.runs[0]?.outcome, 'ok');
    assert.deepEqual(jobs.runs[0]?.summary, { purged: 1 });
  });
});

describe('web UI session cookie over https', () => {
  const reg = useAuthServer('token', {}, { http: { host: 'https://registry.example.test' } });

  it('is Secure when the public URL (http.host) is https', async () => {
    const res = await signInRaw(reg.server, 'admin', 'admin-secret-1');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('set-cookie')!, /; Secure/);
  });
});
