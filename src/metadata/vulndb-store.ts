import { sql, type Generated, type Kysely, type Transaction } from 'kysely';
import type { MetadataTx } from '../core/ports.js';
import type { BatchOutcome, ScanRecord, StoredAdvisory, VulnDbCounts, VulnDbStore, VulnImportRun } from '../scanning/ports.js';
import { insertOrUpdate, insertReturningId, proposedValue, writeTransaction, type Dialect } from './dialect.js';
import type { Database } from './tables.js';

/** Row types of migrations/0012-vulndb.ts. */
export interface VulnDbTables {
  vuln_advisories: { id: string; modified: number; withdrawn: number | null; document: string; imported_at: number };
  vuln_packages: { ecosystem: string; name: string; advisory_id: string };
  vuln_imports: {
    id: Generated<number>;
    source: string;
    started_at: number;
    finished_at: number | null;
    outcome: string;
    files: number;
    inserted: number;
    updated: number;
    unchanged: number;
    invalid: number;
    errors: string;
  };
  /** migrations/0015-scans.ts */
  scan_results: {
    digest: string;
    status: string;
    scanned_at: number;
    source: string;
    database_import: number | null;
    packages: number;
    summary: string;
    findings: string;
    error: string | null;
  };
}

type Db = Kysely<VulnDbTables>;

/** Values per `IN (…)` list or multi-row INSERT: well inside every driver's parameter limit. */
const CHUNK = 300;

function chunks<T>(items: T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The VulnDbStore port on the registry's Kysely database (SQLite, PostgreSQL, MySQL). */
export class KyselyVulnDbStore implements VulnDbStore {
  private readonly db: Db;

  constructor(
    db: Kysely<Database>,
    private readonly dialect: Dialect,
    private readonly transactionOf?: (tx: MetadataTx) => Transaction<Database>,
  ) {
    this.db = db as unknown as Db;
  }

  within(tx: MetadataTx): { saveScan(scan: ScanRecord): Promise<void> } {
    if (!this.transactionOf) throw new Error('KyselyVulnDbStore was opened without transactionOf');
    const trx = this.transactionOf(tx) as unknown as Kysely<VulnDbTables>;
    return { saveScan: (scan) => saveScanRow(trx, this.dialect, scan) };
  }

  async storeBatch(records: StoredAdvisory[]): Promise<BatchOutcome> {
    // The same id twice in one batch (two files of one record): the newest wins, once.
    const byId = new Map<string, StoredAdvisory>();
    for (const r of records) {
      const seen = byId.get(r.id);
      if (!seen || r.modified > seen.modified) byId.set(r.id, r);
    }
    const batch = [...byId.values()];
    const outcome: BatchOutcome = { inserted: 0, updated: 0, unchanged: records.length - batch.length };
    if (batch.length === 0) return outcome;
    const now = Date.now();
    await writeTransaction(this.db, async (trx) => {
      const stored = new Map<string, number>();
      for (const part of chunks(batch.map((r) => r.id))) {
        // Locked, so two imports of the same records at once decide on what the other committed.
        let query = trx.selectFrom('vuln_advisories').select(['id', 'modified']).where('id', 'in', part);
        if (this.dialect !== 'sqlite') query = query.forUpdate();
        for (const row of await query.execute()) stored.set(row.id, Number(row.modified));
      }
      const fresh = batch.filter((r) => !stored.has(r.id));
      const newer = batch.filter((r) => stored.has(r.id) && r.modified > stored.get(r.id)!);
      outcome.inserted = fresh.length;
      outcome.updated = newer.length;
      outcome.unchanged += batch.length - fresh.length - newer.length;
      for (const part of chunks(newer.map((r) => r.id))) {
        await trx.deleteFrom('vuln_packages').where('advisory_id', 'in', part).execute();
        await trx.deleteFrom('vuln_advisories').where('id', 'in', part).execute();
      }
      const write = [...fresh, ...newer];
      for (const part of chunks(write, 100)) {
        await trx
          .insertInto('vuln_advisories')
          .values(part.map((r) => ({ id: r.id, modified: r.modified, withdrawn: r.withdrawn, document: r.document, imported_at: now })))
          .execute();
      }
      const packages = write.flatMap((r) => uniquePackages(r).map((p) => ({ ecosystem: p.ecosystem, name: p.name, advisory_id: r.id })));
      for (const part of chunks(packages)) await trx.insertInto('vuln_packages').values(part).execute();
    });
    return outcome;
  }

  async affecting(ecosystems: string[], names: string[]): Promise<{ id: string; document: string }[]> {
    if (ecosystems.length === 0 || names.length === 0) return [];
    const out = new Map<string, string>();
    for (const part of chunks([...new Set(names)])) {
      const rows = await this.db
        .selectFrom('vuln_packages as p')
        .innerJoin('vuln_advisories as a', 'a.id', 'p.advisory_id')
        .select(['a.id as id', 'a.document as document'])
        .where('p.ecosystem', 'in', [...new Set(ecosystems)])
        .where('p.name', 'in', part)
        .where('a.withdrawn', 'is', null)
        .execute();
      for (const row of rows) out.set(row.id, row.document);
    }
    return [...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([id, document]) => ({ id, document }));
  }

  async advisory(id: string): Promise<string | null> {
    const row = await this.db.selectFrom('vuln_advisories').select('document').where('id', '=', id).executeTakeFirst();
    return row?.document ?? null;
  }

  async counts(): Promise<VulnDbCounts> {
    const totals = await this.db
      .selectFrom('vuln_advisories')
      .select((eb) => [
        eb.fn.countAll<number>().as('advisories'),
        eb.fn.count<number>('withdrawn').as('withdrawn'),
        eb.fn.max<number | null>('modified').as('newest'),
      ])
      .executeTakeFirstOrThrow();
    const rows = await this.db
      .selectFrom('vuln_packages')
      .select(['ecosystem', sql<number>`count(distinct advisory_id)`.as('n')])
      .groupBy('ecosystem')
      .orderBy('ecosystem')
      .execute();
    return {
      advisories: Number(totals.advisories),
      withdrawn: Number(totals.withdrawn),
      byEcosystem: Object.fromEntries(rows.map((r) => [r.ecosystem, Number(r.n)])),
      newestModified: totals.newest === null ? null : Number(totals.newest),
    };
  }

  async startImport(source: string, at: number): Promise<number> {
    const query = this.db.insertInto('vuln_imports').values({
      source,
      started_at: at,
      finished_at: null,
      outcome: 'running',
      files: 0,
      inserted: 0,
      updated: 0,
      unchanged: 0,
      invalid: 0,
      errors: '[]',
    });
    return insertReturningId(query, this.dialect);
  }

  async updateImport(run: Omit<VulnImportRun, 'source' | 'startedAt'>): Promise<void> {
    await this.db
      .updateTable('vuln_imports')
      .set({
        finished_at: run.finishedAt,
        outcome: run.outcome,
        files: run.files,
        inserted: run.inserted,
        updated: run.updated,
        unchanged: run.unchanged,
        invalid: run.invalid,
        errors: JSON.stringify(run.errors),
      })
      .where('id', '=', run.id)
      .execute();
  }

  async imports(limit: number): Promise<VulnImportRun[]> {
    const rows = await this.db.selectFrom('vuln_imports').selectAll().orderBy('id', 'desc').limit(limit).execute();
    return rows.map((r) => ({
      id: Number(r.id),
      source: r.source,
      startedAt: Number(r.started_at),
      finishedAt: r.finished_at === null ? null : Number(r.finished_at),
      outcome: r.outcome as VulnImportRun['outcome'],
      files: Number(r.files),
      inserted: Number(r.inserted),
      updated: Number(r.updated),
      unchanged: Number(r.unchanged),
      invalid: Number(r.invalid),
      errors: JSON.parse(r.errors) as string[],
    }));
  }

  async saveScan(scan: ScanRecord): Promise<void> {
    await saveScanRow(this.db, this.dialect, scan);
  }

  async scanOf(digest: string): Promise<ScanRecord | null> {
    const r = await this.db.selectFrom('scan_results').selectAll().where('digest', '=', digest).executeTakeFirst();
    if (!r) return null;
    return {
      digest: r.digest,
      status: r.status as ScanRecord['status'],
      scannedAt: Number(r.scanned_at),
      source: r.source,
      databaseImport: r.database_import === null ? null : Number(r.database_import),
      packages: Number(r.packages),
      summary: JSON.parse(r.summary) as Record<string, number>,
      findings: JSON.parse(r.findings) as unknown[],
      error: r.error,
    };
  }
}

/** Writes (or replaces) an artifact's scan row on `db` (the store's database, or a transaction of it). */
export async function saveScanRow(db: Kysely<VulnDbTables>, dialect: Dialect, scan: ScanRecord): Promise<void> {
  const row = {
    digest: scan.digest,
    status: scan.status,
    scanned_at: scan.scannedAt,
    source: scan.source,
    database_import: scan.databaseImport,
    packages: scan.packages,
    summary: JSON.stringify(scan.summary),
    findings: JSON.stringify(scan.findings),
    error: scan.error,
  };
  const set = Object.fromEntries(SCAN_COLUMNS.map((c) => [c, proposedValue(c, dialect)]));
  await insertOrUpdate(db.insertInto('scan_results').values(row), dialect, ['digest'], set).execute();
}

const SCAN_COLUMNS = ['status', 'scanned_at', 'source', 'database_import', 'packages', 'summary', 'findings', 'error'] as const;

/** An advisory's (ecosystem, name) pairs, each once (OSV may list a package in several `affected` entries). */
function uniquePackages(record: StoredAdvisory): { ecosystem: string; name: string }[] {
  const seen = new Map<string, { ecosystem: string; name: string }>();
  for (const p of record.packages) seen.set(`${p.ecosystem}\u0000${p.name}`, p);
  return [...seen.values()];
}
