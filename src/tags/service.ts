import { RegistryError } from '../core/errors.js';
import type { MetadataStore, MetadataTx } from '../core/ports.js';
import type { Registry } from '../core/registry.js';
import type { ImmutableRule, ImmutableRuleInput, TagHistoryEntry, TagsMetadata } from './ports.js';
import { validatePattern, type ImmutableRules } from './rules.js';

/** Who asks (the admin API's or the CLI's actor). */
export interface TagsActor {
  name: string;
  ip: string | null;
}

/** An audit entry of a rule change; structurally the audit log's own (src/auth), written in the change's transaction. */
export interface RuleAuditEntry {
  actor: string;
  action: string;
  target: string;
  ip: string | null;
  project: string;
  detail?: unknown;
  at: Date;
}

export type RuleAuditWriter = (tx: MetadataTx, entries: RuleAuditEntry[]) => Promise<void>;

export interface TagsOptions {
  /** How long tag history is kept, and so how far back a restore may go (`tags.history.retention`). */
  historyRetentionMs: number;
}

export interface HistoryPage {
  entries: TagHistoryEntry[];
  /** The `last` of the next page, or null on the last page. */
  next: number | null;
}

/**
 * Immutable rules (changed in one transaction with their audit entry and the version bump
 * other replicas watch), tag history reads and rollbacks. Authorization is the caller's (the
 * admin API checks project and repository permissions first).
 */
export class TagsService {
  constructor(
    private readonly metadata: Pick<MetadataStore, 'transaction'>,
    private readonly store: TagsMetadata,
    private readonly rules: ImmutableRules,
    private readonly registry: Pick<Registry, 'tagManifest'>,
    private readonly audit: RuleAuditWriter | null,
    readonly options: TagsOptions,
  ) {}

  async listRules(project: string): Promise<ImmutableRule[]> {
    return (await this.store.rules(project)).rules;
  }

  addRule(actor: TagsActor, project: string, input: ImmutableRuleInput): Promise<ImmutableRule> {
    checkPatterns(input);
    return this.changeRules(actor, project, 'immutable-rule.create', async (tx) => {
      const rule = await this.store.within(tx).addRule(project, input, actor.name, new Date());
      return { result: rule, id: rule.id, detail: input };
    });
  }

  updateRule(actor: TagsActor, project: string, id: number, input: ImmutableRuleInput): Promise<void> {
    checkPatterns(input);
    return this.changeRules(actor, project, 'immutable-rule.update', async (tx) => {
      if (!(await this.store.within(tx).updateRule(project, id, input))) throw unknownRule(project, id);
      return { result: undefined, id, detail: input };
    });
  }

  deleteRule(actor: TagsActor, project: string, id: number): Promise<void> {
    return this.changeRules(actor, project, 'immutable-rule.delete', async (tx) => {
      if (!(await this.store.within(tx).deleteRule(project, id))) throw unknownRule(project, id);
      return { result: undefined, id, detail: undefined };
    });
  }

  /** Newest first, within the history window; `beforeId` is the previous page's `next`. */
  async history(repository: string, query: { tag?: string; limit: number; beforeId?: number }): Promise<HistoryPage> {
    const entries = await this.store.history({ repository, ...query, limit: query.limit + 1, since: this.windowStart() });
    const more = entries.length > query.limit;
    const page = more ? entries.slice(0, query.limit) : entries;
    return { entries: page, next: more ? page[page.length - 1]!.id : null };
  }

  /**
   * Points `tag` back at `digest`, which it must have pointed to within the history window
   * (CONFLICT otherwise), through core: immutable rules apply, the manifest must still be
   * stored (MANIFEST_UNKNOWN), and the change is recorded with `via: restore`.
   */
  async restore(actor: TagsActor, repository: string, tag: string, digest: string): Promise<{ previous: string | null }> {
    if (!(await this.store.pointedTo(repository, tag, digest, this.windowStart()))) {
      throw new RegistryError(
        'CONFLICT',
        `'${repository}:${tag}' did not point to ${digest} within the tag history window (tags.history.retention); only those digests can be restored`,
        { repository, tag, digest },
      );
    }
    const previous = await this.registry.tagManifest(repository, tag, digest, {
      actor: actor.name,
      ...(actor.ip ? { ip: actor.ip } : {}),
      reason: 'restore',
    });
    return { previous };
  }

  private windowStart(): Date {
    return new Date(Date.now() - this.options.historyRetentionMs);
  }

  /** One transaction: the rule rows, the version bump (in the store) and the audit entry; then this replica's cache. */
  private async changeRules<T>(
    actor: TagsActor,
    project: string,
    action: string,
    work: (tx: MetadataTx) => Promise<{ result: T; id: number; detail: unknown }>,
  ): Promise<T> {
    const result = await this.metadata.transaction(async (tx) => {
      const done = await work(tx);
      const entry: RuleAuditEntry = {
        actor: actor.name,
        action,
        target: `${project}/immutable-rules/${done.id}`,
        ip: actor.ip,
        project,
        at: new Date(),
      };
      if (done.detail !== undefined) entry.detail = done.detail;
      await this.audit?.(tx, [entry]);
      return done.result;
    });
    this.rules.forget(project);
    return result;
  }
}

function checkPatterns(input: ImmutableRuleInput): void {
  for (const selector of [input.repository, input.tag]) {
    try {
      validatePattern(selector.pattern);
    } catch (err) {
      throw new RegistryError(
        'INVALID_ARGUMENT',
        `pattern ${JSON.stringify(selector.pattern)} is not a valid glob: ${(err as Error).message}`,
      );
    }
  }
}

function unknownRule(project: string, id: number): RegistryError {
  return new RegistryError('NOT_FOUND', `project ${project} has no immutable rule ${id}`);
}
