import type { Kysely } from 'kysely';
import { foreignKeys, schemaTypes } from '../dialect.js';
import type { MigrationContext } from '../migrate.js';

/**
 * The initial schema. Portable DDL for SQLite, PostgreSQL and MySQL/MariaDB; names that
 * are listed with keyset pagination use byte-order collation ("C", BINARY, binary NO PAD)
 * so `last` means the same thing on every back end. MySQL keys need a length: repository
 * names are at most 255 characters (core/names.ts), tags 128, digests 255 (sha512 is 135).
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const pg = ctx.dialect === 'postgres';
  const t = schemaTypes(ctx.dialect, ctx.mysqlCollation);
  const fk = foreignKeys(ctx.dialect);
  const name = t.key(255);
  const digest = t.key(255);
  const tag = t.key(128);
  const text = t.text;
  const bytes = t.bytes;

  await db.schema
    .createTable('repositories')
    .addColumn('id', t.serialId, (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('name', name, (c) => c.notNull().unique())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('blobs')
    .addColumn('digest', digest, (c) => c.primaryKey())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('repository_blobs')
    .addColumn('repository_id', 'bigint', (c) => fk.column(c.notNull(), 'repository_id', 'repositories.id', 'cascade'))
    .addColumn('digest', digest, (c) => fk.column(c.notNull(), 'digest', 'blobs.digest'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('repository_blobs_pk', ['repository_id', 'digest'])
    .$call(fk.table('repository_blobs'))
    .execute();
  await db.schema.createIndex('repository_blobs_digest').on('repository_blobs').column('digest').execute();

  await db.schema
    .createTable('manifests')
    .addColumn('repository_id', 'bigint', (c) => fk.column(c.notNull(), 'repository_id', 'repositories.id', 'cascade'))
    .addColumn('digest', digest, (c) => c.notNull())
    .addColumn('media_type', text, (c) => c.notNull())
    .addColumn('artifact_type', text)
    .addColumn('subject_digest', digest)
    .addColumn('annotations', text)
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('payload', bytes, (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('manifests_pk', ['repository_id', 'digest'])
    .$call(fk.table('manifests'))
    .execute();
  await db.schema.createIndex('manifests_subject').on('manifests').columns(['repository_id', 'subject_digest']).execute();

  await db.schema
    .createTable('manifest_references')
    .addColumn('repository_id', 'bigint', (c) => c.notNull())
    .addColumn('manifest_digest', digest, (c) => c.notNull())
    .addColumn('child_digest', digest, (c) => c.notNull())
    .addColumn('kind', text, (c) => c.notNull())
    .addPrimaryKeyConstraint('manifest_references_pk', ['repository_id', 'manifest_digest', 'child_digest'])
    .addForeignKeyConstraint(
      'manifest_references_manifest_fk',
      ['repository_id', 'manifest_digest'],
      'manifests',
      ['repository_id', 'digest'],
      (fk) => fk.onDelete('cascade'),
    )
    .execute();
  await db.schema.createIndex('manifest_references_child').on('manifest_references').columns(['repository_id', 'child_digest']).execute();

  await db.schema
    .createTable('tags')
    .addColumn('repository_id', 'bigint', (c) => c.notNull())
    .addColumn('name', tag, (c) => c.notNull())
    .addColumn('manifest_digest', digest, (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('tags_pk', ['repository_id', 'name'])
    .addForeignKeyConstraint('tags_manifest_fk', ['repository_id', 'manifest_digest'], 'manifests', ['repository_id', 'digest'], (fk) =>
      fk.onDelete('cascade'),
    )
    .execute();
  await db.schema.createIndex('tags_manifest').on('tags').columns(['repository_id', 'manifest_digest']).execute();

  await db.schema
    .createTable('uploads')
    .addColumn('id', t.plainKey(64), (c) => c.primaryKey())
    .addColumn('repository', name, (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('staging', text)
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('uploads_updated').on('uploads').column('updated_at').execute();
}
