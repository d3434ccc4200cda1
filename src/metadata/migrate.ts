import { Migrator, type Kysely, type Migration } from 'kysely';
import * as initial from './migrations/0001-initial.js';

export type Dialect = 'sqlite' | 'postgres';

export interface MigrationContext {
  dialect: Dialect;
}

type MigrationModule = { up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> };

/** Every schema version, in order. Add new files as 0002-…, never edit a released one. */
const MIGRATIONS: Record<string, MigrationModule> = {
  '0001-initial': initial,
};

/**
 * Brings the schema up to date. Kysely's migrator holds a lock row while it runs,
 * so several processes starting at once apply each migration exactly once.
 */
export async function migrateToLatest(db: Kysely<unknown>, dialect: Dialect): Promise<string[]> {
  const ctx: MigrationContext = { dialect };
  const migrations: Record<string, Migration> = {};
  for (const [name, mod] of Object.entries(MIGRATIONS)) {
    migrations[name] = { up: (trx) => mod.up(trx, ctx) };
  }
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`metadata migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message ?? String(error)}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
