import type { Kysely } from 'kysely';
import { redactUrl } from '../config/redact.js';
import { RegistryError } from '../core/errors.js';
import type { MetadataObserver } from '../metrics/ports.js';
import type { Dialect } from './dialect.js';
import { migrateToLatest } from './migrate.js';
import type { Database } from './tables.js';

/**
 * What the networked metadata drivers (PostgreSQL, MySQL) share: pool settings, the
 * client-side timeout, the 503 for a lost database, and migrating on a connection of its own.
 */
export interface PoolOptions {
  /** postgres://… or mysql://user:password@host:port/database */
  url: string;
  /** Most connections this process opens at once. */
  poolMax: number;
  /** Milliseconds to wait for a connection (new or pooled) before failing with 503. */
  connectTimeoutMs: number;
  /** Milliseconds after which an unused pooled connection is closed. */
  idleTimeoutMs: number;
  /** Milliseconds the server lets one statement run (MySQL: and lock waits last); 0 = no limit. */
  statementTimeoutMs: number;
  /** Called for errors of idle pooled connections (the pool drops them and reconnects later). */
  onPoolError?: (err: Error) => void;
  /** Statement latency and pool counters, when metrics are on. */
  observer?: MetadataObserver;
}

/**
 * A statement the server has not answered this long after its own statement timeout (at most
 * the statement timeout again) means the server or the network is gone (e.g. a half-open TCP
 * connection); the driver then fails the query on the client side instead of waiting forever.
 */
const CLIENT_TIMEOUT_GRACE_MS = 5_000;

export function clientTimeoutMs(statementTimeoutMs: number): number | undefined {
  return statementTimeoutMs ? statementTimeoutMs + Math.min(CLIENT_TIMEOUT_GRACE_MS, statementTimeoutMs) : undefined;
}

/** A 503 for the client; the database's own message (host names, addresses) stays in `cause`, for the log. */
export function unavailable(err: unknown, message = 'metadata database unavailable'): RegistryError {
  if (err instanceof RegistryError) return err;
  const error = new RegistryError('UNAVAILABLE', message);
  error.cause = err;
  return error;
}

/**
 * Runs the migrations on a connection of its own without statement timeouts: waiting for
 * another replica's migration lock, or a long data migration, is not a stuck request.
 */
export async function migrateOnOwnConnection(
  options: PoolOptions,
  dialect: Exclude<Dialect, 'sqlite'>,
  label: string,
  create: (options: PoolOptions) => Kysely<Database>,
): Promise<string[]> {
  const db = create({ ...options, poolMax: 1, statementTimeoutMs: 0, observer: undefined });
  try {
    return await migrateToLatest(db as Kysely<unknown>, dialect);
  } catch (err) {
    throw new Error(`cannot prepare the ${label} metadata database ${redactUrl(options.url)}: ${rootMessage(err)}`, { cause: err });
  } finally {
    await db.destroy();
  }
}

/** The message of the innermost `cause`: what the database or the network actually said. */
function rootMessage(err: unknown): string {
  let current = err;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}

/** The one URL masking (src/config/redact.ts), re-exported for the metadata drivers and `berth migrate-metadata`. */
export { redactUrl };
