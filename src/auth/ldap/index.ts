import { readFileSync } from 'node:fs';
import type { Client, Entry } from 'ldapts';
import type { LdapConfig } from '../../config/ldap.js';
import { durationMs } from '../../config/schema.js';
import type { ExternalUser, PasswordSource, Verification } from '../sources.js';
import { connect, discard, ldapts, readCa, ServicePool, type DirectoryEndpoint } from './connections.js';

/** Logs what the directory did wrong (never a password); the composition root passes the server's logger. */
export interface LdapLog {
  warn(details: Record<string, unknown>, message: string): void;
}

/** Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: `member` through any depth of nested groups. */
export const IN_CHAIN = '1.2.840.113556.1.4.1941';
const DIRECT_GROUPS = '(&(objectClass=groupOfNames)(member={dn}))';
const NESTED_GROUPS = `(member:${IN_CHAIN}:={dn})`;

/**
 * Users of an LDAP directory or Active Directory (auth.ldap), as a PasswordSource
 * (src/auth/sources.ts). Bind-and-search: a service connection (pooled, bound as `binddn`)
 * finds exactly one entry with `user.filter`; a connection of its own binds as that entry's DN
 * with the given password (an empty password is refused before: LDAP would take it as an
 * anonymous bind); the groups come from the entry's memberOf or a group search (AD's nested
 * groups with the in-chain rule). Group names are reported lowercased, as DNs and by
 * `group.nameattribute` (cn), for the bindings to match. A directory that cannot be reached,
 * times out or answers an error is 'unavailable': never "allow".
 */
export class LdapSource implements PasswordSource {
  readonly name = 'ldap';
  readonly takeover: boolean;
  readonly cacheTtlMs: number;
  /** Binds sent to the directory (service and user binds): cache hits send none. */
  binds = 0;
  private readonly endpoint: DirectoryEndpoint;
  private readonly pool: ServicePool;

  constructor(
    private readonly config: LdapConfig,
    private readonly log: LdapLog,
  ) {
    this.takeover = config.takeover;
    this.cacheTtlMs = durationMs(config.cache);
    this.endpoint = { url: config.url, starttls: config.starttls, ca: readCa(config.ca), timeoutMs: durationMs(config.timeout) };
    const password = config.bindpasswordfile
      ? readFileSync(config.bindpasswordfile, 'utf8').replace(/\r?\n$/, '')
      : (config.bindpassword ?? '');
    this.pool = new ServicePool(this.endpoint, config.binddn, password, config.poolsize, () => this.binds++);
  }

  async verify(username: string, password: string): Promise<Verification> {
    if (password === '') return null;
    let entry: Entry | null;
    try {
      entry = await this.findUser(username);
    } catch (err) {
      return this.unavailable('user search', err);
    }
    if (!entry) return null;
    try {
      if (!(await this.bindAs(entry.dn, password))) return null;
    } catch (err) {
      return this.unavailable('user bind', err);
    }
    let groups: string[];
    try {
      groups = await this.groupsOf(entry, username);
    } catch (err) {
      return this.unavailable('group search', err);
    }
    const user: ExternalUser = { username, groups };
    const email = first(entry[this.config.user.emailattribute]);
    if (email) user.email = email;
    if (this.config.admingroup !== undefined) user.admin = groups.includes(this.config.admingroup.toLowerCase());
    return user;
  }

  /** The user's entry, or null when the filter finds none or more than one (ambiguous: refused). */
  private async findUser(username: string): Promise<Entry | null> {
    const { user, group } = this.config;
    const filter = substitute(user.filter, { username });
    const attributes = [user.emailattribute, ...(group.membership === 'memberof' ? [group.memberofattribute] : [])];
    const { searchEntries } = await this.pool.use((client) =>
      client.search(user.basedn, { scope: user.scope, filter, attributes, sizeLimit: 2 }),
    );
    if (searchEntries.length > 1) {
      this.log.warn({ user: username, entries: searchEntries.length }, 'ldap: the user filter matches more than one entry; login refused');
      return null;
    }
    return searchEntries[0] ?? null;
  }

  /** Binds as `dn` on a connection of its own: true when the password is right. */
  private async bindAs(dn: string, password: string): Promise<boolean> {
    const client: Client = await connect(this.endpoint);
    try {
      this.binds++;
      await client.bind(dn, password);
      return true;
    } catch (err) {
      if (err instanceof ldapts().InvalidCredentialsError) return false;
      throw err;
    } finally {
      await discard(client);
    }
  }

  /** Lowercased group DNs and names. */
  private async groupsOf(entry: Entry, username: string): Promise<string[]> {
    const { group } = this.config;
    const names = new Set<string>();
    const add = (dn: string, name?: string) => {
      names.add(dn.toLowerCase());
      const rdn = name ?? firstRdnValue(dn, group.nameattribute);
      if (rdn) names.add(rdn.toLowerCase());
    };
    if (group.membership === 'memberof') {
      for (const dn of values(entry[group.memberofattribute])) add(dn);
      return [...names].sort();
    }
    const filter = substitute(group.filter ?? (group.nested ? NESTED_GROUPS : DIRECT_GROUPS), { username, dn: entry.dn });
    const { searchEntries } = await this.pool.use((client) =>
      client.search(group.basedn!, { scope: 'sub', filter, attributes: [group.nameattribute], paged: { pageSize: 500 } }),
    );
    for (const g of searchEntries) add(g.dn, first(g[group.nameattribute]));
    return [...names].sort();
  }

  private unavailable(step: string, err: unknown): 'unavailable' {
    this.log.warn(
      { step, url: this.config.url, err: err instanceof Error ? err.message : String(err) },
      `ldap: ${step} failed; logins through LDAP are refused until the directory answers`,
    );
    return 'unavailable';
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

/** `{username}` and `{dn}` in a filter, escaped per RFC 4515 (a login name cannot widen the filter). */
function substitute(filter: string, values: Record<string, string>): string {
  return filter.replace(/\{(username|dn)\}/g, (whole, key: string) =>
    values[key] === undefined ? whole : ldapts().Filter.escape(values[key]),
  );
}

function values(attribute: Entry[string] | undefined): string[] {
  if (attribute === undefined) return [];
  const list = Array.isArray(attribute) ? attribute : [attribute];
  return list.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v));
}

function first(attribute: Entry[string] | undefined): string | undefined {
  return values(attribute)[0];
}

/** The value of a DN's first RDN when its attribute is `attribute` (cn=Devs,ou=groups,… → Devs). */
export function firstRdnValue(dn: string, attribute: string): string | undefined {
  const m = /^\s*([^=,+]+?)\s*=((?:\\.|[^,+\\])*)/.exec(dn);
  if (!m || m[1]!.toLowerCase() !== attribute.toLowerCase()) return undefined;
  return m[2]!.trim().replace(/\\([0-9a-fA-F]{2}|.)/g, (_, c: string) => (c.length === 2 ? String.fromCharCode(parseInt(c, 16)) : c));
}
