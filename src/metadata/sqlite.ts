import { mkdirSync } from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect, type Driver } from 'kysely';
import type { Database } from './tables.js';
import { KyselyMetadataStore } from './kysely-store.js';
import { migrateToLatest } from './migrate.js';

/** Opens (creating if needed) the embedded SQLite metadata database and migrates it. */
export async function openSqliteMetadata(file: string): Promise<KyselyMetadataStore> {
  if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
  const sqlite = new SQLite(file);
  // WAL lets readers run beside the writer; synchronous=FULL makes every committed
  // transaction survive a crash or power loss; busy_timeout lets `berth gc` share the file.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SafeRollbackSqliteDialect(sqlite) });
  await migrateToLatest(db as Kysely<unknown>, 'sqlite');
  return new KyselyMetadataStore(db, 'sqlite');
}

/**
 * SQLite rolls a transaction back by itself on some errors (SQLITE_FULL, SQLITE_IOERR…).
 * Kysely's ROLLBACK then fails with "no transaction is active", and that error replaced
 * the real one: a full disk during a manifest PUT answered 500 instead of 507. Roll back
 * only while a transaction is still open, so the original error reaches the caller.
 */
class SafeRollbackSqliteDialect extends SqliteDialect {
  constructor(private readonly sqlite: SQLite.Database) {
    super({ database: sqlite });
  }

  override createDriver(): Driver {
    const driver = super.createDriver();
    const rollback = driver.rollbackTransaction.bind(driver);
    driver.rollbackTransaction = async (connection) => {
      if (this.sqlite.inTransaction) await rollback(connection);
    };
    return driver;
  }
}
