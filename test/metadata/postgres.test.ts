import { openPostgresMetadata, type PostgresOptions } from '../../src/metadata/postgres.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { runMetadataContract } from './contract.js';

export function postgresOptions(url: string): PostgresOptions {
  return { url, poolMax: 10, connectTimeoutMs: 5_000, idleTimeoutMs: 10_000, statementTimeoutMs: 30_000 };
}

runMetadataContract('PostgreSQL', async () => {
  const database = await createTestDatabase();
  const store = await openPostgresMetadata(postgresOptions(database.url));
  return {
    store,
    async destroy() {
      await store.close();
      await database.drop();
    },
  };
});
