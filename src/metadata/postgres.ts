import { Kysely, PostgresDialect, type PostgresCursor, type PostgresPool, type PostgresPoolClient, type PostgresQueryResult } from 'kysely';
import pg from 'pg';
import { asStorageFull } from './errors.js';
import type { Database } from './tables.js';
import { KyselyMetadataStore } from './kysely-store.js';
import { observedDialect } from './observe.js';
import { clientTimeoutMs, migrateOnOwnConnection, unavailable, type PoolOptions } from './pool.js';

/** The pool settings (see pool.ts); `url` is postgres://user:password@host:port/database. */
export type PostgresOptions = PoolOptions;

/** Opens the PostgreSQL metadata store and brings its schema up to date. */
export async function openPostgresMetadata(options: PostgresOptions): Promise<KyselyMetadataStore> {
  await migratePostgres(options);
  return new KyselyMetadataStore(createPostgresKysely(options), 'postgres');
}

export function migratePostgres(options: PostgresOptions): Promise<string[]> {
  return migrateOnOwnConnection(options, 'postgres', 'PostgreSQL', createPostgresKysely);
}

/** A Kysely instance over a pg Pool that answers BIGINT as numbers and fails fast (503) when the database is unreachable. */
export function createPostgresKysely(options: PostgresOptions): Kysely<Database> {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolMax,
    connectionTimeoutMillis: options.connectTimeoutMs,
    idleTimeoutMillis: options.idleTimeoutMs,
    statement_timeout: options.statementTimeoutMs || undefined,
    query_timeout: clientTimeoutMs(options.statementTimeoutMs),
    keepAlive: true,
    application_name: 'berth',
    types: int8AsNumber(),
  });
  // Without a listener, an idle connection dropped by the server would crash the process.
  pool.on('error', (err) => options.onPoolError?.(err));
  options.observer?.pool(() => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }));
  return new Kysely<Database>({ dialect: observedDialect(new PostgresDialect({ pool: new FailFastPool(pool) }), options.observer) });
}

/** BIGINT columns (sizes, epoch-millisecond times, ids) as JS numbers; every value we store is below 2^53. */
function int8AsNumber(): pg.CustomTypesConfig {
  const types = new pg.TypeOverrides();
  types.setTypeParser(pg.types.builtins.INT8, (text: string) => {
    const value = Number(text);
    if (!Number.isSafeInteger(value)) throw new RangeError(`BIGINT ${text} does not fit a JavaScript number`);
    return value;
  });
  return types;
}

/**
 * Adapts pg's Pool to Kysely so that losing the database is a clean, fast failure:
 * connection-level errors become RegistryError UNAVAILABLE (HTTP 503), and a connection
 * that failed is destroyed on release instead of going back to the pool, so the next
 * request reconnects once PostgreSQL is back.
 */
class FailFastPool implements PostgresPool {
  constructor(private readonly pool: pg.Pool) {}

  async connect(): Promise<PostgresPoolClient> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw unavailable(err);
    }
    return new FailFastClient(client);
  }

  end(): Promise<void> {
    return this.pool.end();
  }
}

class FailFastClient implements PostgresPoolClient {
  private failure: Error | undefined;
  private readonly onError = (err: Error) => {
    this.failure ??= err;
  };

  constructor(private readonly client: pg.PoolClient) {
    // pg-pool listens for errors only while a connection is idle; a socket that dies while
    // Kysely holds the connection (between statements of a transaction) would otherwise throw.
    client.on('error', this.onError);
  }

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  query<R>(
    sqlOrCursor: string | PostgresCursor<R>,
    parameters: ReadonlyArray<unknown> = [],
  ): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    // Kysely asks for a cursor only for .stream(), which needs the pg-cursor package Berth does not use.
    if (typeof sqlOrCursor !== 'string') throw new Error('streaming queries are not supported by the PostgreSQL metadata store');
    return this.run<R>(sqlOrCursor, parameters);
  }

  private async run<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> {
    if (this.failure) throw unavailable(this.failure);
    try {
      return (await this.client.query(sql, [...parameters])) as unknown as PostgresQueryResult<R>;
    } catch (err) {
      if (isConnectionFailure(err)) {
        this.failure ??= err as Error;
        throw unavailable(err);
      }
      if (isStatementTimeout(err)) throw unavailable(err, 'metadata database did not answer in time');
      throw asStorageFull(err);
    }
  }

  release(): void {
    this.client.removeListener('error', this.onError);
    this.client.release(this.failure);
  }
}

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
// SQLSTATE 57P01-57P03: the server is shutting down or starting; 53300: too many connections.
const SERVER_UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);

/** True when the error means the connection, not the statement, failed. */
export function isConnectionFailure(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (CONNECTION_ERROR_CODES.has(code) || SERVER_UNAVAILABLE_STATES.has(code) || code.startsWith('08')) return true;
  }
  // pg reports a dropped socket, its client-side query_timeout and an unusable client by message only.
  return /Connection terminated|Query read timeout|not queryable|timeout exceeded when trying to connect/i.test(err.message);
}

function isStatementTimeout(err: unknown): boolean {
  // 57014 query_canceled: statement_timeout expired.
  return err instanceof Error && (err as { code?: unknown }).code === '57014';
}
