import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A real OpenLDAP (Debian slapd 2.5) for the LDAP tests: its own slapd.conf, MDB database and
 * certificates in a temporary directory, on a loopback port (never the system instance).
 * StartTLS is served on the same port with a server certificate signed by a CA made here with
 * openssl. The memberof overlay keeps users' memberOf in step with groupOfNames entries. The
 * log (stats level) is kept so tests can count the binds the directory saw.
 */
export const BASE = 'dc=example,dc=org';
export const ROOT_DN = `cn=admin,${BASE}`;
export const ROOT_PASSWORD = 'root-secret';
export const SERVICE_DN = `cn=berth,ou=services,${BASE}`;
export const SERVICE_PASSWORD = 'service-secret';
export const PEOPLE = `ou=people,${BASE}`;
export const GROUPS = `ou=groups,${BASE}`;

export interface LdapUser {
  uid: string;
  password: string;
  mail?: string;
  /** Excluded by the tests' user filter (a disabled account). */
  disabled?: boolean;
}

export class TestDirectory {
  private child: ChildProcess | null = null;
  private log = '';
  readonly dir: string;
  readonly port: number;
  /** Implicit TLS (ldaps://) on a second port. */
  readonly ldapsPort: number;
  readonly caFile: string;

  private constructor(dir: string, port: number, ldapsPort: number) {
    this.dir = dir;
    this.port = port;
    this.ldapsPort = ldapsPort;
    this.caFile = path.join(dir, 'ca.pem');
  }

  get url(): string {
    return `ldap://127.0.0.1:${this.port}`;
  }

  /** Writes the config, certificates and the base entries, and starts slapd. */
  static async start(): Promise<TestDirectory> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-slapd-'));
    const directory = new TestDirectory(dir, await freePort(), await freePort());
    directory.writeCertificates();
    directory.writeConfig();
    await directory.run();
    directory.ldif(
      'ldapadd',
      `dn: ${BASE}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,${BASE}
objectClass: organizationalUnit
ou: people

dn: ou=groups,${BASE}
objectClass: organizationalUnit
ou: groups

dn: ou=services,${BASE}
objectClass: organizationalUnit
ou: services

dn: ${SERVICE_DN}
objectClass: simpleSecurityObject
objectClass: organizationalRole
cn: berth
userPassword: ${SERVICE_PASSWORD}
`,
    );
    return directory;
  }

  addUser(user: LdapUser): void {
    this.ldif(
      'ldapadd',
      `dn: uid=${user.uid},${PEOPLE}
objectClass: inetOrgPerson
uid: ${user.uid}
cn: ${user.uid}
sn: ${user.uid}
mail: ${user.mail ?? `${user.uid}@example.org`}
userPassword: ${user.password}
${user.disabled ? 'employeeType: disabled\n' : ''}`,
    );
  }

  /** A groupOfNames with these members (uids, or full DNs for nested groups). */
  addGroup(cn: string, members: string[]): void {
    this.ldif(
      'ldapadd',
      `dn: cn=${cn},${GROUPS}\nobjectClass: groupOfNames\ncn: ${cn}\n${members.map((m) => `member: ${dnOf(m)}\n`).join('')}`,
    );
  }

  addMember(cn: string, member: string): void {
    this.ldif('ldapmodify', `dn: cn=${cn},${GROUPS}\nchangetype: modify\nadd: member\nmember: ${dnOf(member)}\n`);
  }

  removeMember(cn: string, member: string): void {
    this.ldif('ldapmodify', `dn: cn=${cn},${GROUPS}\nchangetype: modify\ndelete: member\nmember: ${dnOf(member)}\n`);
  }

  setPassword(uid: string, password: string): void {
    this.ldif('ldapmodify', `dn: uid=${uid},${PEOPLE}\nchangetype: modify\nreplace: userPassword\nuserPassword: ${password}\n`);
  }

  /** Bind operations the directory saw for `dn` since it started (across restarts). */
  binds(dn: string): number {
    const escaped = dn.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    return (this.log.match(new RegExp(`BIND dn="${escaped}" method=128`, 'gi')) ?? []).length;
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }

  /** Starts slapd again on the same port and data. */
  async restart(): Promise<void> {
    await this.stop();
    await this.run();
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async run(): Promise<void> {
    const child = spawn(
      '/usr/sbin/slapd',
      ['-f', path.join(this.dir, 'slapd.conf'), '-h', `${this.url}/ ldaps://127.0.0.1:${this.ldapsPort}/`, '-d', 'stats'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.child = child;
    for (let i = 0; i < 100; i++) {
      if (child.exitCode !== null) throw new Error(`slapd exited with ${child.exitCode}:\n${this.log.slice(-3000)}`);
      try {
        execFileSync('ldapsearch', ['-x', '-H', this.url, '-b', '', '-s', 'base', '(objectClass=*)'], { stdio: 'ignore' });
        return;
      } catch {
        await sleep(100);
      }
    }
    throw new Error(`slapd did not answer within 10 s:\n${this.log.slice(-3000)}`);
  }

  private ldif(tool: 'ldapadd' | 'ldapmodify', text: string): void {
    execFileSync(tool, ['-x', '-H', this.url, '-D', ROOT_DN, '-w', ROOT_PASSWORD], { input: text, stdio: ['pipe', 'ignore', 'pipe'] });
  }

  private writeCertificates(): void {
    const d = this.dir;
    const run = (args: string[]) => execFileSync('openssl', args, { cwd: d, stdio: 'ignore' });
    run([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=berth test LDAP CA',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
    ]);
    run(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr']);
    writeFileSync(path.join(d, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
    run([
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      'san.ext',
      '-out',
      'server.pem',
    ]);
  }

  private writeConfig(): void {
    const d = this.dir;
    mkdirSync(path.join(d, 'data'));
    writeFileSync(
      path.join(d, 'slapd.conf'),
      `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile ${d}/slapd.pid
TLSCACertificateFile ${d}/ca.pem
TLSCertificateFile ${d}/server.pem
TLSCertificateKeyFile ${d}/server.key

database mdb
suffix "${BASE}"
rootdn "${ROOT_DN}"
rootpw ${ROOT_PASSWORD}
directory ${d}/data
maxsize 10485760
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint true
access to attrs=userPassword by self write by anonymous auth by * none
access to * by dn.exact="${SERVICE_DN}" read by self read by * none
`,
    );
  }
}

function dnOf(member: string): string {
  return member.includes('=') ? member : `uid=${member},${PEOPLE}`;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** auth.ldap for the test directory: StartTLS with its CA, the disabled-account filter, memberOf groups. */
export function ldapConfig(directory: TestDirectory, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    url: directory.url,
    starttls: true,
    ca: directory.caFile,
    binddn: SERVICE_DN,
    bindpassword: SERVICE_PASSWORD,
    user: { basedn: PEOPLE, filter: '(&(objectClass=inetOrgPerson)(uid={username})(!(employeeType=disabled)))' },
    timeout: '2s',
    ...extra,
  };
}
