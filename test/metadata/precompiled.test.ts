import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { precompiled } from '../../src/metadata/precompiled.js';

interface Db {
  people: { name: string; city: string; age: number };
}

describe('precompiled queries', () => {
  let db: Kysely<Db>;

  before(async () => {
    db = new Kysely<Db>({ dialect: new SqliteDialect({ database: new SQLite(':memory:') }) });
    await db.schema.createTable('people').addColumn('name', 'text').addColumn('city', 'text').addColumn('age', 'integer').execute();
    await db
      .insertInto('people')
      .values([
        { name: 'ada', city: 'london', age: 36 },
        { name: 'alan', city: 'london', age: 41 },
        { name: 'grace', city: 'new york', age: 85 },
      ])
      .execute();
  });
  after(() => db.destroy());

  it('binds each call its own arguments, in the order the builder used them', async () => {
    const byCityAndName = precompiled(db, (city: string, name: string) =>
      db.selectFrom('people').select(['name', 'age']).where('name', '=', name).where('city', '=', city),
    );
    assert.deepEqual(await byCityAndName('london', 'alan'), [{ name: 'alan', age: 41 }]);
    assert.deepEqual(await byCityAndName('new york', 'grace'), [{ name: 'grace', age: 85 }]);
    assert.deepEqual(await byCityAndName('new york', 'ada'), []);
  });

  it('keeps the constants the builder bound itself', async () => {
    const olderIn = precompiled(db, (city: string) =>
      db.selectFrom('people').select('name').where('city', '=', city).where('age', '>', 40),
    );
    assert.deepEqual(await olderIn('london'), [{ name: 'alan' }]);
  });

  it('refuses a builder that uses an argument twice or not at all, instead of binding wrong values', async () => {
    const twice = precompiled(db, (name: string) =>
      db.selectFrom('people').select('age').where('name', '=', name).where('city', '=', name),
    );
    await assert.rejects(twice('ada'), /argument 0 2 times/);
    const unused = precompiled(db, (_name: string) => db.selectFrom('people').select('age'));
    await assert.rejects(unused('ada'), /argument 0 0 times/);
  });
});
