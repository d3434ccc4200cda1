import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import type { MysqlOptions } from '../../src/metadata/mysql.js';
import { deploymentDatabases, testPoolOptions } from './deployments.js';

/**
 * Throwaway MySQL/MariaDB databases for tests, on the real server (never a mock).
 * BERTH_TEST_MYSQL_URL names the server (default: mysql://root@127.0.0.1:3306/test, the
 * MariaDB that scripts/test.sh starts). If it cannot be reached the test FAILS with a
 * message saying so: a suite that silently skips would report MySQL support as tested.
 */
export const ADMIN_URL = process.env.BERTH_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

export interface TestDatabase {
  /** Connection URL of the new, empty database. */
  url: string;
  name: string;
  /** Drops the database. Safe to call twice. */
  drop(): Promise<void>;
}

export async function createTestDatabase(prefix = 'berth_test'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name} CHARACTER SET utf8mb4`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      await adminQuery(`DROP DATABASE IF EXISTS ${name}`);
    },
  };
}

/** Runs one statement on the server as the admin user. */
export async function adminQuery(statement: string): Promise<unknown> {
  let connection: mysql.Connection;
  try {
    connection = await mysql.createConnection({ uri: ADMIN_URL, connectTimeout: 5_000 });
  } catch (err) {
    throw new Error(
      `MySQL/MariaDB is required by this test but ${ADMIN_URL} is unreachable (${(err as Error).message}). ` +
        'Start MariaDB on 127.0.0.1:3306 (root, no password; scripts/test.sh does), or set BERTH_TEST_MYSQL_URL.',
      { cause: err },
    );
  }
  try {
    const [rows] = await connection.query(statement);
    return rows;
  } finally {
    await connection.end();
  }
}

/** Pool settings for a store opened directly by a test. */
export const mysqlOptions: (url: string) => MysqlOptions = testPoolOptions;

const deployments = deploymentDatabases(() => createTestDatabase());

/** The database of a deployment under test (see deployments.ts), created on first use. */
export const databaseForDeployment = deployments.forDeployment;
export const dropDeploymentDatabase = deployments.drop;
