import type { DatabaseConnection, Dialect, Driver, QueryResult } from 'kysely';
import type { MetadataObserver } from '../metrics/ports.js';

const STATEMENTS = ['select', 'insert', 'update', 'delete'];

/**
 * `dialect` with each statement's latency reported to `observer` (the dialect itself without
 * one: no cost when metrics are off).
 *
 * Why not Kysely's `log` option: it wraps every query in an async function whose `finally`
 * awaits an async log call that builds a LogEvent — three promise hops and two allocations on
 * each precompiled pull-path read (docs/observability.md › Measured overhead). Here each
 * connection's executeQuery is patched once, when the driver first hands it out, and a query
 * costs one `.then` and two clock reads.
 */
export function observedDialect(dialect: Dialect, observer: MetadataObserver | undefined): Dialect {
  if (!observer) return dialect;
  return {
    createAdapter: () => dialect.createAdapter(),
    createDriver: () => timedDriver(dialect.createDriver(), observer),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createIntrospector: (db) => dialect.createIntrospector(db),
  };
}

function timedDriver(driver: Driver, observer: MetadataObserver): Driver {
  const timed = new WeakSet<DatabaseConnection>();
  const acquire = driver.acquireConnection.bind(driver);
  // The connection object itself is patched (as Kysely's own logging does), not wrapped: the
  // driver's releaseConnection and transaction calls get back the object it handed out.
  driver.acquireConnection = () =>
    acquire().then((connection) => {
      if (!timed.has(connection)) {
        timeQueries(connection, observer);
        timed.add(connection);
      }
      return connection;
    });
  return driver;
}

function timeQueries(connection: DatabaseConnection, observer: MetadataObserver): void {
  const execute = connection.executeQuery.bind(connection);
  connection.executeQuery = <R>(query: Parameters<DatabaseConnection['executeQuery']>[0]): Promise<QueryResult<R>> => {
    const start = performance.now();
    return execute<R>(query).then(
      (result) => {
        observer.query(statementOf(query.sql), (performance.now() - start) / 1000, false);
        return result;
      },
      (err: unknown) => {
        observer.query(statementOf(query.sql), (performance.now() - start) / 1000, true);
        throw err;
      },
    );
  };
}

/** The statement's verb, from its first word (Kysely writes them lower case; "with" queries count as other). */
function statementOf(sql: string): string {
  const verb = sql.trimStart().slice(0, 6).toLowerCase();
  return STATEMENTS.includes(verb) ? verb : 'other';
}
