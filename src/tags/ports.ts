/**
 * The metadata port of immutable tags and tag history (src/metadata/tags-store.ts implements
 * it once for SQLite, PostgreSQL and MySQL). The feature decides; the adapter moves rows.
 */

import type { ChangeReason } from '../core/events.js';
import type { MetadataTx } from '../core/ports.js';

export type Decoration = 'matches' | 'excludes';

/** A doublestar glob and whether it selects what it matches or everything else (Harbor's selector). */
export interface Selector {
  pattern: string;
  decoration: Decoration;
}

export interface ImmutableRuleInput {
  /** Matched against the repository name without its project (`app` in `team/app`, `a/b` in `team/a/b`). */
  repository: Selector;
  tag: Selector;
  /** A disabled rule is kept but protects nothing. */
  disabled: boolean;
}

export interface ImmutableRule extends ImmutableRuleInput {
  id: number;
  project: string;
  createdBy: string | null;
  createdAt: Date;
}

/** How a tag changed: a client's push or delete, a rollback, a retention run. */
export type TagChangeKind = 'push' | 'delete' | ChangeReason;

export interface TagChange {
  tag: string;
  /** null: the tag was created. */
  oldDigest: string | null;
  /** null: the tag was deleted. */
  newDigest: string | null;
  actor: string | null;
  via: TagChangeKind;
}

export interface TagHistoryEntry extends TagChange {
  id: number;
  repository: string;
  at: Date;
}

export interface HistoryQuery {
  repository: string;
  tag?: string;
  limit: number;
  /** Entries older than this id (the `last` of the previous page); newest first. */
  beforeId?: number;
  /** Entries at or after this time (the history window). */
  since: Date;
}

/** Immutable rules of one project and the version counter replicas compare their cache with. */
export interface RuleSnapshot {
  version: number;
  rules: ImmutableRule[];
}

/** Rows read and written inside core's transaction (a push, a delete, a rule change). */
export interface TagsTxQueries {
  /** The current rule version of `project` (0 before any change); one indexed row. */
  ruleVersion(project: string): Promise<number>;
  rules(project: string): Promise<RuleSnapshot>;
  addRule(project: string, rule: ImmutableRuleInput, actor: string | null, at: Date): Promise<ImmutableRule>;
  /** false when no rule `id` exists in `project`. */
  updateRule(project: string, id: number, rule: ImmutableRuleInput): Promise<boolean>;
  deleteRule(project: string, id: number): Promise<boolean>;
  /** Tags of `repository` pointing at `digest` (what a manifest delete removes). */
  tagsOf(repository: string, digest: string): Promise<string[]>;
  /** Appends history entries of `repository` (one per tag change) at `at`. */
  record(repository: string, changes: TagChange[], at: Date): Promise<void>;
}

export interface TagsMetadata {
  within(tx: MetadataTx): TagsTxQueries;
  /** Outside a transaction: the rules of a project (API reads). */
  rules(project: string): Promise<RuleSnapshot>;
  history(query: HistoryQuery): Promise<TagHistoryEntry[]>;
  /** True when `tag` of `repository` pointed to `digest` at or after `since`. */
  pointedTo(repository: string, tag: string, digest: string, since: Date): Promise<boolean>;
  /** Deletes history entries older than `before`; returns how many. */
  pruneHistory(before: Date): Promise<number>;
}
