import type { Kysely } from 'kysely';
import { foreignKeys, schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * Identity and access: users, projects and their members, robot accounts, token signing
 * keys, refresh tokens and the audit log. Booleans are 0/1 integers and times epoch
 * milliseconds, so the DDL and the queries are the same on SQLite, PostgreSQL and MySQL.
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const pg = ctx.dialect === 'postgres';
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);
  const fk = foreignKeys(ctx.dialect);
  // User, project and robot names (validated much shorter), key ids and token hashes.
  const key = t.key(255);
  const text = t.text;

  await db.schema
    .createTable('users')
    .addColumn('username', key, (c) => c.primaryKey())
    .addColumn('password_hash', text, (c) => c.notNull())
    .addColumn('admin', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('projects')
    .addColumn('name', key, (c) => c.primaryKey())
    .addColumn('public', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_by', text)
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('project_members')
    .addColumn('project', key, (c) => fk.column(c.notNull(), 'project', 'projects.name', 'cascade'))
    .addColumn('username', key, (c) => fk.column(c.notNull(), 'username', 'users.username', 'cascade'))
    .addColumn('role', text, (c) => c.notNull())
    .addPrimaryKeyConstraint('project_members_pk', ['project', 'username'])
    .$call(fk.table('project_members'))
    .execute();
  await db.schema.createIndex('project_members_user').on('project_members').column('username').execute();

  await db.schema
    .createTable('robots')
    .addColumn('name', key, (c) => c.primaryKey())
    .addColumn('project', key, (c) => fk.column(c, 'project', 'projects.name', 'cascade'))
    .addColumn('secret_hash', text, (c) => c.notNull())
    .addColumn('permissions', text, (c) => c.notNull())
    .addColumn('description', text)
    .addColumn('expires_at', 'bigint')
    .addColumn('created_by', text, (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .$call(fk.table('robots'))
    .execute();
  await db.schema.createIndex('robots_project').on('robots').column('project').execute();

  await db.schema
    .createTable('signing_keys')
    .addColumn('kid', t.plainKey(255), (c) => c.primaryKey())
    .addColumn('private_jwk', text, (c) => c.notNull())
    .addColumn('public_jwk', text, (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('retired_at', 'bigint')
    .execute();

  await db.schema
    .createTable('refresh_tokens')
    .addColumn('hash', t.plainKey(255), (c) => c.primaryKey())
    .addColumn('username', key, (c) => fk.column(c.notNull(), 'username', 'users.username', 'cascade'))
    .addColumn('client_id', text, (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .$call(fk.table('refresh_tokens'))
    .execute();
  await db.schema.createIndex('refresh_tokens_user').on('refresh_tokens').column('username').execute();

  await db.schema
    .createTable('audit_log')
    .addColumn('id', t.serialId, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('actor', text, (c) => c.notNull())
    .addColumn('action', text, (c) => c.notNull())
    .addColumn('target', text, (c) => c.notNull())
    .addColumn('ip', text)
    .addColumn('detail', text)
    .execute();
}
