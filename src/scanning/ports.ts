import type { MetadataTx } from '../core/ports.js';

/**
 * The metadata port of the offline vulnerability database (src/scanning). The importer and
 * the matcher decide; the adapter (src/metadata/vulndb-store.ts) holds the SQL, written once
 * for SQLite, PostgreSQL and MySQL.
 *
 * An advisory is one OSV record, kept as its validated JSON (without `details`, the long
 * markdown text findings never show) plus one index row per package it names
 * (ecosystem, name), which is how the matcher finds it.
 */

/** One OSV record ready to store. */
export interface StoredAdvisory {
  id: string;
  /** OSV `modified`, epoch milliseconds: a re-import replaces a record only when this grows. */
  modified: number;
  /** OSV `withdrawn`, epoch milliseconds (null: not withdrawn). Withdrawn advisories never match. */
  withdrawn: number | null;
  /** The packages it names, as (OSV ecosystem string, package name as matched: see packageKey). */
  packages: { ecosystem: string; name: string }[];
  /** The record as JSON text (validated OSV, `details` dropped). */
  document: string;
}

/** What one batch did. */
export interface BatchOutcome {
  /** Records not stored before. */
  inserted: number;
  /** Records stored before with an older `modified`, now replaced. */
  updated: number;
  /** Records stored with the same or a newer `modified`, left as they were. */
  unchanged: number;
}

/** One `berth vulndb import` run, as recorded. */
export interface VulnImportRun {
  id: number;
  /** What was imported (the path given, as given). */
  source: string;
  startedAt: number;
  /** null while running, or when the run was interrupted (killed) before it finished. */
  finishedAt: number | null;
  /** complete, failed (stopped by an error: the batches before it are kept) or running. */
  outcome: 'running' | 'complete' | 'failed';
  /** JSON files read. */
  files: number;
  inserted: number;
  updated: number;
  unchanged: number;
  /** Files or records refused (not JSON, not OSV), with the first reasons kept in `errors`. */
  invalid: number;
  errors: string[];
}

export interface VulnDbCounts {
  advisories: number;
  withdrawn: number;
  /** Advisories per OSV ecosystem string (an advisory naming several counts in each). */
  byEcosystem: Record<string, number>;
  /** The newest `modified` of any advisory (epoch ms), null when empty. */
  newestModified: number | null;
}

/** The vulnerability scan of one artifact (manifest digest), as stored (`scan_results`). */
export interface ScanRecord {
  digest: string;
  /** complete: matched (findings may be empty); failed: `error` says why. */
  status: 'complete' | 'failed';
  scannedAt: number;
  /** Where the package list came from: `request` (given to the scan API), or the lister's name (e.g. `sbom`). */
  source: string;
  /** The database import run the scan matched against (null: none yet), so a rescan can follow a newer import. */
  databaseImport: number | null;
  /** Packages matched. */
  packages: number;
  /** Counts by severity (Critical…Unknown) and total. */
  summary: Record<string, number>;
  /** The findings (src/scanning/match.ts Finding), most severe first. */
  findings: unknown[];
  error: string | null;
}

export interface VulnDbStore {
  /**
   * Stores a batch in ONE transaction: each record replaces the stored one with the same id
   * when its `modified` is newer (rows of the packages it names replaced with it), else it is
   * left alone. A batch is all-or-nothing, so an interrupted import leaves every record either
   * as it was or as it is in the source, and running it again resumes where it stopped.
   */
  storeBatch(records: StoredAdvisory[]): Promise<BatchOutcome>;
  /** The stored documents of the non-withdrawn advisories naming any of `names` in any of `ecosystems`. */
  affecting(ecosystems: string[], names: string[]): Promise<{ id: string; document: string }[]>;
  /** One advisory's stored document (null: unknown id). */
  advisory(id: string): Promise<string | null>;
  counts(): Promise<VulnDbCounts>;
  /** Records a run as started; returns its id. */
  startImport(source: string, at: number): Promise<number>;
  /** Updates the run's counts (after each batch) and, with `finishedAt`, its end. */
  updateImport(run: Omit<VulnImportRun, 'source' | 'startedAt'>): Promise<void>;
  /** The newest runs first. */
  imports(limit: number): Promise<VulnImportRun[]>;
  /** Stores an artifact's scan, replacing its previous one. */
  saveScan(scan: ScanRecord): Promise<void>;
  /** The scan rows inside a registry write transaction: a scan and its event commit together. */
  within(tx: MetadataTx): { saveScan(scan: ScanRecord): Promise<void> };
  /** The artifact's last scan (null: never scanned). */
  scanOf(digest: string): Promise<ScanRecord | null>;
}

/** A project's supply-chain settings: what happens to the images pushed into it. */
export interface SupplyChainSettings {
  project: string;
  /** Generate (or find) an SBOM of each pushed image and attach it as a referrer. */
  sbomOnPush: boolean;
  /** Scan each pushed image against the offline vulnerability database. */
  scanOnPush: boolean;
  /** Epoch ms of the last change (null: never set, the defaults apply). */
  updatedAt: number | null;
  updatedBy: string | null;
}

/** One unit of queued work: an artifact (image or index) to give an SBOM and/or a scan. */
export interface QueuedArtifact {
  id: number;
  repository: string;
  digest: string;
  sbom: boolean;
  scan: boolean;
  /** push (the outbox consumer) or backfill (the bulk trigger). */
  reason: 'push' | 'backfill';
  state: 'pending' | 'failed';
  attempts: number;
  enqueuedAt: number;
  nextAt: number;
  lastError: string | null;
}

export type NewQueuedArtifact = Pick<QueuedArtifact, 'repository' | 'digest' | 'sbom' | 'scan' | 'reason'>;

/** The rescan that follows a database import which changed the database. */
export interface RescanRecord {
  /** The import run whose changes it follows: every scan matched against an older one (or none) is redone. */
  databaseImport: number;
  state: 'running' | 'complete' | 'superseded';
  startedAt: number;
  updatedAt: number;
  finishedAt: number | null;
  /** Artifacts to rescan when it started. */
  total: number;
  /** Rescanned so far (a failed scan counts: its result is stored). */
  scanned: number;
  /** Of those, scans that ended `failed`, or artifacts that could not be scanned at all. */
  failed: number;
  /** The last digest handled: a restarted job resumes after it. */
  resumeAfter: string | null;
}

/**
 * The metadata port of scan/SBOM on push, the bulk backfill and rescans (src/metadata/supply-chain-store.ts).
 */
export interface SupplyChainStore {
  settings(project: string): Promise<SupplyChainSettings | null>;
  setSettings(settings: SupplyChainSettings & { updatedAt: number }): Promise<void>;
  /** Inside the outbox consumer's transaction: the settings of `projects` and the queue insert. */
  within(tx: MetadataTx): {
    settingsOf(projects: string[]): Promise<Map<string, { sbom: boolean; scan: boolean }>>;
    enqueue(items: NewQueuedArtifact[], at: number): Promise<void>;
    /** A deleted project's settings go with it, unless set after `deletedAt` (a project created again under its name starts with both off). */
    forgetProject(project: string, deletedAt: number): Promise<void>;
  };
  /** Queues outside any registry write (the backfill). */
  enqueue(items: NewQueuedArtifact[], at: number): Promise<void>;
  /** Pending rows due at `now`, oldest first. */
  due(now: number, limit: number): Promise<QueuedArtifact[]>;
  /** The work is done: the row goes. */
  done(id: number): Promise<void>;
  /** The work failed: try again at `nextAt`, or give up (`failed`: kept for the status API). */
  retry(id: number, attempts: number, nextAt: number, error: string, giveUp: boolean): Promise<void>;
  /** Rows per state, and the oldest pending row's enqueue time (null when none). */
  queueCounts(): Promise<{ pending: number; failed: number; oldestPendingAt: number | null }>;
  /** Failed rows, newest first. */
  failedItems(limit: number): Promise<QueuedArtifact[]>;

  /** How many scanned artifacts (still held by some repository) were matched against an import older than `target` (or none); scans of a package list given in the request are not counted (the list is not kept). */
  countStale(target: number): Promise<number>;
  /** The next of them in digest order after `after`, each with one repository holding it. */
  staleScans(target: number, after: string | null, limit: number): Promise<{ digest: string; repository: string }[]>;
  /** The newest rescan (any state), or the one for `databaseImport`. */
  rescan(databaseImport?: number): Promise<RescanRecord | null>;
  /** Starts (or, when present, keeps) the rescan of `databaseImport`; marks older running ones superseded. */
  startRescan(databaseImport: number, total: number, at: number): Promise<RescanRecord>;
  updateRescan(record: RescanRecord): Promise<void>;
}

/** The vulnerability pull policy's mode: off (nothing checked), audit (pulls allowed, violations recorded), enforce (refused). */
export type VulnPolicyMode = 'off' | 'audit' | 'enforce';
export const VULN_POLICY_MODES: readonly VulnPolicyMode[] = ['off', 'audit', 'enforce'];
/** The lowest severity that refuses a pull. */
export type VulnThreshold = 'low' | 'medium' | 'high' | 'critical';
export const VULN_THRESHOLDS: readonly VulnThreshold[] = ['low', 'medium', 'high', 'critical'];
/** What happens to an artifact without a complete scan: allowed, refused, or allowed for `graceSeconds` after its push. */
export type VulnUnscanned = 'allow' | 'deny' | 'grace';
export const VULN_UNSCANNED: readonly VulnUnscanned[] = ['allow', 'deny', 'grace'];

export interface VulnPolicySettings {
  mode: VulnPolicyMode;
  severity: VulnThreshold;
  /** Vulnerability ids (CVE-…, GHSA-…, DSA-…) that never refuse, matched against a finding's id and its aliases. */
  allowlist: string[];
  unscanned: VulnUnscanned;
  /** With `unscanned: grace`: how long after its push an unscanned artifact stays pullable. */
  graceSeconds: number;
  /** A child manifest without a scan of its own is judged by the scan of an index listing it. */
  inheritIndex: boolean;
}

export interface VulnPolicy extends VulnPolicySettings {
  project: string;
  updatedAt: Date;
  updatedBy: string | null;
}

/**
 * The counters replicas compare their caches with: `version` moves with every policy change,
 * `scans` with every scan result stored for an artifact the project holds and every removal
 * of content from the project.
 */
export interface VulnPolicyState {
  version: number;
  scans: number;
}

export interface VulnPolicySnapshot extends VulnPolicyState {
  /** null: the project has no policy (mode off). */
  policy: VulnPolicy | null;
}

/** Rows written inside a metadata transaction. */
export interface VulnPolicyTxQueries {
  /** Creates or updates the project's policy; bumps `version`. */
  setPolicy(project: string, settings: VulnPolicySettings, actor: string | null, at: Date): Promise<VulnPolicy>;
  /** Bumps `scans` of every project with a policy that holds `digest` in one of its repositories. */
  scanChanged(digest: string): Promise<void>;
  /** Bumps `scans` of the project (content left it). */
  contentRemoved(project: string): Promise<void>;
  /** Stores an artifact's scan, replacing its previous one (in the transaction that moves the counters). */
  saveScan(scan: ScanRecord): Promise<void>;
}

export interface VulnPolicyStore {
  within(tx: MetadataTx): VulnPolicyTxQueries;
  /** The counters alone (null: no policy row): one primary-key read. */
  state(project: string): Promise<VulnPolicyState | null>;
  snapshot(project: string): Promise<VulnPolicySnapshot>;
  /** When `digest` was pushed into `repository` (epoch ms; null: not there). */
  pushedAt(repository: string, digest: string): Promise<number | null>;
  /** Image indexes of `repository` listing `digest` as a child manifest (at most `limit`). */
  parents(repository: string, digest: string, limit: number): Promise<string[]>;
}
