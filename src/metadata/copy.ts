import { existsSync } from 'node:fs';
import { sql, type Kysely } from 'kysely';
import { redactUrl } from './pool.js';
import { createPostgresKysely, migratePostgres, type PostgresOptions } from './postgres.js';
import { openSqliteMetadata } from './sqlite.js';

/**
 * Copies a whole SQLite metadata database into PostgreSQL (`berth migrate-metadata`).
 *
 * Generic over the schema, so tables added by later migrations are copied without
 * changes here: both databases are first migrated to this build's schema, the table list
 * and foreign keys are read from PostgreSQL's catalog, and tables are copied parents
 * first, in batches (memory stays bounded), inside ONE PostgreSQL transaction: a failed
 * copy leaves the target as it was. Sequences are then moved past the copied ids.
 */
export interface CopyOptions {
  /** Replace the contents of a non-empty target instead of refusing. */
  force?: boolean;
  /** Rows read and inserted per statement (capped by PostgreSQL's 65,535 parameters). */
  batchSize?: number;
  /** Progress lines, e.g. for the CLI. */
  log?: (line: string) => void;
}

export interface CopyResult {
  /** Rows copied per table, in copy order. */
  tables: Array<{ table: string; rows: number }>;
}

export class TargetNotEmptyError extends Error {
  constructor(readonly tables: string[]) {
    super(`the target database already holds metadata (tables ${tables.join(', ')}); pass --force to replace it`);
    this.name = 'TargetNotEmptyError';
  }
}

type Row = Record<string, unknown>;
/** Tables are discovered at run time, so queries are typed as "any table of rows". */
type AnyDb = Kysely<Record<string, Row>>;

const MAX_PARAMETERS = 65_000;

export async function copySqliteToPostgres(sqliteFile: string, target: PostgresOptions, options: CopyOptions = {}): Promise<CopyResult> {
  const log = options.log ?? (() => {});
  // openSqliteMetadata would create an empty database for a mistyped path.
  if (!existsSync(sqliteFile)) throw new Error(`no SQLite metadata database at ${sqliteFile}`);
  const source = await openSqliteMetadata(sqliteFile);
  // No statement timeout: one big table is copied by a long series of statements in one transaction.
  const pgOptions: PostgresOptions = { ...target, poolMax: 1, statementTimeoutMs: 0 };
  let pgDb: AnyDb | undefined;
  try {
    await migratePostgres(pgOptions);
    pgDb = createPostgresKysely(pgOptions) as unknown as AnyDb;
    const sourceDb = source.db as unknown as AnyDb;
    const tables = await tablesInCopyOrder(pgDb);
    await assertSameSchema(sourceDb, pgDb, tables);
    log(`copying ${tables.length} tables from ${sqliteFile} to ${redactUrl(target.url)}`);
    const copied = await pgDb.transaction().execute(async (trx) => {
      await prepareTarget(trx, tables, options.force === true, log);
      const result: CopyResult['tables'] = [];
      for (const table of tables) {
        const rows = await copyTable(sourceDb, trx, table, await columnsOf(trx, table), options.batchSize ?? 1000);
        log(`  ${table}: ${rows} rows`);
        result.push({ table, rows });
      }
      await resetSequences(trx, log);
      return result;
    });
    return { tables: copied };
  } finally {
    await pgDb?.destroy();
    await source.close();
  }
}

/** Berth's tables (not Kysely's bookkeeping), parents before the tables whose foreign keys point at them. */
async function tablesInCopyOrder(db: AnyDb): Promise<string[]> {
  const { rows: tables } = await sql<{ name: string }>`
    select tablename as name from pg_tables
    where schemaname = current_schema() and tablename not like 'kysely\\_%'
    order by tablename`.execute(db);
  const { rows: edges } = await sql<{ child: string; parent: string }>`
    select child.relname as child, parent.relname as parent
    from pg_constraint c
    join pg_class child on child.oid = c.conrelid
    join pg_class parent on parent.oid = c.confrelid
    join pg_namespace n on n.oid = child.relnamespace
    where c.contype = 'f' and n.nspname = current_schema()`.execute(db);
  return topologicalOrder(
    tables.map((t) => t.name),
    edges.filter((e) => e.child !== e.parent),
  );
}

/** Kahn's algorithm; ties keep alphabetical order so the copy order is stable. */
export function topologicalOrder(nodes: string[], edges: Array<{ child: string; parent: string }>): string[] {
  const parents = new Map(nodes.map((n) => [n, new Set<string>()]));
  for (const { child, parent } of edges) parents.get(child)?.add(parent);
  const order: string[] = [];
  const remaining = new Set(nodes);
  while (remaining.size > 0) {
    const ready = [...remaining].filter((n) => [...parents.get(n)!].every((p) => !remaining.has(p)));
    if (ready.length === 0) throw new Error(`foreign keys form a cycle among tables ${[...remaining].join(', ')}`);
    for (const n of ready) {
      order.push(n);
      remaining.delete(n);
    }
  }
  return order;
}

/**
 * Both databases were migrated by this build, so their tables and columns must match; say so clearly if not.
 * SQLite's search index (FTS5 virtual tables and their shadow tables, migration 0027) is not a table here.
 */
async function assertSameSchema(source: AnyDb, target: AnyDb, tables: string[]): Promise<void> {
  const { rows } = await sql<{ name: string }>`
    select name from pragma_table_list
    where schema = 'main' and type = 'table' and name not like 'sqlite\\_%' escape '\\' and name not like 'kysely\\_%' escape '\\'`.execute(
    source,
  );
  const sourceTables = new Set(rows.map((r) => r.name));
  const onlyInSource = [...sourceTables].filter((t) => !tables.includes(t));
  const onlyInTarget = tables.filter((t) => !sourceTables.has(t));
  if (onlyInSource.length > 0 || onlyInTarget.length > 0) {
    throw new Error(
      `source and target schemas differ (only in SQLite: ${onlyInSource.join(', ') || '-'}; only in PostgreSQL: ${onlyInTarget.join(', ') || '-'})`,
    );
  }
  for (const table of tables) {
    const { rows: sourceColumns } = await sql<{ name: string }>`select name from pragma_table_info(${table})`.execute(source);
    const have = new Set(sourceColumns.map((c) => c.name));
    const missing = (await columnsOf(target, table)).filter((c) => !have.has(c));
    if (missing.length > 0) throw new Error(`table ${table}: columns ${missing.join(', ')} missing in the SQLite database`);
  }
}

async function columnsOf(db: AnyDb, table: string): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select column_name as name from information_schema.columns
    where table_schema = current_schema() and table_name = ${table}
    order by ordinal_position`.execute(db);
  return rows.map((r) => r.name);
}

/** Refuses a target that holds data unless forced; forced, empties it (inside the copy's transaction). */
async function prepareTarget(trx: AnyDb, tables: string[], force: boolean, log: (line: string) => void): Promise<void> {
  const nonEmpty: string[] = [];
  for (const table of tables) {
    const { rows } = await sql<{ found: boolean }>`select exists (select 1 from ${sql.table(table)}) as found`.execute(trx);
    if (rows[0]?.found) nonEmpty.push(table);
  }
  if (nonEmpty.length === 0) return;
  if (!force) throw new TargetNotEmptyError(nonEmpty);
  log(`--force: emptying ${nonEmpty.join(', ')}`);
  await sql`truncate ${sql.join(tables.map((t) => sql.table(t)))} restart identity cascade`.execute(trx);
}

/** Streams one table in rowid order, `batchSize` rows at a time. */
async function copyTable(source: AnyDb, target: AnyDb, table: string, columns: string[], batchSize: number): Promise<number> {
  const perStatement = Math.max(1, Math.min(batchSize, Math.floor(MAX_PARAMETERS / columns.length)));
  const selected = sql.join(columns.map((c) => sql.ref(c)));
  let lastRowid = Number.MIN_SAFE_INTEGER;
  let copied = 0;
  for (;;) {
    const { rows } = await sql<Row & { __rowid: number }>`
      select rowid as __rowid, ${selected} from ${sql.table(table)}
      where rowid > ${lastRowid} order by rowid limit ${perStatement}`.execute(source);
    if (rows.length === 0) return copied;
    lastRowid = rows[rows.length - 1]!.__rowid;
    const values = rows.map((row) => Object.fromEntries(columns.map((c) => [c, row[c]])));
    await target.insertInto(table).values(values).execute();
    copied += rows.length;
  }
}

/** Moves every serial/identity sequence past the largest copied id, so new rows do not collide. */
async function resetSequences(trx: AnyDb, log: (line: string) => void): Promise<void> {
  const { rows } = await sql<{ table_name: string; column_name: string; sequence: string }>`
    select table_name, column_name, pg_get_serial_sequence(quote_ident(table_name), column_name) as sequence
    from information_schema.columns
    where table_schema = current_schema() and (column_default like 'nextval(%' or is_identity = 'YES')`.execute(trx);
  for (const { table_name: table, column_name: column, sequence } of rows) {
    if (!sequence) continue;
    const { rows: next } = await sql<{ next: number }>`
      select setval(${sequence}::regclass, coalesce((select max(${sql.ref(column)}) from ${sql.table(table)}), 0) + 1, false) as next`.execute(
      trx,
    );
    log(`  sequence ${sequence} now starts at ${next[0]?.next}`);
  }
}
