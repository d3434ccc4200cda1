import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { KyselyAuthStore } from '../../src/metadata/auth-store.js';
import { createMysqlKysely, isConnectionFailure, openMysqlMetadata } from '../../src/metadata/mysql.js';
import { createTestDatabase, mysqlOptions, type TestDatabase } from '../helpers/mysql.js';
import { assertConcurrentFirstStarts, kyselySubject, runMetadataContract } from './contract.js';

runMetadataContract('MySQL', async () => {
  const database = await createTestDatabase();
  const store = await openMysqlMetadata(mysqlOptions(database.url));
  return kyselySubject(store, async () => {
    await store.close();
    await database.drop();
  });
});

describe('MySQL schema', () => {
  let database: TestDatabase;
  before(async () => {
    database = await createTestDatabase();
  });
  after(async () => database?.drop());

  it('four replicas starting at once on a fresh database all migrate successfully, each migration applied once', async () => {
    await assertConcurrentFirstStarts(() => openMysqlMetadata(mysqlOptions(database.url)));
  });

  it('names that are listed with `last` use a binary NO PAD collation (byte order, trailing spaces count)', async () => {
    const db = createMysqlKysely(mysqlOptions(database.url));
    try {
      const { rows } = await sql<{ table_name: string; column_name: string; collation_name: string | null }>`
        select table_name, column_name, collation_name from information_schema.columns
        where table_schema = database() and ((table_name = 'repositories' and column_name = 'name') or (table_name = 'tags' and column_name = 'name'))
        order by table_name`.execute(db);
      assert.equal(rows.length, 2);
      for (const row of rows) assert.match(String(row.collation_name), /^utf8mb4_(nopad_bin|0900_bin)$/);
      // Byte order: uppercase before lowercase, '-' < '.' < digits, and 'a' < 'a ' (NO PAD).
      const { rows: sorted } = await sql<{ v: string }>`
        select v from (select 'b' as v union all select 'B' union all select 'a-' union all select 'a.' union all select 'a0' union all select 'a' union all select 'a ') x
        order by v collate ${sql.raw(String(rows[0]!.collation_name))}`.execute(db);
      assert.deepEqual(
        sorted.map((r) => r.v),
        ['B', 'a', 'a ', 'a-', 'a.', 'a0', 'b'],
      );
    } finally {
      await db.destroy();
    }
  });

  it('foreign keys exist as constraints (MySQL 8.0 ignores inline REFERENCES)', async () => {
    const db = createMysqlKysely(mysqlOptions(database.url));
    try {
      const { rows } = await sql<{ t: string; p: string }>`
        select table_name as t, referenced_table_name as p from information_schema.referential_constraints
        where constraint_schema = database() order by table_name, referenced_table_name`.execute(db);
      const edges = rows.map((r) => `${r.t}->${r.p}`);
      for (const edge of [
        'repository_blobs->blobs',
        'repository_blobs->repositories',
        'manifests->repositories',
        'tags->manifests',
        'manifest_references->manifests',
        'project_members->projects',
        'project_members->users',
        'robots->projects',
        'refresh_tokens->users',
      ]) {
        assert.ok(edges.includes(edge), `${edge} in ${edges.join(', ')}`);
      }
    } finally {
      await db.destroy();
    }
  });

  it('BIGINT and SUM values come back as numbers; unsafe integers are refused', async () => {
    const db = createMysqlKysely(mysqlOptions(database.url));
    try {
      const { rows } = await sql<{
        n: unknown;
        big: unknown;
        total: unknown;
      }>`select count(*) as n, cast(9007199254740991 as signed) as big, sum(cast(2 as signed)) as total from (select 1 as x) one`.execute(
        db,
      );
      assert.deepEqual(rows[0], { n: 1, big: Number.MAX_SAFE_INTEGER, total: 2 });
      await assert.rejects(sql`select cast(9007199254740993 as signed) as big`.execute(db), /does not fit a JavaScript number/);
    } finally {
      await db.destroy();
    }
  });

  it('auth store: create-if-absent reports duplicates exactly, updates count matched rows', async () => {
    const store = await openMysqlMetadata(mysqlOptions(database.url));
    try {
      const auth = new KyselyAuthStore(store.db, 'mysql');
      const user = { username: 'alice', passwordHash: 'x', admin: false };
      assert.equal(await auth.createUser(user), true);
      assert.equal(await auth.createUser(user), false);
      assert.equal(await auth.setAdmin('alice', false), true, 'unchanged value still counts as found');
      assert.equal(await auth.setAdmin('nobody', true), false);
      assert.equal(await auth.createProject({ name: 'proj', public: false, createdBy: 'alice' }, 'alice'), true);
      assert.equal(await auth.createProject({ name: 'proj', public: true, createdBy: 'alice' }, 'alice'), false);
      await auth.setMember('proj', 'alice', 'developer' as never);
      assert.equal(await auth.getRole('proj', 'alice'), 'developer');
      const robot = {
        name: 'bot',
        project: 'proj',
        secretHash: 'h',
        permissions: [],
        description: null,
        expiresAt: null,
        createdBy: 'alice',
      };
      assert.equal(await auth.createRobot(robot), true);
      assert.equal(await auth.createRobot(robot), false);
      await assert.rejects(
        auth.createRobot({ ...robot, name: 'bot2', project: 'no-such-project' }),
        /foreign key/i,
        'other errors are not swallowed',
      );
      assert.equal(await auth.deleteProject('proj'), true);
      assert.equal(await auth.deleteUser('alice'), true);
    } finally {
      await store.close();
    }
  });

  it('an unreachable server is a 503 UNAVAILABLE, fast', async () => {
    const started = Date.now();
    const db = createMysqlKysely({ ...mysqlOptions('mysql://root@127.0.0.1:1/none'), connectTimeoutMs: 2_000 });
    try {
      await assert.rejects(sql`select 1`.execute(db), (err: Error & { code?: string; cause?: unknown }) => {
        assert.equal(err.code, 'UNAVAILABLE');
        assert.ok(isConnectionFailure(err.cause), String(err.cause));
        return true;
      });
      assert.ok(Date.now() - started < 2_000);
    } finally {
      await db.destroy();
    }
  });
});
