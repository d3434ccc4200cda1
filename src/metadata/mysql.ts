import {
  CompiledQuery,
  Kysely,
  MysqlDialect,
  type MysqlPool,
  type MysqlPoolConnection,
  type MysqlQueryResult,
  type MysqlStream,
  type MysqlStreamOptions,
} from 'kysely';
import mysql from 'mysql2';
import { asStorageFull } from './errors.js';
import type { Database } from './tables.js';
import { KyselyMetadataStore } from './kysely-store.js';
import { observedDialect } from './observe.js';
import { clientTimeoutMs, migrateOnOwnConnection, unavailable, type PoolOptions } from './pool.js';

/** The pool settings (see pool.ts); `url` is mysql://user:password@host:port/database. */
export type MysqlOptions = PoolOptions;

/** Opens the MySQL/MariaDB metadata store and brings its schema up to date. */
export async function openMysqlMetadata(options: MysqlOptions): Promise<KyselyMetadataStore> {
  await migrateMysql(options);
  return new KyselyMetadataStore(createMysqlKysely(options), 'mysql');
}

/** Runs the migrations on a connection of their own, without statement timeouts (see pool.ts). */
export function migrateMysql(options: MysqlOptions): Promise<string[]> {
  return migrateOnOwnConnection(options, 'mysql', 'MySQL', createMysqlKysely);
}

/**
 * Session settings of every connection, so that MySQL and MariaDB behave like the
 * PostgreSQL store:
 * - strict SQL mode: a value that does not fit is an error, never silently truncated;
 * - READ COMMITTED: each statement sees everything committed before it (InnoDB's default
 *   REPEATABLE READ would read an old snapshot after a row lock, which the GC relies on not doing);
 * - the statement timeout: `max_statement_time` (seconds, every statement) on MariaDB,
 *   `max_execution_time` (milliseconds, SELECTs only) on MySQL, and row-lock waits
 *   (`innodb_lock_wait_timeout`, whole seconds) on both.
 */
async function sessionStatements(
  run: (statement: string) => Promise<Array<Record<string, unknown>>>,
  statementTimeoutMs: number,
): Promise<void> {
  await run(
    `set session sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,ONLY_FULL_GROUP_BY'`,
  );
  await run('set session transaction isolation level read committed');
  if (statementTimeoutMs > 0) {
    const [row] = await run('select version() as v');
    const mariadb = /mariadb/i.test(String(row?.v ?? ''));
    if (mariadb) await run(`set session max_statement_time = ${(statementTimeoutMs / 1000).toFixed(3)}`);
    else await run(`set session max_execution_time = ${Math.trunc(statementTimeoutMs)}`);
    await run(`set session innodb_lock_wait_timeout = ${Math.max(1, Math.ceil(statementTimeoutMs / 1000))}`);
  }
}

/** A Kysely instance over a mysql2 pool that answers BIGINT as numbers and fails fast (503) when the database is unreachable. */
export function createMysqlKysely(options: MysqlOptions): Kysely<Database> {
  const pool = mysql.createPool({
    uri: options.url,
    connectionLimit: options.poolMax,
    maxIdle: options.poolMax,
    idleTimeout: options.idleTimeoutMs,
    connectTimeout: options.connectTimeoutMs,
    waitForConnections: true,
    queueLimit: 0,
    enableKeepAlive: true,
    // utf8mb4_bin: parameters compare byte-wise too (columns carry their own collation).
    charset: 'UTF8MB4_BIN',
    supportBigNumbers: true,
    bigNumberStrings: true,
    multipleStatements: false,
  });
  // An idle connection dropped by the server emits 'error'; without a listener that would crash the process.
  pool.on('connection', (connection) => connection.on('error', (err: Error) => options.onPoolError?.(err)));
  return new Kysely<Database>({
    dialect: observedDialect(
      new MysqlDialect({
        pool: new FailFastPool(pool as unknown as RawPool, options),
        onCreateConnection: async (connection) => {
          await sessionStatements(
            async (statement) => (await connection.executeQuery<Record<string, unknown>>(CompiledQuery.raw(statement))).rows,
            options.statementTimeoutMs,
          );
        },
      }),
      options.observer,
    ),
  });
}

interface CastField {
  type: string;
  string(): string | null;
}

/**
 * A mysql2 `typeCast` for one query: BIGINT (sizes, epoch-millisecond times, ids, COUNT)
 * and DECIMAL (SUM of BIGINT) as JS numbers. A value that a number cannot hold exactly is
 * reported to `overflow` (the query then fails) instead of being rounded; throwing inside
 * typeCast would break mysql2's packet parser and leave the connection hanging.
 */
function numberCast(overflow: (text: string) => void) {
  return (field: CastField, next: () => unknown): unknown => {
    if (field.type !== 'LONGLONG' && field.type !== 'NEWDECIMAL') return next();
    const text = field.string();
    if (text === null) return null;
    const value = Number(text);
    if ((field.type === 'LONGLONG' || /^-?\d+$/.test(text)) && !Number.isSafeInteger(value)) overflow(text);
    return value;
  };
}

// The parts of mysql2's callback API that Kysely and this file use.
interface RawConnection {
  query(
    options: { sql: string; values: unknown[]; timeout?: number; typeCast?: unknown },
    callback: (err: Error | null, result: unknown) => void,
  ): unknown;
  query(sql: string, values: unknown[]): { stream(options: MysqlStreamOptions): unknown };
  release(): void;
  destroy(): void;
}
interface RawPool {
  getConnection(callback: (err: Error | null, connection: RawConnection) => void): void;
  end(callback: (err: Error | null) => void): void;
}

/**
 * Adapts mysql2's pool to Kysely so that losing the database is a clean, fast failure, as
 * postgres.ts's FailFastPool does: connection-level errors become RegistryError
 * UNAVAILABLE (HTTP 503), a wait for a pooled connection is bounded by connecttimeout
 * (mysql2 would wait for ever), and a connection that failed is destroyed on release
 * instead of going back to the pool.
 */
class FailFastPool implements MysqlPool {
  /** Kysely keys its per-connection state (onCreateConnection) by connection object: reuse one wrapper per raw connection. */
  private readonly wrappers = new WeakMap<RawConnection, FailFastConnection>();

  constructor(
    private readonly pool: RawPool,
    private readonly options: MysqlOptions,
  ) {}

  getConnection(callback: (error: unknown, connection: MysqlPoolConnection) => void): void {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      callback(unavailable(new Error(`no metadata database connection within ${this.options.connectTimeoutMs} ms`)), undefined as never);
    }, this.options.connectTimeoutMs);
    this.pool.getConnection((err, connection) => {
      clearTimeout(timer);
      if (settled) {
        // Too late for the caller that asked: give it back.
        if (!err) connection.release();
        return;
      }
      settled = true;
      if (err) return callback(unavailable(err), undefined as never);
      let wrapper = this.wrappers.get(connection);
      if (!wrapper) {
        wrapper = new FailFastConnection(connection, clientTimeoutMs(this.options.statementTimeoutMs));
        this.wrappers.set(connection, wrapper);
      }
      callback(null, wrapper);
    });
  }

  end(callback: (error: unknown) => void): void {
    this.pool.end(callback);
  }
}

class FailFastConnection implements MysqlPoolConnection {
  private failure: Error | undefined;

  constructor(
    private readonly connection: RawConnection,
    private readonly timeoutMs: number | undefined,
  ) {}

  query(sql: string, parameters: Array<unknown>): { stream: <T>(options: MysqlStreamOptions) => MysqlStream<T> };
  query(sql: string, parameters: Array<unknown>, callback: (error: unknown, result: MysqlQueryResult) => void): void;
  query(
    sql: string,
    parameters: Array<unknown>,
    callback?: (error: unknown, result: MysqlQueryResult) => void,
  ): void | { stream: <T>(options: MysqlStreamOptions) => MysqlStream<T> } {
    if (!callback) throw new Error('streaming queries are not supported by the MySQL metadata store');
    if (this.failure) return callback(unavailable(this.failure), undefined as never);
    let overflow: string | undefined;
    const typeCast = numberCast((text) => (overflow ??= text));
    this.connection.query({ sql, values: [...parameters], timeout: this.timeoutMs, typeCast }, (err, result) => {
      if (!err && overflow !== undefined)
        return callback(new RangeError(`integer ${overflow} does not fit a JavaScript number`), undefined as never);
      if (!err) return callback(null, result as MysqlQueryResult);
      if (isConnectionFailure(err)) {
        this.failure ??= err;
        return callback(unavailable(err), undefined as never);
      }
      if (isStatementTimeout(err)) return callback(unavailable(err, 'metadata database did not answer in time'), undefined as never);
      callback(asStorageFull(err), undefined as never);
    });
  }

  release(): void {
    if (this.failure) this.connection.destroy();
    else this.connection.release();
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
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  // 1040 too many connections, 1053 server shutdown, 1927 connection killed (MariaDB), 2006/2013 server gone / lost.
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
  'CR_SERVER_GONE_ERROR',
  'CR_SERVER_LOST',
]);
const CONNECTION_ERRNOS = new Set([1040, 1053, 1927, 2006, 2013]);

/** True when the error means the connection, not the statement, failed. mysql2 marks errors that killed the connection `fatal`. */
export function isConnectionFailure(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const { code, errno, fatal } = err as { code?: unknown; errno?: unknown; fatal?: unknown };
  if (fatal === true) return true;
  if (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) return true;
  if (typeof errno === 'number' && CONNECTION_ERRNOS.has(errno)) return true;
  return /closed state|connection lost|Connection is closed/i.test(err.message);
}

/** MySQL 3024 (max_execution_time), MariaDB 1969 (max_statement_time), 1205 lock wait timeout. */
function isStatementTimeout(err: unknown): boolean {
  const errno = (err as { errno?: unknown } | undefined)?.errno;
  return errno === 3024 || errno === 1969 || errno === 1205;
}
