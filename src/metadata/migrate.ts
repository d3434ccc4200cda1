import { Migrator, sql, type Kysely, type Migration } from 'kysely';
import * as initial from './migrations/0001-initial.js';
import * as gc from './migrations/0002-gc.js';
import * as auth from './migrations/0003-auth.js';

export type Dialect = 'sqlite' | 'postgres';

export interface MigrationContext {
  dialect: Dialect;
}

type MigrationModule = { up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> };

/** Every schema version, in order. Add new files as 0002-…, never edit a released one. */
const MIGRATIONS: Record<string, MigrationModule> = {
  '0001-initial': initial,
  '0002-gc': gc,
  '0003-auth': auth,
};

/**
 * Brings the schema up to date, applying each migration exactly once even when several
 * replicas start at the same moment: on PostgreSQL the whole run holds a session advisory
 * lock (Kysely's own lock only starts after it has created its bookkeeping tables, and two
 * concurrent `CREATE TABLE IF NOT EXISTS` can still collide); SQLite serialises writers itself.
 */
export async function migrateToLatest(db: Kysely<unknown>, dialect: Dialect): Promise<string[]> {
  if (dialect === 'sqlite') return runMigrator(db, dialect);
  return db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(${sql.lit(MIGRATION_LOCK_KEY)})`.execute(conn);
    try {
      return await runMigrator(conn, dialect);
    } finally {
      await sql`select pg_advisory_unlock(${sql.lit(MIGRATION_LOCK_KEY)})`.execute(conn);
    }
  });
}

/** Advisory lock key for schema migrations (any constant other tools are unlikely to use: "berthmig" in hex). */
const MIGRATION_LOCK_KEY = BigInt('0x626572746d6967');

async function runMigrator(db: Kysely<unknown>, dialect: Dialect): Promise<string[]> {
  const ctx: MigrationContext = { dialect };
  const migrations: Record<string, Migration> = {};
  for (const [name, mod] of Object.entries(MIGRATIONS)) {
    migrations[name] = { up: (trx) => mod.up(trx, ctx) };
  }
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`metadata migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message ?? String(error)}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Names of every migration this build knows, in order. */
export function migrationNames(): string[] {
  return Object.keys(MIGRATIONS);
}
