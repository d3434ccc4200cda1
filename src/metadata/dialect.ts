import { sql, type Expression, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import { isDatabaseConflict } from '../core/errors.js';

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

/**
 * `INSERT … ` of one row that does nothing when a row with the same key exists, and tells
 * whether it inserted. On MySQL the driver reports found rows (CLIENT_FOUND_ROWS, so that an
 * UPDATE counts matched rows as PostgreSQL does), which makes `ON DUPLICATE KEY UPDATE`'s
 * count ambiguous; a plain INSERT whose duplicate-key error is caught is exact instead, and
 * InnoDB rolls back only the failed statement, not the surrounding transaction.
 * (`INSERT IGNORE` would also hide foreign-key and NOT NULL errors.)
 */
export async function insertIfAbsent(query: ExecutableInsert, dialect: Dialect, conflictColumns: readonly string[]): Promise<boolean> {
  if (dialect === 'mysql') {
    try {
      await query.executeTakeFirst();
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }
  const result = await insertOrKeep(query, dialect, conflictColumns).executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

interface ExecutableInsert {
  executeTakeFirst(): Promise<{ numInsertedOrUpdatedRows?: bigint; insertId?: bigint }>;
}

/** MySQL/MariaDB ER_DUP_ENTRY (a unique or primary key already holds the value). */
export function isDuplicateKey(err: unknown): boolean {
  return err instanceof Error && ((err as { errno?: unknown }).errno === 1062 || (err as { code?: unknown }).code === 'ER_DUP_ENTRY');
}

/**
 * `INSERT …` that, when `conflictColumns` already hold the values, updates `set` on the
 * existing row only if `when` holds for it (`ON CONFLICT … DO UPDATE … WHERE` on
 * SQLite/PostgreSQL). `when` reads the existing row through table-qualified columns, e.g.
 * sql`${sql.ref('leases.expires_at')} < ${now}`.
 *
 * MySQL has no WHERE on `ON DUPLICATE KEY UPDATE`: every assignment becomes
 * `col = if(when, value, col)`. MySQL assigns left to right and a later assignment sees the
 * earlier ones, so put the columns that `when` reads LAST in `set` (for leases:
 * `{ holder, expires_at }`, with `when` reading `expires_at`).
 */
export function insertOrUpdateIf<Q>(
  query: Q,
  dialect: Dialect,
  conflictColumns: readonly string[],
  set: Record<string, unknown>,
  when: Expression<unknown>,
): Q {
  const q = query as unknown as InsertBuilder<Q>;
  if (dialect === 'mysql') {
    const guarded = Object.fromEntries(
      Object.entries(set).map(([column, value]) => [column, sql`if(${when}, ${toExpression(value)}, ${sql.ref(column)})`]),
    );
    return q.onDuplicateKeyUpdate(guarded);
  }
  return q.onConflict((oc) => {
    const update = oc.columns(conflictColumns).doUpdateSet(set) as { where(expression: Expression<unknown>): unknown };
    return update.where(when);
  });
}

function toExpression(value: unknown): unknown {
  return isExpression(value) ? value : sql`${value}`;
}

function isExpression(value: unknown): value is Expression<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { toOperationNode?: unknown }).toOperationNode === 'function';
}

/**
 * Deletes the rows of `table` whose columns equal `where` and returns their `columns`
 * (`DELETE … RETURNING` on SQLite/PostgreSQL). MySQL 8 has no RETURNING: the rows are read
 * with `FOR UPDATE` first, then deleted, so call it inside a transaction.
 */
export async function deleteReturning<Row extends Record<string, unknown>, DB>(
  db: AnyDb<DB>,
  dialect: Dialect,
  table: string,
  where: Record<string, unknown>,
  columns: readonly string[],
): Promise<Row[]> {
  const filter = <B extends { where(column: string, op: '=', value: unknown): B }>(builder: B): B =>
    Object.entries(where).reduce((b, [column, value]) => b.where(column, '=', value), builder);
  // Kysely's generics cannot follow a table name chosen at run time.
  /* eslint-disable @typescript-eslint/no-explicit-any */
  const anyDb = db as Kysely<any>;
  if (dialect === 'mysql') {
    const rows = (await filter(anyDb.selectFrom(table).select(columns as string[]) as any)
      .forUpdate()
      .execute()) as Row[];
    if (rows.length > 0) await (filter(anyDb.deleteFrom(table) as any) as any).execute();
    return rows;
  }
  return (await (filter(anyDb.deleteFrom(table) as any) as any).returning(columns as string[]).execute()) as Row[];
  /* eslint-enable @typescript-eslint/no-explicit-any */
}

/**
 * Runs the INSERT and returns the auto-increment id of the (first) row it inserted
 * (`RETURNING id` on SQLite/PostgreSQL, the OK packet's insert id on MySQL).
 */
export async function insertReturningId<Q>(query: Q, dialect: Dialect, idColumn = 'id'): Promise<number> {
  const q = query as unknown as {
    returning(column: string): { executeTakeFirstOrThrow(): Promise<Record<string, unknown>> };
    executeTakeFirstOrThrow(): Promise<{ insertId?: bigint }>;
  };
  if (dialect === 'mysql') {
    const result = await q.executeTakeFirstOrThrow();
    if (result.insertId === undefined) throw new Error('the INSERT reported no auto-increment id');
    return Number(result.insertId);
  }
  const row = await q.returning(idColumn).executeTakeFirstOrThrow();
  return Number(row[idColumn]);
}

/**
 * Locks the rows a SELECT reads for update, skipping rows another transaction holds
 * (`FOR UPDATE SKIP LOCKED`: PostgreSQL, MySQL 8, MariaDB 10.6+), e.g. for workers that
 * share a queue or an outbox. A no-op on SQLite, which serialises writers.
 */
export function lockForUpdateSkipLocked<Q>(query: Q, dialect: Dialect): Q {
  const q = query as unknown as { forUpdate(): { skipLocked(): Q } };
  return dialect === 'sqlite' ? query : q.forUpdate().skipLocked();
}

/** How often a transaction aborted by a conflict is run in all (see writeTransaction). */
export const CONFLICT_ATTEMPTS = 4;

/**
 * Runs `work` in a transaction that may write. On SQLite it begins IMMEDIATE (takes the
 * write lock up front; sqlite.ts makes Kysely's transactions do that), on PostgreSQL and
 * MySQL it is an ordinary transaction (READ COMMITTED on both: mysql.ts sets it per
 * connection, so each statement after a row lock sees everything committed before it).
 *
 * A transaction the database aborted to break a deadlock or a serialization failure
 * (isDatabaseConflict) is run again from the start, up to CONFLICT_ATTEMPTS times in all,
 * after a short random pause: that is what PostgreSQL and MySQL expect of their clients, and
 * two writers that lock the same rows in different orders (a blob commit and a manifest PUT
 * of one project, each with its quota row) then both succeed. `work` must therefore keep its
 * effects inside the transaction (or make them idempotent): all of Berth's do.
 */
export async function writeTransaction<DB, T>(db: Kysely<DB>, work: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction().execute(work);
    } catch (err) {
      if (attempt >= CONFLICT_ATTEMPTS || !isDatabaseConflict(err)) throw err;
      // 5-20 ms, then 10-40, 20-80: the other transaction usually commits within that.
      await new Promise((resolve) => setTimeout(resolve, 5 * 2 ** (attempt - 1) * (1 + Math.random() * 3)));
    }
  }
}

/**
 * The part of a repository name before its first '/' (the project), as an SQL expression:
 * `split_part` on PostgreSQL, `substring_index` on MySQL, instr/substr on SQLite.
 */
export function firstPathSegment(column: Expression<string> | string, dialect: Dialect): RawBuilder<string> {
  const c = typeof column === 'string' ? sql.ref(column) : column;
  if (dialect === 'postgres') return sql<string>`split_part(${c}, '/', 1)`;
  if (dialect === 'mysql') return sql<string>`substring_index(${c}, '/', 1)`;
  return sql<string>`case when instr(${c}, '/') > 0 then substr(${c}, 1, instr(${c}, '/') - 1) else ${c} end`;
}

/** Column types for the migrations, so one DDL file serves every dialect. */
export interface SchemaTypes {
  /**
   * Identifiers (names, digests, tags, ids) that are keys, indexed, or listed with keyset
   * pagination: compared and sorted byte-wise on every dialect (`"C"` on PostgreSQL, BINARY
   * on SQLite, a binary NO PAD utf8mb4 collation on MySQL/MariaDB, where keys cannot be TEXT
   * and need a length: `length` characters, at most 4 bytes each within InnoDB's 3072-byte key).
   */
  key(length: number): RawBuilder<unknown>;
  /**
   * An identifier key that is never listed in order (upload ids, key ids, lease names…):
   * plain `text` on PostgreSQL and SQLite (as their first migrations created it), the same
   * binary varchar as `key` on MySQL.
   */
  plainKey(length: number): RawBuilder<unknown>;
  /** Free text, never a key nor indexed. */
  text: RawBuilder<unknown>;
  /** Bytes (manifest payloads). */
  bytes: RawBuilder<unknown>;
  /** Column type of an auto-increment id (with `.primaryKey()`, plus `.autoIncrement()` except on PostgreSQL). */
  serialId: RawBuilder<unknown>;
}

/**
 * The binary NO PAD utf8mb4 collation of the server: code-point (= UTF-8 byte) order and
 * trailing spaces significant, as PostgreSQL's "C" and SQLite's BINARY. MariaDB calls it
 * utf8mb4_nopad_bin, MySQL 8 utf8mb4_0900_bin; utf8mb4_bin exists on both but is PAD SPACE.
 */
export function mysqlBinaryCollation(serverVersion: string): string {
  return /mariadb/i.test(serverVersion) ? 'utf8mb4_nopad_bin' : 'utf8mb4_0900_bin';
}

export function schemaTypes(dialect: Dialect, mysqlCollation = 'utf8mb4_bin'): SchemaTypes {
  if (dialect === 'mysql') {
    if (!/^[a-z0-9_]+$/.test(mysqlCollation)) throw new Error(`invalid collation ${mysqlCollation}`);
    const charset = sql.raw(`character set utf8mb4 collate ${mysqlCollation}`);
    return {
      key: (length) => sql`varchar(${sql.raw(String(Math.trunc(length)))}) ${charset}`,
      plainKey: (length) => sql`varchar(${sql.raw(String(Math.trunc(length)))}) ${charset}`,
      text: sql`longtext ${charset}`,
      bytes: sql`longblob`,
      serialId: sql`bigint`,
    };
  }
  const pg = dialect === 'postgres';
  return {
    key: () => (pg ? sql`text collate "C"` : sql`text`),
    plainKey: () => sql`text`,
    text: sql`text`,
    bytes: pg ? sql`bytea` : sql`blob`,
    serialId: pg ? sql`bigserial` : sql`integer`,
  };
}

interface ReferencingColumn<Self> {
  references(target: string): { onDelete(action: 'cascade'): Self } & Self;
}
interface ForeignKeyTable<Self> {
  addForeignKeyConstraint(
    name: string,
    columns: string[],
    targetTable: string,
    targetColumns: string[],
    build?: (fk: { onDelete(action: 'cascade'): unknown }) => unknown,
  ): Self;
}

/**
 * Foreign keys for the migrations. SQLite and PostgreSQL keep the inline column
 * `REFERENCES` their first migrations used; MySQL 8.0 parses an inline REFERENCES and
 * silently ignores it, so on MySQL the same keys become table constraints, added by
 * `table()` (call it on the CREATE TABLE builder, after the columns, via `$call`).
 */
export function foreignKeys(dialect: Dialect) {
  const pending: Array<{ column: string; target: string; cascade: boolean }> = [];
  return {
    /** `column` REFERENCES `target` ("table.column"), optionally ON DELETE CASCADE. */
    column<C>(builder: C, column: string, target: string, onDelete?: 'cascade'): C {
      if (dialect === 'mysql') {
        pending.push({ column, target, cascade: onDelete === 'cascade' });
        return builder;
      }
      const referenced = (builder as unknown as ReferencingColumn<C>).references(target);
      return onDelete ? (referenced.onDelete(onDelete) as unknown as C) : (referenced as unknown as C);
    },
    /** Adds the MySQL table constraints collected by `column()` to `table`'s CREATE TABLE (no-op elsewhere). */
    table:
      (table: string) =>
      <T>(builder: T): T => {
        let b = builder as unknown as ForeignKeyTable<T>;
        for (const { column, target, cascade } of pending.splice(0)) {
          const [targetTable, targetColumn] = target.split('.') as [string, string];
          b = b.addForeignKeyConstraint(`${table}_${column}_fk`, [column], targetTable, [targetColumn], (fk) =>
            cascade ? fk.onDelete('cascade') : fk,
          ) as unknown as ForeignKeyTable<T>;
        }
        return b as unknown as T;
      },
  };
}

/**
 * In the update part of an upsert (insertOrUpdate's `set`), the value the INSERT proposed for
 * `column`: `excluded.col` on SQLite/PostgreSQL, `values(col)` on MySQL/MariaDB (deprecated
 * but still accepted by MySQL 8, the only form MariaDB knows).
 */
export function proposedValue<T = unknown>(column: string, dialect: Dialect): RawBuilder<T> {
  return dialect === 'mysql' ? sql<T>`values(${sql.ref(column)})` : sql<T>`${sql.ref(`excluded.${column}`)}`;
}

/** The larger of two values: `max(a, b)` on SQLite, `greatest(a, b)` elsewhere. */
export function greatestOf<T>(a: Expression<T>, b: Expression<T>, dialect: Dialect): RawBuilder<T> {
  return dialect === 'sqlite' ? sql<T>`max(${a}, ${b})` : sql<T>`greatest(${a}, ${b})`;
}
