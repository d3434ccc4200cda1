import { Migrator, sql, type Kysely, type Migration } from 'kysely';
import { mysqlBinaryCollation, type Dialect } from './dialect.js';
import * as initial from './migrations/0001-initial.js';
import * as gc from './migrations/0002-gc.js';
import * as auth from './migrations/0003-auth.js';
import * as seams from './migrations/0004-seams.js';
import * as quotas from './migrations/0005-quotas.js';
import * as tags from './migrations/0006-tags.js';
import * as retention from './migrations/0007-retention.js';
import * as webhooks from './migrations/0008-webhooks.js';
import * as audit from './migrations/0009-audit.js';
import * as signatures from './migrations/0010-signatures.js';
import * as identity from './migrations/0011-identity.js';
import * as vulndb from './migrations/0012-vulndb.js';
import * as oidc from './migrations/0013-oidc.js';
import * as uploadReceipts from './migrations/0014-upload-receipts.js';
import * as scans from './migrations/0015-scans.js';
import * as supplyChain from './migrations/0016-supply-chain.js';
import * as vulnPolicies from './migrations/0017-vuln-policies.js';
import * as registries from './migrations/0019-registries.js';
import * as proxyCache from './migrations/0020-proxy-cache.js';
import * as replication from './migrations/0021-replication.js';
import * as proxyCacheCore from './migrations/0022-proxy-cache-core.js';
import * as proxyKeepDeletedTags from './migrations/0023-proxy-keep-deleted-tags.js';
import * as ui from './migrations/0024-ui.js';
import * as uploadWriters from './migrations/0026-upload-writers.js';
import * as searchIndex from './migrations/0027-search-index.js';

export type { Dialect } from './dialect.js';

export interface MigrationContext {
  dialect: Dialect;
  /** MySQL/MariaDB only: the binary NO PAD collation of identifier columns (see dialect.ts schemaTypes). */
  mysqlCollation?: string;
}

type MigrationModule = { up(db: Kysely<unknown>, ctx: MigrationContext): Promise<void> };

/** Every schema version, in order. Add new files as 0002-…, never edit a released one. */
const MIGRATIONS: Record<string, MigrationModule> = {
  '0001-initial': initial,
  '0002-gc': gc,
  '0003-auth': auth,
  '0004-seams': seams,
  '0005-quotas': quotas,
  '0006-tags': tags,
  '0007-retention': retention,
  '0008-webhooks': webhooks,
  '0009-audit': audit,
  '0010-signatures': signatures,
  '0011-identity': identity,
  '0012-vulndb': vulndb,
  '0013-oidc': oidc,
  '0014-upload-receipts': uploadReceipts,
  '0015-scans': scans,
  '0016-supply-chain': supplyChain,
  '0017-vuln-policies': vulnPolicies,
  '0019-registries': registries,
  '0020-proxy-cache': proxyCache,
  '0021-replication': replication,
  '0022-proxy-cache-core': proxyCacheCore,
  '0023-proxy-keep-deleted-tags': proxyKeepDeletedTags,
  '0024-ui': ui,
  '0026-upload-writers': uploadWriters,
  '0027-search-index': searchIndex,
};

/**
 * Brings the schema up to date, applying each migration exactly once even when several
 * replicas start at the same moment: on PostgreSQL the whole run holds a session advisory
 * lock, on MySQL/MariaDB a named lock (`GET_LOCK`) of the connection that migrates (Kysely's
 * own lock only starts after it has created its bookkeeping tables, and two concurrent
 * `CREATE TABLE IF NOT EXISTS` can still collide); SQLite serialises writers itself.
 */
export async function migrateToLatest(db: Kysely<unknown>, dialect: Dialect): Promise<string[]> {
  if (dialect === 'sqlite') return runMigrator(db, dialect);
  if (dialect === 'mysql') return migrateMysqlLocked(db);
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

/** Name of the MySQL/MariaDB named lock held while migrating (names are server-wide, so it names the database). */
const MYSQL_LOCK_PREFIX = 'berth-migrate:';
/** How long a replica waits for another one's migration run before giving up. */
const MYSQL_LOCK_WAIT_SECONDS = 3600;

async function migrateMysqlLocked(db: Kysely<unknown>): Promise<string[]> {
  return db.connection().execute(async (conn) => {
    // GET_LOCK names are global to the server: include the database so two registries on one server do not wait for each other.
    const lockName = sql`left(concat(${MYSQL_LOCK_PREFIX}, coalesce(database(), '')), 64)`;
    const { rows } = await sql<{
      locked: number | null;
    }>`select get_lock(${lockName}, ${sql.lit(MYSQL_LOCK_WAIT_SECONDS)}) as locked`.execute(conn);
    if (Number(rows[0]?.locked) !== 1) throw new Error(`another process held the migration lock for ${MYSQL_LOCK_WAIT_SECONDS} s`);
    try {
      const { rows: version } = await sql<{ v: string }>`select version() as v`.execute(conn);
      return await runMigrator(conn, 'mysql', mysqlBinaryCollation(version[0]?.v ?? ''));
    } finally {
      await sql`select release_lock(${lockName})`.execute(conn);
    }
  });
}

async function runMigrator(db: Kysely<unknown>, dialect: Dialect, mysqlCollation?: string): Promise<string[]> {
  const ctx: MigrationContext = { dialect, mysqlCollation };
  const migrations: Record<string, Migration> = {};
  for (const [name, mod] of Object.entries(MIGRATIONS)) {
    migrations[name] = { up: (trx) => mod.up(trx, ctx) };
  }
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`metadata migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message ?? String(error)}`, {
      cause: error,
    });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Names of every migration this build knows, in order. */
export function migrationNames(): string[] {
  return Object.keys(MIGRATIONS);
}
