import type { Kysely } from 'kysely';
import { foreignKeys, schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * Identity federation (issue 17, src/auth/bindings.ts):
 * - `identity_bindings`: an external subject (a directory group, an identity, or a SPIFFE ID
 *   prefix) of an identity source (`ldap`, `oidc:<provider>`, `spiffe`) → a project role,
 *   managed through the admin API. One binding per (source, kind, subject, project). Deleted
 *   with their project.
 * - `identity_grants`: the project roles an external user holds through bindings, as of the
 *   user's last verified login (one row per user and project: the strongest role of every
 *   binding that matched). Replaced as a whole at each login; read beside `project_members`
 *   when a role is looked up. Deleted with their user or project.
 * MySQL keys hold at most 3072 bytes (4 per character): the unique key is 100 + 16 + 384 + 255
 * characters.
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const pg = ctx.dialect === 'postgres';
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);
  const bindingsFk = foreignKeys(ctx.dialect);

  await db.schema
    .createTable('identity_bindings')
    .addColumn('id', t.serialId, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('source', t.key(100), (c) => c.notNull())
    .addColumn('kind', t.plainKey(16), (c) => c.notNull())
    .addColumn('subject', t.key(384), (c) => c.notNull())
    .addColumn('project', t.key(255), (c) => bindingsFk.column(c.notNull(), 'project', 'projects.name', 'cascade'))
    .addColumn('role', t.plainKey(32), (c) => c.notNull())
    .addColumn('created_by', t.text, (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .$call(bindingsFk.table('identity_bindings'))
    .execute();
  await db.schema
    .createIndex('identity_bindings_subject')
    .on('identity_bindings')
    .columns(['source', 'kind', 'subject', 'project'])
    .unique()
    .execute();
  await db.schema.createIndex('identity_bindings_project').on('identity_bindings').column('project').execute();

  const grantsFk = foreignKeys(ctx.dialect);
  await db.schema
    .createTable('identity_grants')
    .addColumn('username', t.key(255), (c) => grantsFk.column(c.notNull(), 'username', 'users.username', 'cascade'))
    .addColumn('project', t.key(255), (c) => grantsFk.column(c.notNull(), 'project', 'projects.name', 'cascade'))
    .addColumn('role', t.plainKey(32), (c) => c.notNull())
    .addColumn('source', t.key(100), (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('identity_grants_pk', ['username', 'project'])
    .$call(grantsFk.table('identity_grants'))
    .execute();
  await db.schema.createIndex('identity_grants_project').on('identity_grants').columns(['project', 'username']).execute();
}
