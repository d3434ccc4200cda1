import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { configSchema } from '../../src/config/schema.js';
import { LdapSource } from '../../src/auth/ldap/index.js';
import { ldapConfigSchema } from '../../src/config/ldap.js';
import { GROUPS, PEOPLE, SERVICE_DN, TestDirectory, ldapConfig } from './ldap-server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The LDAP source alone (src/auth/ldap) against a real slapd: StartTLS and ldaps:// with the
 * CA, the two ways of reading groups, the pool of service connections, and every way the
 * directory can fail — each one 'unavailable', never a user.
 */
describe('LdapSource against a real slapd', () => {
  let directory: TestDirectory;
  const warnings: string[] = [];
  const log = { warn: (_: Record<string, unknown>, message: string) => void warnings.push(message) };
  const sources: LdapSource[] = [];
  const source = (extra: Record<string, unknown> = {}) => {
    const s = new LdapSource(ldapConfigSchema.parse(ldapConfig(directory, extra)), log);
    sources.push(s);
    return s;
  };

  before(async () => {
    directory = await TestDirectory.start();
    for (let i = 0; i < 6; i++) directory.addUser({ uid: `user${i}`, password: `password-${i}` });
    directory.addGroup('devs', ['user0', 'user1']);
    directory.addGroup('ops', ['user0']);
    // A group inside a group: memberOf and a plain search see only direct membership.
    directory.addGroup('platform', [`cn=ops,${GROUPS}`]);
  });
  after(async () => {
    await Promise.all(sources.map((s) => s.close()));
    await directory?.destroy();
  });

  it('memberOf and a group search report the same groups, as lowercased DNs and names', async () => {
    const expected = ['cn=devs,ou=groups,dc=example,dc=org', 'cn=ops,ou=groups,dc=example,dc=org', 'devs', 'ops'];
    const viaMemberOf = await source().verify('user0', 'password-0');
    assert.deepEqual(viaMemberOf, { username: 'user0', groups: expected, email: 'user0@example.org' });
    const viaSearch = await source({ group: { membership: 'search', basedn: GROUPS } }).verify('user0', 'password-0');
    assert.deepEqual(viaSearch, { username: 'user0', groups: expected, email: 'user0@example.org' });
    assert.deepEqual((await source().verify('user2', 'password-2')) as object, {
      username: 'user2',
      groups: [],
      email: 'user2@example.org',
    });
  });

  it('ldaps:// with the CA works; StartTLS or ldaps with another CA is unavailable, not a login', async () => {
    const ldaps = source({ url: `ldaps://127.0.0.1:${directory.ldapsPort}`, starttls: false });
    assert.equal(((await ldaps.verify('user1', 'password-1')) as { username: string }).username, 'user1');
    const otherCa = path.join(directory.dir, 'other-ca.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=someone else',
        '-keyout',
        path.join(directory.dir, 'other.key'),
        '-out',
        otherCa,
      ],
      { stdio: 'ignore' },
    );
    assert.equal(await source({ ca: otherCa }).verify('user1', 'password-1'), 'unavailable');
    assert.equal(
      await source({ url: `ldaps://127.0.0.1:${directory.ldapsPort}`, starttls: false, ca: otherCa }).verify('user1', 'password-1'),
      'unavailable',
    );
  });

  it('a wrong service password makes every login unavailable (never a user)', async () => {
    assert.equal(await source({ bindpassword: 'wrong' }).verify('user1', 'password-1'), 'unavailable');
  });

  it('the service password can come from a file', async () => {
    const file = path.join(directory.dir, 'bindpw');
    writeFileSync(file, 'service-secret\n');
    const s = new LdapSource(ldapConfigSchema.parse({ ...ldapConfig(directory), bindpassword: undefined, bindpasswordfile: file }), log);
    sources.push(s);
    assert.equal(((await s.verify('user1', 'password-1')) as { username: string }).username, 'user1');
  });

  it('concurrent logins share at most poolsize service connections, reused across logins', async () => {
    const before = directory.binds(SERVICE_DN);
    const s = source({ poolsize: 2 });
    const results = await Promise.all([0, 1, 2, 3, 4, 5, 0, 1].map((i) => s.verify(`user${i}`, `password-${i}`)));
    assert.ok(
      results.every((r) => typeof r === 'object' && r !== null),
      JSON.stringify(results),
    );
    assert.ok(directory.binds(SERVICE_DN) - before <= 2, `service binds: ${directory.binds(SERVICE_DN) - before}`);
    await s.verify('user3', 'password-3');
    assert.ok(directory.binds(SERVICE_DN) - before <= 2, 'idle connections are reused');
    for (let i = 0; i < 6; i++) assert.ok(directory.binds(`uid=user${i},${PEOPLE}`) >= 1);
  });

  it('pooled connections dropped by a directory restart are replaced: the next login works', async () => {
    const s = source({ poolsize: 1 });
    assert.equal(((await s.verify('user1', 'password-1')) as { username: string }).username, 'user1');
    await directory.restart();
    assert.equal(((await s.verify('user1', 'password-1')) as { username: string }).username, 'user1');
  });

  it('a directory that accepts but never answers is unavailable after the timeout', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as { port: number };
      const started = Date.now();
      const s = source({ url: `ldap://127.0.0.1:${port}`, timeout: '500ms' });
      assert.equal(await s.verify('user1', 'password-1'), 'unavailable');
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  it('nested groups (AD in-chain rule): slapd does not implement 1.2.840.113556.1.4.1941, and the login is never widened by it', async () => {
    const nested = await source({ group: { membership: 'search', basedn: GROUPS, nested: true } }).verify('user0', 'password-0');
    // Against AD this would list platform too; slapd either refuses the filter (unavailable) or matches nothing.
    assert.ok(
      nested === 'unavailable' || (typeof nested === 'object' && nested !== null && !nested.groups.includes('platform')),
      JSON.stringify(nested),
    );
  });

  it('the config refuses plain ldap:// without StartTLS unless insecure, and nested without a group search', () => {
    assert.throws(() => ldapConfigSchema.parse({ ...ldapConfig(directory), starttls: false }), /starttls/);
    assert.doesNotThrow(() => ldapConfigSchema.parse({ ...ldapConfig(directory), starttls: false, insecure: true }));
    assert.throws(() => ldapConfigSchema.parse({ ...ldapConfig(directory), group: { nested: true } }), /nested/);
    assert.throws(() => ldapConfigSchema.parse({ ...ldapConfig(directory), bindpasswordfile: '/x' }), /not both/);
  });

  it('the configurations docs/security.md gives for OpenLDAP and Active Directory are valid', () => {
    const doc = readFileSync(path.join(ROOT, 'docs/security.md'), 'utf8');
    const start = doc.indexOf('## LDAP / Active Directory');
    const section = doc.slice(start, doc.indexOf('\n## ', start + 1));
    const blocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    assert.equal(blocks.length, 2);
    const openldap = configSchema.parse(YAML.parse(blocks[0]!));
    assert.equal(openldap.auth.ldap?.starttls, true);
    // The AD block is the `ldap:` part of auth.
    const ad = configSchema.parse({ auth: { mode: 'token', ...YAML.parse(blocks[1]!) } });
    assert.equal(ad.auth.ldap?.group.nested, true);
  });
});
