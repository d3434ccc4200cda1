/**
 * Retention's narrow metadata port (adapter: src/metadata/retention-store.ts, one implementation
 * for SQLite, PostgreSQL and MySQL). The feature decides what to keep from the facts these
 * queries return; tag deletes themselves go through core (Registry.changeBatch), so the policy
 * hooks and the domain events of a retention run are those of any other delete.
 */

import type { MetadataTx } from '../core/ports.js';

export const TEMPLATES = ['latestPushedK', 'latestPulledN', 'nDaysSinceLastPush', 'nDaysSinceLastPull', 'always'] as const;
export type Template = (typeof TEMPLATES)[number];

/** A doublestar pattern and whether it selects what it matches or what it does not. */
export interface Selector {
  decoration: 'matches' | 'excludes';
  /** Doublestar glob (picomatch); empty or `**` matches everything. */
  pattern: string;
}

export interface TagSelector extends Selector {
  /** Whether untagged artifacts are candidates too (default: true for `matches`, false for `excludes`, as Harbor). */
  untagged?: boolean;
}

/** One rule: which repositories and tags it looks at, and which of them it keeps. */
export interface RetentionRule {
  template: Template;
  /** K or N of latestPushedK / latestPulledN. */
  count?: number;
  /** N of nDaysSinceLastPush / nDaysSinceLastPull. */
  days?: number;
  /** Matched against the repository's path inside the project (`team/app/api` → `app/api`). */
  repositories: Selector;
  tags: TagSelector;
  disabled?: boolean;
}

export interface RetentionPolicy {
  rules: RetentionRule[];
  /** Cron expression (5 fields, or 6 with seconds) on which the policy runs; null: on demand only. */
  schedule: string | null;
}

export interface StoredPolicy extends RetentionPolicy {
  project: string;
  nextRunAt: Date | null;
  updatedBy: string | null;
  updatedAt: Date;
}

// ── What a run reads ───────────────────────────────────────────────────────

export interface RepositoryRow {
  id: number;
  name: string;
}

/** One repository's tags and manifests as a run sees them (no payloads). Times are epoch ms. */
export interface RepositorySnapshot extends RepositoryRow {
  tags: { name: string; digest: string; updatedAt: number }[];
  manifests: { digest: string; createdAt: number; subject: string | null; lastPulledAt: number | null }[];
  /** Index → child manifest edges. */
  children: { parent: string; child: string }[];
}

// ── What a run reports ─────────────────────────────────────────────────────

export interface KeptTag {
  tag: string;
  digest: string;
  /** Why: the rules that kept it (`rule 1: latestPushedK 3`), or the referrer or race that saved it. */
  reasons: string[];
}

export interface RefusedTag {
  tag: string;
  digest: string;
  /** The policy that refused the delete (e.g. `immutable`), when it said so. */
  policy: string | null;
  reason: string;
}

export interface RepositoryReport {
  repository: string;
  kept: KeptTag[];
  removed: { tag: string; digest: string }[];
  refused: RefusedTag[];
  /** Artifacts whose last tag this run removed: GC collects them (with what only they reference). */
  untagged: string[];
  /** Untagged artifacts a rule selected (`tags.untagged`) and none kept: deleted by the run. */
  deleted: string[];
}

export interface RunTotals {
  repositories: number;
  tagsKept: number;
  tagsRemoved: number;
  tagsRefused: number;
  manifestsUntagged: number;
  manifestsDeleted: number;
  /** Bytes of the blobs that only the artifacts left untagged or deleted reference: what GC will then free. */
  bytes: number;
}

export interface RetentionReport {
  totals: RunTotals;
  repositories: RepositoryReport[];
}

export type RunStatus = 'running' | 'ok' | 'failed';
export type RunTrigger = 'manual' | 'schedule';

export interface RetentionRun {
  id: number;
  project: string;
  dryRun: boolean;
  trigger: RunTrigger;
  actor: string | null;
  status: RunStatus;
  startedAt: Date;
  finishedAt: Date | null;
  /** The totals of a finished run, or `{ error }` of a failed one. */
  summary: RunTotals | { error: string } | null;
  /** The full report (only when one run is read). */
  report?: RetentionReport | null;
}

/** Retention's queries inside core's transaction (a run's per-repository change batch). */
export interface RetentionTxQueries {
  /** Which of `digests` have at least one tag in the repository now. */
  tagged(repositoryId: number, digests: string[]): Promise<Set<string>>;
  /** Records a run's end (in the transaction that appends its `retention.finished` event). */
  finishRun(id: number, totals: RunTotals, report: RetentionReport, at: Date): Promise<void>;
}

export interface RetentionStore {
  within(tx: MetadataTx): RetentionTxQueries;

  policy(project: string): Promise<StoredPolicy | null>;
  /** Creates or replaces the project's policy. */
  setPolicy(project: string, policy: RetentionPolicy, nextRunAt: Date | null, actor: string | null, at: Date): Promise<void>;
  /** True when there was one. */
  deletePolicy(project: string): Promise<boolean>;
  /** Policies whose next scheduled run is at or before `now`. */
  duePolicies(now: Date): Promise<StoredPolicy[]>;
  /** Moves a policy's next run from `from` to `to` (compare-and-set); false when another process already did. */
  advance(project: string, from: Date, to: Date | null): Promise<boolean>;

  /** The project's repositories (its root repository and everything under `<project>/`), by name. */
  repositories(project: string): Promise<RepositoryRow[]>;
  /** Tags, manifests, index edges and pull times of these repositories, in a few batched queries. */
  snapshots(repositories: RepositoryRow[]): Promise<RepositorySnapshot[]>;
  /**
   * Bytes of the blobs referenced by the `garbage` manifests (repository id → digests) and by no
   * other manifest of any repository.
   */
  freedBytes(garbage: Map<number, string[]>): Promise<number>;

  startRun(run: { project: string; dryRun: boolean; trigger: RunTrigger; actor: string | null; at: Date }): Promise<number>;
  failRun(id: number, error: string, at: Date): Promise<void>;
  /** Marks the project's runs still recorded as running failed with `error` (called under the project's lease: none can be running). */
  failUnfinished(project: string, error: string, at: Date): Promise<number>;
  /** A project's runs, newest first, without their reports. */
  runs(project: string, limit: number): Promise<RetentionRun[]>;
  /** One run with its report. */
  run(project: string, id: number): Promise<RetentionRun | null>;
}
