import { sql, type Kysely } from 'kysely';
import type { MigrationContext } from '../migrate.js';

/**
 * The initial schema. Portable DDL for SQLite and PostgreSQL; names that are listed
 * with keyset pagination use byte-order ("C") collation so `last` means the same
 * thing on both back ends.
 */
export async function up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> {
  const pg = ctx.dialect === 'postgres';
  const text = pg ? sql`text collate "C"` : sql`text`;
  const bytes = pg ? sql`bytea` : sql`blob`;

  await db.schema
    .createTable('repositories')
    .addColumn('id', pg ? 'bigserial' : 'integer', (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('name', text, (c) => c.notNull().unique())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('blobs')
    .addColumn('digest', text, (c) => c.primaryKey())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('repository_blobs')
    .addColumn('repository_id', 'bigint', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
    .addColumn('digest', text, (c) => c.notNull().references('blobs.digest'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('repository_blobs_pk', ['repository_id', 'digest'])
    .execute();
  await db.schema.createIndex('repository_blobs_digest').on('repository_blobs').column('digest').execute();

  await db.schema
    .createTable('manifests')
    .addColumn('repository_id', 'bigint', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
    .addColumn('digest', text, (c) => c.notNull())
    .addColumn('media_type', 'text', (c) => c.notNull())
    .addColumn('artifact_type', 'text')
    .addColumn('subject_digest', text)
    .addColumn('annotations', 'text')
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('payload', bytes, (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('manifests_pk', ['repository_id', 'digest'])
    .execute();
  await db.schema.createIndex('manifests_subject').on('manifests').columns(['repository_id', 'subject_digest']).execute();

  await db.schema
    .createTable('manifest_references')
    .addColumn('repository_id', 'bigint', (c) => c.notNull())
    .addColumn('manifest_digest', text, (c) => c.notNull())
    .addColumn('child_digest', text, (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('manifest_references_pk', ['repository_id', 'manifest_digest', 'child_digest'])
    .addForeignKeyConstraint('manifest_references_manifest_fk', ['repository_id', 'manifest_digest'], 'manifests', ['repository_id', 'digest'], (fk) => fk.onDelete('cascade'))
    .execute();
  await db.schema.createIndex('manifest_references_child').on('manifest_references').columns(['repository_id', 'child_digest']).execute();

  await db.schema
    .createTable('tags')
    .addColumn('repository_id', 'bigint', (c) => c.notNull())
    .addColumn('name', text, (c) => c.notNull())
    .addColumn('manifest_digest', text, (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('tags_pk', ['repository_id', 'name'])
    .addForeignKeyConstraint('tags_manifest_fk', ['repository_id', 'manifest_digest'], 'manifests', ['repository_id', 'digest'], (fk) => fk.onDelete('cascade'))
    .execute();
  await db.schema.createIndex('tags_manifest').on('tags').columns(['repository_id', 'manifest_digest']).execute();

  await db.schema
    .createTable('uploads')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('repository', text, (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('staging', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('uploads_updated').on('uploads').column('updated_at').execute();
}
