import { deny, type HookCaller, type Policy } from '../core/policies.js';
import type { MetadataTx } from '../core/ports.js';
import type { TagChange, TagChangeKind, TagsMetadata, TagsTxQueries } from './ports.js';
import { describeRule, type ImmutableRules } from './rules.js';

export const IMMUTABLE_POLICY = 'immutable-tags';
export const TAG_HISTORY_POLICY = 'tag-history';

function queriesOf(store: TagsMetadata, tx: MetadataTx | null): TagsTxQueries {
  if (!tx) throw new Error('tag hooks run inside the transaction of the change');
  return store.within(tx);
}

/**
 * Immutable tags on core's write hooks, inside the transaction of the change: a tag an
 * immutable rule protects is never moved to another digest nor deleted, and neither is the
 * manifest it points to. A push of the digest it already has never reaches `tag.put`.
 */
export function immutableTagsPolicy(store: TagsMetadata, rules: ImmutableRules): Policy {
  const refuseIfImmutable = async (q: TagsTxQueries, repository: string, tag: string, what: string) => {
    const rule = await rules.protecting(q, repository, tag);
    if (rule)
      throw deny(IMMUTABLE_POLICY, 'DENIED', `'${repository}:${tag}' configured as immutable by ${describeRule(rule)}: ${what}`, {
        rule: rule.id,
      });
  };
  return {
    name: IMMUTABLE_POLICY,
    hooks: {
      'tag.put': async (ctx, tx) => {
        if (ctx.previous === null) return;
        await refuseIfImmutable(
          queriesOf(store, tx),
          ctx.repository,
          ctx.tag,
          `it cannot be moved from ${ctx.previous} to another digest; push under a new tag`,
        );
      },
      'tag.delete': (ctx, tx) => refuseIfImmutable(queriesOf(store, tx), ctx.repository, ctx.tag, 'it cannot be deleted'),
      'manifest.delete': async (ctx, tx) => {
        const q = queriesOf(store, tx);
        for (const tag of await q.tagsOf(ctx.repository, ctx.digest)) {
          await refuseIfImmutable(q, ctx.repository, tag, `manifest ${ctx.digest} cannot be deleted while the tag points to it`);
        }
      },
    },
  };
}

/**
 * Every tag created, moved or deleted, appended to the repository's history with who and how,
 * in the transaction of the change (it commits exactly with it). Registered after every policy
 * that may refuse: a change batch (retention) goes on after a refused delete, and only the
 * changes all policies agreed to may be recorded.
 */
export function tagHistoryPolicy(store: TagsMetadata): Policy {
  return {
    name: TAG_HISTORY_POLICY,
    hooks: {
      'tag.put': (ctx, tx) =>
        queriesOf(store, tx).record(ctx.repository, [change(ctx, ctx.tag, ctx.previous, ctx.digest, 'push')], new Date()),
      'tag.delete': (ctx, tx) =>
        queriesOf(store, tx).record(ctx.repository, [change(ctx, ctx.tag, ctx.digest, null, 'delete')], new Date()),
      'manifest.delete': async (ctx, tx) => {
        const q = queriesOf(store, tx);
        const tags = await q.tagsOf(ctx.repository, ctx.digest);
        await q.record(
          ctx.repository,
          tags.map((tag) => change(ctx, tag, ctx.digest, null, 'delete')),
          new Date(),
        );
      },
    },
  };
}

function change(caller: HookCaller, tag: string, oldDigest: string | null, newDigest: string | null, plain: TagChangeKind): TagChange {
  return { tag, oldDigest, newDigest, actor: caller.actor, via: caller.reason ?? plain };
}
