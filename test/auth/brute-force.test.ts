import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { errorCode } from '../helpers/registry-client.js';
import { openStores } from '../../src/stores.js';
import { ADMIN_PASSWORD, addUser, adminAuth, basic, bearer, claims, getToken, token, useAuthServer } from './support.js';

/** A request from client address `ip` (the server trusts X-Forwarded-For: http.trustproxy). */
const from = (ip: string, authorization?: string): Record<string, string> => ({
  'x-forwarded-for': ip,
  ...(authorization ? { authorization } : {}),
});

/** Issue 12: the failed-login throttle is per account and client address, with backoff. */
describe('brute-force limits: per account and client address, with backoff', () => {
  const BACKOFF_MS = 500;
  const reg = useAuthServer(
    'token',
    { ratelimit: { failures: 3, perip: 6, window: '1m', backoff: `${BACKOFF_MS}ms` } },
    { http: { trustproxy: true } },
  );
  before(async () => {
    await addUser(reg.server, 'erin', 'erin-password');
    await addUser(reg.server, 'frank', 'frank-password');
  });

  const login = (ip: string, username: string, password: string) =>
    fetch(`${reg.url}/token?service=berth`, { headers: from(ip, basic(username, password)) });

  it('wrong admin passwords from one address do not lock the admin out from another (no global lock-out)', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await login('203.0.113.1', 'admin', `wrong-${i}-password`)).status, 401);
    const blocked = await login('203.0.113.1', 'admin', ADMIN_PASSWORD);
    assert.equal(blocked.status, 429, 'the attacking address waits, even with the right password');
    assert.equal(await errorCode(blocked), 'TOOMANYREQUESTS');
    assert.ok(Number(blocked.headers.get('retry-after')) >= 1);
    assert.equal((await login('198.51.100.7', 'admin', ADMIN_PASSWORD)).status, 200, 'the admin elsewhere is not locked out');
    // The admin API (Basic) shares the throttle: the same pair is refused there too.
    const api = await fetch(`${reg.url}/api/v1/me`, { headers: from('203.0.113.1', adminAuth()) });
    assert.equal(api.status, 429);
  });

  it('backoff: after the wait one more try is allowed, each further failure doubles the wait, a success clears it', async () => {
    const ip = '203.0.113.2';
    for (let i = 0; i < 3; i++) assert.equal((await login(ip, 'erin', `wrong-${i}-password`)).status, 401);
    assert.equal((await login(ip, 'erin', 'erin-password')).status, 429);
    await sleep(BACKOFF_MS + 150);
    assert.equal((await login(ip, 'erin', 'wrong-again-password')).status, 401, 'allowed again after the first wait');
    await sleep(BACKOFF_MS + 150);
    assert.equal((await login(ip, 'erin', 'erin-password')).status, 429, 'the second wait is twice as long');
    await sleep(BACKOFF_MS + 150);
    assert.equal((await login(ip, 'erin', 'erin-password')).status, 200);
    assert.equal(
      (await login(ip, 'erin', 'wrong-later-password')).status,
      401,
      'the success cleared the counter: a new failure is not refused',
    );
  });

  it('password spraying: an address failing across accounts (auth.ratelimit.perip) waits for every account; others do not', async () => {
    const ip = '203.0.113.3';
    for (let i = 0; i < 6; i++) assert.equal((await login(ip, `nobody${i}`, 'guess-password')).status, 401);
    assert.equal((await login(ip, 'frank', 'frank-password')).status, 429);
    assert.equal((await login('198.51.100.8', 'frank', 'frank-password')).status, 200);
  });

  it('currentPassword guesses on PUT /users/<me>/password are throttled like logins (with an API token, no password known)', async () => {
    const ip = '203.0.113.4';
    const frank = bearer(await token(reg.server, ['api'], basic('frank', 'frank-password')));
    const change = (current: string, at = ip) =>
      fetch(`${reg.url}/api/v1/users/frank/password`, {
        method: 'PUT',
        headers: { ...from(at, frank), 'content-type': 'application/json' },
        body: JSON.stringify({ password: 'frank-password-2', currentPassword: current }),
      });
    for (let i = 0; i < 3; i++) {
      const res = await change(`guess-${i}-password`);
      assert.equal(res.status, 403);
      assert.equal(await errorCode(res), 'DENIED');
    }
    const blocked = await change('frank-password');
    assert.equal(blocked.status, 429, 'the right currentPassword waits too');
    assert.ok(Number(blocked.headers.get('retry-after')) >= 1);
    assert.equal((await change('frank-password', '198.51.100.9')).status, 204, 'from another address it works');
  });
});

/** Issue 12: bcrypt reads 72 bytes; longer passwords are refused when set, not silently cut. */
describe('passwords longer than 72 bytes', () => {
  const reg = useAuthServer('token');

  it('are refused with 400 INVALID_ARGUMENT naming the limit (bytes, not characters); 72 bytes are fine', async () => {
    for (const password of ['p'.repeat(73), '€'.repeat(25)]) {
      const res = await fetch(`${reg.url}/api/v1/users`, {
        method: 'POST',
        headers: { authorization: adminAuth(), 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'long', password }),
      });
      assert.equal(res.status, 400, `${Buffer.byteLength(password)} bytes`);
      const body = (await res.json()) as { errors: { code: string; message: string }[] };
      assert.equal(body.errors[0]!.code, 'INVALID_ARGUMENT');
      assert.match(body.errors[0]!.message, /at most 72 bytes/);
    }
    const exact = 'q'.repeat(71) + 'z';
    await addUser(reg.server, 'exact', exact);
    assert.equal((await getToken(reg.server, [], basic('exact', exact))).status, 200);
    assert.equal((await getToken(reg.server, [], basic('exact', 'q'.repeat(72)))).status, 401, 'the 72nd byte counts');
    const change = await fetch(`${reg.url}/api/v1/users/exact/password`, {
      method: 'PUT',
      headers: { authorization: adminAuth(), 'content-type': 'application/json' },
      body: JSON.stringify({ password: 'x'.repeat(100) }),
    });
    assert.equal(change.status, 400, 'a password change is held to the same limit');
  });

  it('a hash stored before the limit (from a longer password) still verifies', async () => {
    const long = 'legacy-'.repeat(15); // 105 bytes: bcrypt used the first 72
    const stores = await openStores(reg.server.config);
    try {
      assert.ok(await stores.auth.createUser({ username: 'legacy', passwordHash: bcrypt.hashSync(long, 4), admin: false }));
    } finally {
      await stores.close();
    }
    const res = await getToken(reg.server, [], basic('legacy', long));
    assert.equal(res.status, 200);
    assert.equal(claims(((await res.json()) as { token: string }).token).sub, 'legacy');
  });
});
