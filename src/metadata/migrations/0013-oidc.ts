import type { Kysely } from 'kysely';
import { foreignKeys, schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * OpenID Connect single sign-on (issue 17, src/auth/oidc):
 * - `oidc_users`: the provider identity (provider name, `sub`) behind each user an OIDC login
 *   created, with the email and groups of the last login. The (provider, subject) pair is
 *   unique: a subject owns one username, and a username (its primary key) one subject, for
 *   good (kept when the user is deleted).
 * - `oidc_cli_secrets`: each OIDC user's registry CLI secret as a sha256, with its expiry.
 * CLI secrets are deleted with their user. MySQL keys hold at most 3072 bytes: (64 + 255) characters.
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);
  // No foreign key to users: the link is made when the provider's token is verified, before the
  // users row exists (src/auth/sources.ts creates it), and it outlives the row on purpose: a
  // name, once bound to a subject, is never handed to another subject of any provider.
  await db.schema
    .createTable('oidc_users')
    .addColumn('username', t.key(255), (c) => c.primaryKey())
    .addColumn('provider', t.key(64), (c) => c.notNull())
    .addColumn('subject', t.key(255), (c) => c.notNull())
    .addColumn('email', t.text)
    .addColumn('groups', t.text, (c) => c.notNull())
    .addColumn('last_login_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('oidc_users_subject').on('oidc_users').columns(['provider', 'subject']).unique().execute();

  const secretsFk = foreignKeys(ctx.dialect);
  await db.schema
    .createTable('oidc_cli_secrets')
    .addColumn('username', t.key(255), (c) => secretsFk.column(c.primaryKey(), 'username', 'users.username', 'cascade'))
    .addColumn('hash', t.plainKey(64), (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .$call(secretsFk.table('oidc_cli_secrets'))
    .execute();
}
