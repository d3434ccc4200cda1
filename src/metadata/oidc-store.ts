import type { CliSecretRecord, OidcLink, OidcStore } from '../auth/oidc/ports.js';
import type { Kysely } from 'kysely';
import { insertIfAbsent, insertOrUpdate, proposedValue, type Dialect } from './dialect.js';
import type { Database } from './tables.js';

/** Row types of migrations/0010-oidc.ts. */
export interface OidcTables {
  oidc_users: { username: string; provider: string; subject: string; email: string | null; groups: string; last_login_at: number };
  oidc_cli_secrets: { username: string; hash: string; created_at: number; expires_at: number };
}

/** OidcStore on Kysely, the same queries on SQLite, PostgreSQL and MySQL. */
export class KyselyOidcStore implements OidcStore {
  private readonly db: Kysely<Database & OidcTables>;

  constructor(
    db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {
    this.db = db as unknown as Kysely<Database & OidcTables>;
  }

  async getLink(username: string): Promise<OidcLink | null> {
    const row = await this.db.selectFrom('oidc_users').selectAll().where('username', '=', username).executeTakeFirst();
    if (!row) return null;
    return {
      username: row.username,
      provider: row.provider,
      subject: row.subject,
      email: row.email,
      groups: parseGroups(row.groups),
      lastLoginAt: new Date(Number(row.last_login_at)),
    };
  }

  createLink(link: OidcLink): Promise<boolean> {
    return insertIfAbsent(this.db.insertInto('oidc_users').values(linkRow(link)), this.dialect, ['username']);
  }

  async updateLink(link: OidcLink): Promise<void> {
    await this.db
      .updateTable('oidc_users')
      .set({ email: link.email, groups: JSON.stringify(link.groups), last_login_at: link.lastLoginAt.getTime() })
      .where('username', '=', link.username)
      .where('provider', '=', link.provider)
      .where('subject', '=', link.subject)
      .execute();
  }

  async getCliSecret(username: string): Promise<CliSecretRecord | null> {
    const row = await this.db.selectFrom('oidc_cli_secrets').selectAll().where('username', '=', username).executeTakeFirst();
    return row
      ? { username: row.username, hash: row.hash, createdAt: new Date(Number(row.created_at)), expiresAt: new Date(Number(row.expires_at)) }
      : null;
  }

  async saveCliSecret(secret: CliSecretRecord): Promise<void> {
    const row = {
      username: secret.username,
      hash: secret.hash,
      created_at: secret.createdAt.getTime(),
      expires_at: secret.expiresAt.getTime(),
    };
    await insertOrUpdate(this.db.insertInto('oidc_cli_secrets').values(row), this.dialect, ['username'], {
      hash: proposedValue('hash', this.dialect),
      created_at: proposedValue('created_at', this.dialect),
      expires_at: proposedValue('expires_at', this.dialect),
    }).execute();
  }

  async deleteCliSecret(username: string): Promise<boolean> {
    const result = await this.db.deleteFrom('oidc_cli_secrets').where('username', '=', username).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}

function linkRow(link: OidcLink): OidcTables['oidc_users'] {
  return {
    username: link.username,
    provider: link.provider,
    subject: link.subject,
    email: link.email,
    groups: JSON.stringify(link.groups),
    last_login_at: link.lastLoginAt.getTime(),
  };
}

function parseGroups(text: string): string[] {
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value.filter((g): g is string => typeof g === 'string') : [];
  } catch {
    return [];
  }
}
