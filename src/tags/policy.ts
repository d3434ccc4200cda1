import { deny, type HookCaller, type Policy } from '../core/policies.js';
import type { MetadataTx } from '../core/ports.js';
import type { TagChange, TagChangeKind, TagsMetadata, TagsTxQueries } from './ports.js';
import { describeRule, type ImmutableRules } from './rules.js';

export const IMMUTABLE_POLICY = 'immutable-tags';

/**
 * Immutable tags and tag history on core's write hooks, inside the transaction of the change:
 * a tag an immutable rule protects is never moved to another digest nor deleted (its manifest
 * neither), and every tag created, moved or deleted is appended to the repository's history
 * with who did it and how, so the history commits exactly with the change.
 */
export function tagsPolicy(store: TagsMetadata, rules: ImmutableRules): Policy {
  const queries = (tx: MetadataTx | null): TagsTxQueries => {
    if (!tx) throw new Error('tag hooks run inside the transaction of the change');
    return store.within(tx);
  };
  const refuseIfImmutable = async (q: TagsTxQueries, repository: string, tag: string, what: string) => {
    const rule = await rules.protecting(q, repository, tag);
    if (rule) throw deny(IMMUTABLE_POLICY, 'DENIED', `'${repository}:${tag}' configured as immutable by ${describeRule(rule)}: ${what}`, { rule: rule.id });
  };
  return {
    name: IMMUTABLE_POLICY,
    hooks: {
      'tag.put': async (ctx, tx) => {
        const q = queries(tx);
        if (ctx.previous !== null) await refuseIfImmutable(q, ctx.repository, ctx.tag, `it cannot be moved from ${ctx.previous} to another digest; push under a new tag`);
        await q.record(ctx.repository, [change(ctx, ctx.tag, ctx.previous, ctx.digest, 'push')], new Date());
      },
      'tag.delete': async (ctx, tx) => {
        const q = queries(tx);
        await refuseIfImmutable(q, ctx.repository, ctx.tag, 'it cannot be deleted');
        await q.record(ctx.repository, [change(ctx, ctx.tag, ctx.digest, null, 'delete')], new Date());
      },
      'manifest.delete': async (ctx, tx) => {
        const q = queries(tx);
        const tags = await q.tagsOf(ctx.repository, ctx.digest);
        for (const tag of tags) await refuseIfImmutable(q, ctx.repository, tag, `manifest ${ctx.digest} cannot be deleted while the tag points to it`);
        if (tags.length > 0) await q.record(ctx.repository, tags.map((tag) => change(ctx, tag, ctx.digest, null, 'delete')), new Date());
      },
    },
  };
}

function change(caller: HookCaller, tag: string, oldDigest: string | null, newDigest: string | null, plain: TagChangeKind): TagChange {
  return { tag, oldDigest, newDigest, actor: caller.actor, via: caller.reason ?? plain };
}
