import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { CompiledQuery, Kysely, SqliteDialect, type DatabaseConnection, type Driver, type SqliteDatabase } from 'kysely';
import { asStorageFull } from './errors.js';
import type { Database } from './tables.js';
import { KyselyMetadataStore } from './kysely-store.js';
import { migrateToLatest } from './migrate.js';
import type { MetadataObserver } from '../metrics/ports.js';
import { observedDialect } from './observe.js';

/** Opens (creating if needed) the embedded SQLite metadata database and migrates it. */
export async function openSqliteMetadata(file: string, observer?: MetadataObserver): Promise<KyselyMetadataStore> {
  if (file !== ':memory:') createPrivately(file);
  const sqlite = new SQLite(file);
  // WAL lets readers run beside the writer; synchronous=FULL makes every committed
  // transaction survive a crash or power loss; busy_timeout lets `berth gc` share the file.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  // Overwrite deleted and replaced row content with zeros where that costs no extra I/O: a
  // signing key sealed at start (docs/security.md#secrets-at-rest) leaves no plain copy in the page.
  sqlite.pragma('secure_delete = FAST');
  const db = new Kysely<Database>({ dialect: observedDialect(new SafeRollbackSqliteDialect(sqlite), observer) });
  await migrateToLatest(db as Kysely<unknown>, 'sqlite');
  return new KyselyMetadataStore(db, 'sqlite');
}

/**
 * The database holds password hashes and token signing keys: its directory is created 0700
 * and the file 0600 before SQLite opens it (SQLite itself would create it 0644). SQLite gives
 * the -wal and -shm files the main file's mode (test/unit/data-permissions.test.ts checks).
 * An existing file keeps its mode; the server warns at start when it is looser.
 */
function createPrivately(file: string): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: DATA_DIR_MODE });
  closeSync(openSync(file, 'a', DATA_FILE_MODE));
}

/** Modes of what Berth creates for its data (the same numbers as src/secrets/permissions.ts). */
const DATA_DIR_MODE = 0o700;
const DATA_FILE_MODE = 0o600;

/**
 * SQLite rolls a transaction back by itself on some errors (SQLITE_FULL, SQLITE_IOERR…).
 * Kysely's ROLLBACK then fails with "no transaction is active", and that error replaced
 * the real one: a full disk during a manifest PUT answered 500 instead of 507. Roll back
 * only while a transaction is still open, so the original error reaches the caller.
 */
class SafeRollbackSqliteDialect extends SqliteDialect {
  constructor(private readonly sqlite: SQLite.Database) {
    super({ database: withStatementCache(sqlite) });
  }

  override createDriver(): Driver {
    const driver = super.createDriver();
    const rollback = driver.rollbackTransaction.bind(driver);
    // BEGIN IMMEDIATE takes the write lock up front. A deferred BEGIN that reads, then writes,
    // fails with SQLITE_BUSY (which busy_timeout cannot wait out) when another process —
    // `berth gc`, `berth fsck --repair` — committed in between.
    driver.beginTransaction = async (connection) => {
      await connection.executeQuery(CompiledQuery.raw('begin immediate'));
    };
    driver.rollbackTransaction = async (connection) => {
      if (this.sqlite.inTransaction) await rollback(connection);
    };
    // A full disk is a domain condition (StorageFullError → 507), not a driver code.
    // SQLite has one connection: wrap it once, so a query allocates no wrapper (and metrics,
    // observe.ts, patch the same object every time).
    const acquire = driver.acquireConnection.bind(driver);
    const wrapped = new WeakMap<DatabaseConnection, DatabaseConnection>();
    driver.acquireConnection = () =>
      acquire().then((connection) => {
        let aware = wrapped.get(connection);
        if (!aware) wrapped.set(connection, (aware = fullDiskAware(connection)));
        return aware;
      });
    return driver;
  }
}

function fullDiskAware(connection: DatabaseConnection): DatabaseConnection {
  return {
    executeQuery: async (query) => {
      try {
        return await connection.executeQuery(query);
      } catch (err) {
        throw asStorageFull(err);
      }
    },
    streamQuery: (query, chunkSize) => connection.streamQuery(query, chunkSize),
  };
}

/** Distinct SQL texts kept prepared; queries with `IN (…)` lists of varying length are the only churn. */
const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely prepares every query anew; with better-sqlite3 that compile step was ~14% of a
 * manifest GET (bench profile). Statements are reusable, so keep them by SQL text,
 * evicting the oldest once the cache is full.
 */
function withStatementCache(sqlite: SQLite.Database): SqliteDatabase {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(sqlText: string) {
      let statement = cache.get(sqlText);
      if (!statement) {
        statement = sqlite.prepare(sqlText);
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
        cache.set(sqlText, statement);
      }
      return statement;
    },
  };
}
