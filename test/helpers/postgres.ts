import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { PostgresOptions } from '../../src/metadata/postgres.js';
import { deploymentDatabases, testPoolOptions } from './deployments.js';

/**
 * Throwaway PostgreSQL databases for tests, on the real server (never a mock).
 * BERTH_TEST_POSTGRES_URL names the server (default: postgres://postgres@127.0.0.1:5432/postgres,
 * trust auth). If it cannot be reached the test FAILS with a message saying so: a suite
 * that silently skips would report PostgreSQL support as tested when it was not.
 */
export const ADMIN_URL = process.env.BERTH_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  /** Connection URL of the new, empty database. */
  url: string;
  name: string;
  /** Drops the database (terminating any connection still open to it). Safe to call twice. */
  drop(): Promise<void>;
}

export async function createTestDatabase(prefix = 'berth_test'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/** Runs one statement on the maintenance database (CREATE/DROP DATABASE cannot run in a transaction). */
export async function adminQuery(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL is required by this test but ${ADMIN_URL} is unreachable (${(err as Error).message}). ` +
        'Start PostgreSQL on 127.0.0.1:5432 with trust auth for user postgres, or set BERTH_TEST_POSTGRES_URL.',
      { cause: err },
    );
  }
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/** Pool settings for a store opened directly by a test. */
export const postgresOptions: (url: string) => PostgresOptions = testPoolOptions;

const deployments = deploymentDatabases(() => createTestDatabase());

/** The database of a deployment under test (see deployments.ts), created on first use. */
export const databaseForDeployment = deployments.forDeployment;
export const dropDeploymentDatabase = deployments.drop;
