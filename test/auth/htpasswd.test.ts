import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import pino from 'pino';
import { HtpasswdSyntaxError, HtpasswdUsers, HtpasswdWatcher, parseHtpasswd } from '../../src/auth/htpasswd.js';
import { configSchema } from '../../src/config/schema.js';
import { ClientSandbox, registryHost, requireTools } from '../helpers/clients.js';
import { createLayoutImage } from '../helpers/images.js';
import { RegistryClient, errorCode, makeImage } from '../helpers/registry-client.js';
import { startBerthProcess, startTestServer, tempDir, type BerthProcess } from '../helpers/server.js';
import { useServer } from '../helpers/use-server.js';
import {
  ADMIN_PASSWORD,
  addMember,
  addProject,
  addUser,
  adminAuth,
  api,
  basic,
  bearer,
  claims,
  getToken,
  type TokenAnswer,
} from './support.js';

/** Users from an htpasswd file (Distribution's auth: htpasswd): bcrypt only, hot-reloaded. */

/** A line written by the real Apache tool; `flag` picks the hash (B bcrypt, m MD5, s SHA1). */
function htpasswdTool(flag: 'B' | 'm' | 's', user: string, password: string): string {
  return execFileSync('htpasswd', [`-${flag}bn`, user, password], { encoding: 'utf8' }).trim();
}

/** A bcrypt line made with bcryptjs; `prefix` rewrites the variant tag ($2a$ and $2b$ hash identically for these passwords). */
function bcryptLine(user: string, password: string, prefix: '$2a$' | '$2b$' = '$2b$'): string {
  return `${user}:${bcrypt.hashSync(password, 4).replace(/^\$2[ab]\$/, prefix)}`;
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<number> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return Date.now() - start;
}

/** Hot reload must take effect within a few seconds (directory watch, else the 2 s re-read). */
const RELOAD_BUDGET_MS = 5_000;

describe('htpasswd parsing', () => {
  it('accepts bcrypt entries ($2y$ from htpasswd -B, $2a$, $2b$) and ignores blank lines and comments', () => {
    const text = [
      '# users',
      '',
      bcryptLine('alice', 'a-password', '$2a$'),
      bcryptLine('bob', 'b-password'),
      htpasswdTool('B', 'carol', 'c-password'),
      '',
    ].join('\n');
    const parsed = parseHtpasswd(text);
    assert.deepEqual([...parsed.users.keys()], ['alice', 'bob', 'carol']);
    assert.match(parsed.users.get('carol')!, /^\$2y\$/);
    assert.deepEqual(parsed.skipped, []);
    assert.ok(bcrypt.compareSync('c-password', parsed.users.get('carol')!));
  });

  it('skips MD5, SHA1, crypt and plain entries and names that are no Berth user name, saying why and where, without the hash', () => {
    const lines = [
      htpasswdTool('m', 'dave', 'd-password'),
      htpasswdTool('s', 'eve', 'e-password'),
      'gina:abJnggxhB/yJU',
      'hank:plaintext-password',
      bcryptLine('Ida', 'i-password'),
      bcryptLine('robot$x', 'r-password'),
      'jo:$2y$05$tooshort',
    ];
    const parsed = parseHtpasswd(lines.join('\r\n'));
    assert.equal(parsed.users.size, 0);
    assert.deepEqual(
      parsed.skipped.map((s) => [s.line, s.user]),
      [
        [1, 'dave'],
        [2, 'eve'],
        [3, 'gina'],
        [4, 'hank'],
        [5, 'Ida'],
        [6, 'robot$x'],
        [7, 'jo'],
      ],
    );
    assert.match(parsed.skipped[0]!.reason, /MD5 \(\$apr1\$\)/);
    assert.match(parsed.skipped[1]!.reason, /SHA1/);
    assert.match(parsed.skipped[2]!.reason, /crypt/);
    assert.match(parsed.skipped[4]!.reason, /not a valid Berth user name/);
    assert.match(parsed.skipped[6]!.reason, /malformed bcrypt/);
    for (const [i, s] of parsed.skipped.entries()) {
      assert.ok(!s.reason.includes(lines[i]!.slice(lines[i]!.indexOf(':') + 1)), `reason for ${s.user} leaks the hash`);
    }
  });

  it('a line without "user:" or a user given twice makes the whole file invalid', () => {
    assert.throws(
      () => parseHtpasswd(`${bcryptLine('alice', 'x-password')}\ngarbage here\n`),
      (err: Error) => err instanceof HtpasswdSyntaxError && /line 2/.test(err.message),
    );
    assert.throws(() => parseHtpasswd(`${bcryptLine('alice', 'x')}\n:nohash\n`), /line 2/);
    assert.throws(
      () => parseHtpasswd(`${bcryptLine('alice', 'x')}\n${bcryptLine('alice', 'y')}\n`),
      /line 2: user alice already defined at line 1/,
    );
  });

  it('config: auth.htpasswd needs auth on and Berth issuing tokens', () => {
    const none = configSchema.safeParse({ auth: { mode: 'none', htpasswd: { path: '/etc/berth/htpasswd' } } });
    assert.equal(none.success, false);
    assert.match(JSON.stringify(none.error!.issues), /needs auth.mode basic or token/);
    const external = configSchema.safeParse({
      auth: { mode: 'token', htpasswd: { path: '/x' }, token: { jwks: '/jwks.json', realm: 'https://auth.example.com/token' } },
    });
    assert.equal(external.success, false);
    assert.equal(configSchema.safeParse({ auth: { mode: 'basic', htpasswd: { path: '/x', realm: 'Registry Realm' } } }).success, true);
    assert.equal(configSchema.safeParse({ auth: { mode: 'basic', htpasswd: { path: '/x', bogus: 1 } } }).success, false);
  });
});

describe('HtpasswdWatcher', () => {
  let dir: string;
  let watcher: HtpasswdWatcher | undefined;
  before(() => {
    dir = tempDir('berth-htpasswd-');
  });
  after(() => {
    watcher?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the periodic re-read alone notices a change (no directory event in time: NFS and the like)', async () => {
    const file = path.join(dir, 'poll');
    writeFileSync(file, `${bcryptLine('alice', 'alice-password')}\n`);
    const users = new HtpasswdUsers();
    // A debounce far beyond the test's wait: only the 200 ms poll can reload in time.
    watcher = new HtpasswdWatcher(file, users, pino({ level: 'silent' }), { pollMs: 200, debounceMs: 60_000 });
    await watcher.load();
    watcher.watch(async () => undefined);
    appendFileSync(file, `${bcryptLine('bob', 'bob-password')}\n`);
    const ms = await until('bob to appear', () => users.has('bob'), 3_000);
    assert.ok(users.has('alice'));
    assert.ok(ms < 3_000);
    watcher.close();
  });

  it('a Kubernetes-style symlink swap (htpasswd -> ..data/htpasswd, ..data replaced) is picked up by the directory watch', async () => {
    const mount = path.join(dir, 'mount');
    mkdirSync(path.join(mount, '..v1'), { recursive: true });
    mkdirSync(path.join(mount, '..v2'));
    writeFileSync(path.join(mount, '..v1', 'htpasswd'), `${bcryptLine('alice', 'alice-password')}\n`);
    writeFileSync(path.join(mount, '..v2', 'htpasswd'), `${bcryptLine('carol', 'carol-password')}\n`);
    symlinkSync('..v1', path.join(mount, '..data'));
    symlinkSync('..data/htpasswd', path.join(mount, 'htpasswd'));
    const users = new HtpasswdUsers();
    const changes: number[] = [];
    // A poll far beyond the test's wait: only the directory watch can reload in time.
    watcher = new HtpasswdWatcher(path.join(mount, 'htpasswd'), users, pino({ level: 'silent' }), { pollMs: 60_000, debounceMs: 50 });
    await watcher.load();
    watcher.watch(async (parsed) => void changes.push(parsed.users.size));
    assert.ok(users.has('alice'));
    symlinkSync('..v2', path.join(mount, '..data_tmp'));
    renameSync(path.join(mount, '..data_tmp'), path.join(mount, '..data'));
    await until('carol to replace alice', () => users.has('carol') && !users.has('alice'), 3_000);
    assert.deepEqual(changes, [1]);
    watcher.close();
  });
});

describe('auth.mode token with an htpasswd file (berth serve, hot reload)', () => {
  let dir: string;
  let file: string;
  let dataDir: string;
  let berth: BerthProcess;
  let rejectedLines: string[];
  const tokenFor = async (user: string, password: string, scopes: string[] = []) => getToken(berth, scopes, basic(user, password));

  /** Rewrites the file and waits until the server has loaded (or rejected) the new content. */
  async function rewrite(write: () => void, logged: RegExp = /htpasswd: loaded \d+ users/g): Promise<number> {
    const before = (berth.output().match(logged) ?? []).length;
    write();
    return until(`${logged} in the log`, () => (berth.output().match(logged) ?? []).length > before);
  }

  before(async () => {
    requireTools(['htpasswd']);
    dir = tempDir('berth-htpasswd-');
    file = path.join(dir, 'htpasswd');
    rejectedLines = [htpasswdTool('m', 'dave', 'dave-password'), htpasswdTool('s', 'eve', 'eve-password'), 'gina:abJnggxhB/yJU'];
    const accepted = [bcryptLine('alice', 'alice-password'), htpasswdTool('B', 'carol', 'carol-password')];
    writeFileSync(file, ['# migrated from Distribution', ...accepted, ...rejectedLines, ''].join('\n'));
    dataDir = tempDir();
    berth = await startBerthProcess({
      BERTH_DATA_DIR: dataDir,
      BERTH_AUTH_MODE: 'token',
      BERTH_ADMIN_PASSWORD: ADMIN_PASSWORD,
      BERTH_AUTH_HTPASSWD_PATH: file,
      // The hot-reload checks log in many times from 127.0.0.1; the throttle has its own test below.
      BERTH_AUTH_RATELIMIT_FAILURES: '1000',
    });
  });
  after(async () => {
    await berth?.stop();
    for (const d of [dir, dataDir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('logs how many users it loaded, and warns about each rejected entry by line and user without its hash', () => {
    const out = berth.output();
    assert.match(out, /htpasswd: loaded 2 users/);
    assert.match(out, /skipped user dave at line 4: MD5 \(\$apr1\$\) hash; only bcrypt entries/);
    assert.match(out, /skipped user eve at line 5: SHA1 \(\{SHA\}\) hash/);
    assert.match(out, /skipped user gina at line 6: crypt or plain-text password/);
    for (const line of rejectedLines) {
      const hash = line.slice(line.indexOf(':') + 1);
      assert.ok(
        !out.includes(hash) && !out.includes(JSON.stringify(hash).slice(1, -1)),
        `the hash of ${line.split(':')[0]} appeared in the log`,
      );
    }
  });

  it('token login with Basic (bcryptjs and real htpasswd -B entries); the user pushes to a project it creates', async () => {
    const res = await tokenFor('alice', 'alice-password', ['repository:alice/app:pull,push']);
    assert.equal(res.status, 200);
    const jwt = ((await res.json()) as TokenAnswer).token;
    assert.equal(claims(jwt).sub, 'alice');
    assert.deepEqual(claims(jwt).access, [{ type: 'repository', name: 'alice/app', actions: ['pull', 'push'] }]);
    const client = new RegistryClient(berth.url, { authorization: bearer(jwt) });
    const image = makeImage();
    assert.equal((await client.pushImage('alice/app', 'v1', image)).status, 201);
    const members = await api(berth, 'GET', '/projects/alice/members', adminAuth());
    assert.deepEqual(await members.json(), [{ project: 'alice', username: 'alice', role: 'project-admin' }]);

    const carol = await tokenFor('carol', 'carol-password');
    assert.equal(carol.status, 200, 'the $2y$ entry written by htpasswd -B');
  });

  it('a wrong password, an unknown user and a rejected (MD5) entry with its right password all get 401', async () => {
    for (const [user, password] of [
      ['alice', 'wrong-password'],
      ['nobody', 'alice-password'],
      ['dave', 'dave-password'],
    ] as const) {
      const res = await tokenFor(user, password);
      assert.equal(res.status, 401, `${user}`);
      assert.equal(await errorCode(res), 'UNAUTHORIZED');
    }
  });

  it('htpasswd users are ordinary users: listed, not admins, and can be made project members before they ever log in', async () => {
    const users = (await (await api(berth, 'GET', '/users', adminAuth())).json()) as { username: string; admin: boolean }[];
    assert.deepEqual(
      users.filter((u) => ['alice', 'carol', 'dave'].includes(u.username)).map((u) => [u.username, u.admin]),
      [
        ['alice', false],
        ['carol', false],
      ],
    );
    await addProject(berth, 'team');
    await addMember(berth, 'team', 'carol', 'developer');
    const jwt = (
      (await (
        await tokenFor('carol', 'carol-password', ['repository:team/app:pull,push', 'repository:alice/app:pull'])
      ).json()) as TokenAnswer
    ).token;
    assert.deepEqual(claims(jwt).access, [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }]);
    const me = await api(berth, 'GET', '/me', basic('carol', 'carol-password'));
    assert.deepEqual(await me.json(), {
      name: 'carol',
      kind: 'user',
      admin: false,
      memberships: [{ project: 'team', username: 'carol', role: 'developer' }],
      username: 'carol',
      projects: [{ name: 'team', role: 'developer' }],
    });
  });

  it('a user appended to the file can log in within a few seconds, without a restart', async () => {
    const ms = await rewrite(() => appendFileSync(file, `${htpasswdTool('B', 'henry', 'henry-password')}\n`));
    assert.ok(ms < RELOAD_BUDGET_MS, `reload took ${ms} ms`);
    assert.match(berth.output(), /htpasswd: loaded 3 users/);
    assert.equal((await tokenFor('henry', 'henry-password')).status, 200);
  });

  it('a user removed from the file loses access on the next request: live token, refresh token and password', async () => {
    const offline = await getToken(berth, ['repository:alice/app:pull'], basic('alice', 'alice-password'), {
      offline_token: 'true',
      client_id: 'test',
    });
    const { token: jwt, refresh_token: refresh } = (await offline.json()) as TokenAnswer;
    const tags = () => fetch(`${berth.url}/v2/alice/app/tags/list`, { headers: { authorization: bearer(jwt) } });
    assert.equal((await tags()).status, 200);

    const ms = await rewrite(() =>
      writeFileSync(file, [htpasswdTool('B', 'carol', 'carol-password'), htpasswdTool('B', 'henry', 'henry-password'), ''].join('\n')),
    );
    assert.ok(ms < RELOAD_BUDGET_MS, `reload took ${ms} ms`);
    const res = await tags();
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    assert.equal((await tokenFor('alice', 'alice-password')).status, 401);
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refresh!, client_id: 'test', service: 'berth' });
    const refreshed = await fetch(`${berth.url}/token`, { method: 'POST', body: form });
    assert.ok(refreshed.status === 400 || refreshed.status === 401, `refresh answered ${refreshed.status}`);
    // Her project stays, owned by her account, should she come back.
    assert.equal((await api(berth, 'GET', '/projects/alice/members', adminAuth())).status, 200);
  });

  it('a file replaced by rename (as editors and mv do) is picked up too', async () => {
    const next = path.join(dir, '.htpasswd.tmp');
    writeFileSync(next, [htpasswdTool('B', 'carol', 'carol-password'), bcryptLine('ivan', 'ivan-password', '$2a$'), ''].join('\n'));
    const ms = await rewrite(() => renameSync(next, file));
    assert.ok(ms < RELOAD_BUDGET_MS, `reload took ${ms} ms`);
    assert.equal((await tokenFor('ivan', 'ivan-password')).status, 200);
    assert.equal((await tokenFor('henry', 'henry-password')).status, 401);
    // And the watch still works on the new file (a rename replaces the inode).
    await rewrite(() => appendFileSync(file, `${bcryptLine('judy', 'judy-password')}\n`));
    assert.equal((await tokenFor('judy', 'judy-password')).status, 200);
  });

  it('a corrupt file is refused with an error in the log, and the previous users keep working', async () => {
    await rewrite(
      () => writeFileSync(file, `${bcryptLine('mallory', 'mallory-password')}\nthis is not an htpasswd file\n`),
      /htpasswd reload failed/g,
    );
    assert.match(berth.output(), /htpasswd reload failed, keeping the previous 3 users: line 2: expected \\"user:hash\\"/);
    assert.equal((await tokenFor('ivan', 'ivan-password')).status, 200);
    assert.equal((await tokenFor('mallory', 'mallory-password')).status, 401);
    // Deleting the file is treated the same way (a transient during some editors' saves).
    await rewrite(() => rmSync(file), /htpasswd reload failed/g);
    assert.equal((await tokenFor('ivan', 'ivan-password')).status, 200);
    await rewrite(() => writeFileSync(file, `${bcryptLine('ivan', 'ivan-password')}\n${htpasswdTool('B', 'carol', 'carol-password')}\n`));
    assert.equal((await tokenFor('judy', 'judy-password')).status, 401);
  });

  it('a Berth user of the same name takes precedence: the file entry is ignored with a warning', async () => {
    await addUser(berth, 'frank', 'frank-db-password');
    await rewrite(
      () => appendFileSync(file, `${bcryptLine('frank', 'frank-file-password')}\n`),
      /user frank \(line 3\) is ignored: a Berth user of that name exists/g,
    );
    assert.equal((await tokenFor('frank', 'frank-file-password')).status, 401);
    assert.equal((await tokenFor('frank', 'frank-db-password')).status, 200);
  });

  it('skopeo copy --dest-creds with an htpasswd user pushes, and --src-creds pulls it back', async () => {
    requireTools(['skopeo']);
    const sandbox = ClientSandbox.create();
    try {
      const layout = sandbox.path('layout');
      await createLayoutImage(layout, 'src', [4096, 2048]);
      const host = registryHost(berth.url);
      const copy = (src: string, dest: string, creds: string[]) =>
        sandbox.skopeo(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', ...creds, src, dest], { allowFailure: true });
      const push = await copy(`oci:${layout}:src`, `docker://${host}/team/tool:v1`, ['--dest-creds', 'carol:carol-password']);
      assert.equal(push.code, 0, push.stderr);
      const pull = await copy(`docker://${host}/team/tool:v1`, `oci:${sandbox.path('back')}:v1`, ['--src-creds', 'carol:carol-password']);
      assert.equal(pull.code, 0, pull.stderr);
      const denied = await copy(`oci:${layout}:src`, `docker://${host}/team/tool:v2`, ['--dest-creds', 'carol:wrong-password']);
      assert.notEqual(denied.code, 0);
    } finally {
      sandbox.destroy();
    }
  });
});

describe('auth.mode basic with an htpasswd file', () => {
  let dir: string;

  before(() => {
    requireTools(['htpasswd']);
    dir = tempDir('berth-htpasswd-');
    writeFileSync(
      path.join(dir, 'htpasswd'),
      [htpasswdTool('B', 'admin', 'file-admin-password'), htpasswdTool('B', 'alice', 'alice-password'), ''].join('\n'),
    );
  });
  // No admin password given: the file's `admin` becomes the initial admin.
  const reg = useServer(() => ({
    auth: { mode: 'basic', htpasswd: { path: path.join(dir, 'htpasswd'), realm: 'Registry Realm' }, ratelimit: { failures: 3 } },
  }));
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the 401 challenge names auth.htpasswd.realm', async () => {
    const res = await fetch(`${reg.url}/v2/`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Basic realm="Registry Realm"');
  });

  it('on first start the htpasswd user named like auth.admin.username is the initial admin, with the file password', async () => {
    const me = await fetch(`${reg.url}/api/v1/me`, { headers: { authorization: basic('admin', 'file-admin-password') } });
    assert.equal(me.status, 200);
    assert.deepEqual(await me.json(), { name: 'admin', kind: 'user', admin: true, memberships: [], username: 'admin', projects: [] });
  });

  it('Basic login on /v2 works: push and pull with the file password', async () => {
    const alice = new RegistryClient(reg.url, { authorization: basic('alice', 'alice-password') });
    const image = makeImage();
    assert.equal((await alice.pushImage('alice/app', 'v1', image)).status, 201);
    const pulled = await alice.fetch('/v2/alice/app/manifests/v1');
    assert.equal(pulled.status, 200);
    assert.deepEqual(Buffer.from(await pulled.arrayBuffer()), image.manifest.data);
  });

  it('wrong passwords get 401, and the failed-login throttle applies to htpasswd users (429, even with the right password)', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('alice', `wrong-${i}-password`) } });
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), 'Basic realm="Registry Realm"');
    }
    const blocked = await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('alice', 'alice-password') } });
    assert.equal(blocked.status, 429);
    assert.ok(Number(blocked.headers.get('retry-after')) > 0);
  });
});

describe('auth.htpasswd at startup', () => {
  it('a missing file stops the server from starting (a typo must not silently lock everyone out)', async () => {
    const dir = tempDir('berth-htpasswd-');
    try {
      const config = {
        data: { dir: path.join(dir, 'data') },
        auth: { mode: 'token', admin: { password: ADMIN_PASSWORD }, htpasswd: { path: path.join(dir, 'missing') } },
      };
      await assert.rejects(startTestServer(config), /ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
