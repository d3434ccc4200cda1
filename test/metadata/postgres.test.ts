import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { createPostgresKysely, openPostgresMetadata } from '../../src/metadata/postgres.js';
import { createTestDatabase, postgresOptions, type TestDatabase } from '../helpers/postgres.js';
import { assertConcurrentFirstStarts, kyselySubject, runMetadataContract } from './contract.js';

runMetadataContract('PostgreSQL', async () => {
  const database = await createTestDatabase();
  const store = await openPostgresMetadata(postgresOptions(database.url));
  return kyselySubject(store, async () => {
    await store.close();
    await database.drop();
  });
});

describe('PostgreSQL schema', () => {
  let database: TestDatabase;
  before(async () => {
    database = await createTestDatabase();
  });
  after(async () => database?.drop());

  it('four replicas starting at once on a fresh database all migrate successfully, each migration applied once', async () => {
    await assertConcurrentFirstStarts(() => openPostgresMetadata(postgresOptions(database.url)));
  });

  it('names that are listed with `last` use byte-order ("C") collation', async () => {
    const store = await openPostgresMetadata(postgresOptions(database.url));
    await store.close();
    const db = createPostgresKysely(postgresOptions(database.url));
    try {
      const { rows } = await sql<{ table_name: string; column_name: string; collation_name: string | null }>`
        select table_name, column_name, collation_name from information_schema.columns
        where table_schema = 'public' and (table_name, column_name) in (('repositories', 'name'), ('tags', 'name'))
        order by table_name`.execute(db);
      assert.deepEqual(
        rows.map((r) => [r.table_name, r.column_name, r.collation_name]),
        [
          ['repositories', 'name', 'C'],
          ['tags', 'name', 'C'],
        ],
      );
    } finally {
      await db.destroy();
    }
  });

  it('BIGINT values come back as numbers (count(*) included)', async () => {
    const db = createPostgresKysely(postgresOptions(database.url));
    try {
      const { rows } = await sql<{
        n: unknown;
        big: unknown;
      }>`select count(*) as n, 9007199254740991::bigint as big from (values (1)) as one(x)`.execute(db);
      assert.deepEqual(rows[0], { n: 1, big: Number.MAX_SAFE_INTEGER });
    } finally {
      await db.destroy();
    }
  });
});
