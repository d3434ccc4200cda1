import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { resolveConfigPaths } from '../../src/config/load.js';
import { configSchema, type BerthConfig } from '../../src/config/schema.js';
import { openStores, type Stores } from '../../src/stores.js';
import { createTestDatabase as createMysqlDatabase } from '../helpers/mysql.js';
import { ADMIN_URL as POSTGRES_ADMIN_URL, adminQuery as postgresAdminQuery } from '../helpers/postgres.js';
import { tempDir } from '../helpers/server.js';

/**
 * Fresh deployments for the port contracts in this folder: a temp data directory (blob
 * storage, and the SQLite file) plus, for PostgreSQL and MySQL, a database of its own.
 * Stores are opened through the composition root (openStores), as the server does.
 */
export type Backend = 'sqlite' | 'postgres' | 'mysql';

export interface Deployment {
  backend: Backend;
  config: BerthConfig;
  stores: Stores;
  /** Closes the stores and removes the data directory and the database. */
  destroy(): Promise<void>;
}

export function contractConfig(dataDir: string, metadata: Record<string, unknown>): BerthConfig {
  return resolveConfigPaths(configSchema.parse({ data: { dir: dataDir }, log: { level: 'silent' }, metadata }));
}

export async function deploy(backend: Backend): Promise<Deployment> {
  const dir = tempDir(`berth-contract-${backend}-`);
  let dropDatabase = async () => {};
  let metadata: Record<string, unknown> = { driver: 'sqlite' };
  if (backend === 'postgres') {
    // Not the server's default collation (often C.UTF-8, which would hide a column that is
    // not byte-ordered): a linguistic ICU collation, under which 'B' sorts after 'a'.
    const name = `berth_contract_${randomBytes(6).toString('hex')}`;
    await postgresAdminQuery(`CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`);
    const url = new URL(POSTGRES_ADMIN_URL);
    url.pathname = `/${name}`;
    metadata = { driver: 'postgres', url: url.toString() };
    dropDatabase = () => postgresAdminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } else if (backend === 'mysql') {
    const database = await createMysqlDatabase('berth_contract');
    metadata = { driver: 'mysql', url: database.url };
    dropDatabase = () => database.drop();
  }
  const config = contractConfig(dir, metadata);
  const stores = await openStores(config);
  return {
    backend,
    config,
    stores,
    async destroy() {
      await stores.close();
      await dropDatabase();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Byte order (PostgreSQL "C", SQLite BINARY, MySQL binary collations). */
export function byteOrder(names: string[]): string[] {
  return [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}
