import type { Logger } from 'pino';
import { durationMs, type BerthConfig } from '../config/schema.js';
import type { KyselyMetadataStore } from './kysely-store.js';
import type { PostgresOptions } from './postgres.js';
import { openSqliteMetadata } from './sqlite.js';

/** Opens (and migrates) the metadata store the configuration names. */
export async function openMetadataStore(config: BerthConfig, logger?: Logger): Promise<KyselyMetadataStore> {
  switch (config.metadata.driver) {
    case 'sqlite':
      return openSqliteMetadata(config.metadata.path!);
    case 'postgres': {
      // Loaded on demand: embedded (SQLite) installs never pay for the pg driver's memory.
      const { openPostgresMetadata } = await import('./postgres.js');
      return openPostgresMetadata(postgresOptions(config, logger));
    }
  }
}

/** The pg pool settings of `metadata:` (url, pool.*, statementtimeout). */
export function postgresOptions(config: BerthConfig, logger?: Logger): PostgresOptions {
  const { url, pool, statementtimeout } = config.metadata;
  if (!url) throw new Error('metadata.url is required when metadata.driver is postgres');
  return {
    url,
    poolMax: pool.max,
    connectTimeoutMs: durationMs(pool.connecttimeout),
    idleTimeoutMs: durationMs(pool.idletimeout),
    statementTimeoutMs: durationMs(statementtimeout),
    onPoolError: (err) => logger?.warn({ err }, 'idle PostgreSQL connection failed; it will be replaced'),
  };
}
