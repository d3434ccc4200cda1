import { sql, type Expression, type Kysely, type Transaction } from 'kysely';

/**
 * The SQL dialects the metadata adapters run on. Everything that cannot be written the same
 * way on all of them lives in this file, so the row adapters stay one implementation: upserts
 * (ON CONFLICT on SQLite/PostgreSQL, ON DUPLICATE KEY on MySQL/MariaDB) and row locks
 * (SQLite serialises writers and needs none).
 */
export type Dialect = 'sqlite' | 'postgres' | 'mysql';

/** Any Kysely handle: the database or an open transaction. */
export type AnyDb<DB> = Kysely<DB> | Transaction<DB>;

// Kysely's insert builder carries deep generics; the helpers below only need these methods.
interface InsertBuilder<Self> {
  onConflict(callback: (oc: OnConflictLike) => unknown): Self;
  onDuplicateKeyUpdate(update: Record<string, unknown>): Self;
}
interface OnConflictLike {
  columns(columns: readonly string[]): { doNothing(): unknown; doUpdateSet(update: Record<string, unknown>): unknown };
}

/**
 * `INSERT … ` that keeps the existing row when `conflictColumns` already hold the values.
 * On MySQL the no-op `col = col` update keeps other errors (foreign keys, NOT NULL) errors,
 * which `INSERT IGNORE` would turn into warnings.
 */
export function insertOrKeep<Q>(query: Q, dialect: Dialect, conflictColumns: readonly string[]): Q {
  const q = query as unknown as InsertBuilder<Q>;
  if (dialect === 'mysql') return q.onDuplicateKeyUpdate({ [conflictColumns[0]!]: sql.ref(conflictColumns[0]!) });
  return q.onConflict((oc) => oc.columns(conflictColumns).doNothing());
}

/** `INSERT …` that updates `set` on the existing row when `conflictColumns` already hold the values. */
export function insertOrUpdate<Q>(query: Q, dialect: Dialect, conflictColumns: readonly string[], set: Record<string, unknown>): Q {
  const q = query as unknown as InsertBuilder<Q>;
  if (dialect === 'mysql') return q.onDuplicateKeyUpdate(set);
  return q.onConflict((oc) => oc.columns(conflictColumns).doUpdateSet(set));
}

interface LockableSelect<Self> {
  forShare(): Self;
  forUpdate(): Self;
  modifyEnd(modifier: Expression<unknown>): Self;
}

/** Share-locks the rows a SELECT reads until the transaction ends (no-op on SQLite, which serialises writers). */
export function lockShared<Q>(query: Q, dialect: Dialect): Q {
  const q = query as unknown as LockableSelect<Q>;
  if (dialect === 'postgres') return q.forShare();
  // MariaDB has no FOR SHARE; LOCK IN SHARE MODE is the same lock on MySQL and MariaDB.
  if (dialect === 'mysql') return q.modifyEnd(sql`lock in share mode`);
  return query;
}

/** Locks the rows a SELECT reads for update until the transaction ends (no-op on SQLite). */
export function lockForUpdate<Q>(query: Q, dialect: Dialect): Q {
  const q = query as unknown as LockableSelect<Q>;
  return dialect === 'sqlite' ? query : q.forUpdate();
}
