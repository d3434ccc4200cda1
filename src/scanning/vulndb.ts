import { parseOsv } from './osv.js';
import type { StoredAdvisory, VulnDbCounts, VulnDbStore, VulnImportRun } from './ports.js';
import type { SourceFile } from './sources.js';

/**
 * The offline vulnerability database: imports of OSV records (`berth vulndb import`) and its
 * status. An import reads the source one record at a time and stores records in batches, each
 * batch one transaction (VulnDbStore.storeBatch): a record is replaced only when its `modified`
 * grew, so re-importing a newer copy of a database writes only what changed, and an import
 * that stopped half-way (killed, database down) is resumed by running it again.
 */

export interface ImportOptions {
  /** Records per transaction (default 500). */
  batchSize?: number;
  /** Called after each stored batch with the run so far. */
  onProgress?: (run: VulnImportRun) => void;
  now?: () => number;
}

/** Reasons kept per run (the count of refused records is always exact). */
const KEPT_ERRORS = 20;

export interface VulnDbStatus extends VulnDbCounts {
  /** The newest run that finished completely (null: none yet). */
  lastImport: VulnImportRun | null;
  /** The newest run of any outcome (a failed or interrupted one shows here). */
  latestRun: VulnImportRun | null;
  /** Milliseconds since the last complete import finished (null: never imported). */
  ageMs: number | null;
  /** True when never imported, or when the last complete import is older than the given maximum age. */
  stale: boolean;
}

export class VulnDb {
  constructor(
    private readonly store: VulnDbStore,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Imports every record of `files` (see sources.ts) and records the run; `source` names it. */
  async import(source: string, files: AsyncIterable<SourceFile>, options: ImportOptions = {}): Promise<VulnImportRun> {
    const now = options.now ?? this.clock;
    const batchSize = Math.max(1, options.batchSize ?? 500);
    const startedAt = now();
    const run: VulnImportRun = {
      id: await this.store.startImport(source, startedAt),
      source,
      startedAt,
      finishedAt: null,
      outcome: 'running',
      files: 0,
      inserted: 0,
      updated: 0,
      unchanged: 0,
      invalid: 0,
      errors: [],
    };
    const refuse = (name: string, reason: string) => {
      run.invalid++;
      if (run.errors.length < KEPT_ERRORS) run.errors.push(`${name}: ${reason}`);
    };
    let batch: StoredAdvisory[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const outcome = await this.store.storeBatch(batch);
      batch = [];
      run.inserted += outcome.inserted;
      run.updated += outcome.updated;
      run.unchanged += outcome.unchanged;
      await this.store.updateImport(run);
      options.onProgress?.({ ...run, errors: [...run.errors] });
    };
    try {
      for await (const file of files) {
        run.files++;
        if ('error' in file) {
          refuse(file.name, file.error);
          continue;
        }
        const parsed = parseOsv(file.text);
        if (!parsed.ok) {
          refuse(file.name, parsed.reason);
          continue;
        }
        batch.push(parsed.record);
        if (batch.length >= batchSize) await flush();
      }
      await flush();
      run.outcome = 'complete';
    } catch (err) {
      run.outcome = 'failed';
      if (run.errors.length < KEPT_ERRORS + 1) run.errors.push(`stopped: ${(err as Error).message}`);
      throw err;
    } finally {
      run.finishedAt = now();
      // Recording the end must not hide the error that stopped the run.
      await this.store.updateImport(run).catch(() => undefined);
    }
    return run;
  }

  /** Counts, the last runs and the database's age; `maxAgeMs` decides `stale`. */
  async status(maxAgeMs: number): Promise<VulnDbStatus> {
    const [counts, runs] = await Promise.all([this.store.counts(), this.store.imports(50)]);
    const lastImport = runs.find((r) => r.outcome === 'complete') ?? null;
    const ageMs = lastImport?.finishedAt != null ? Math.max(0, this.clock() - lastImport.finishedAt) : null;
    return { ...counts, lastImport, latestRun: runs[0] ?? null, ageMs, stale: ageMs === null || ageMs > maxAgeMs };
  }
}
