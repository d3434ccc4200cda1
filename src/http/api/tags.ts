import { z } from 'zod';
import { RegistryError } from '../../core/errors.js';
import { validateRepositoryName, validateTag } from '../../core/names.js';
import type { ImmutableRule, TagHistoryEntry, TagsService } from '../../tags/index.js';
import { projectWith } from './projects.js';
import type { ApiContext, ApiRoute } from './route.js';
import { Timestamp } from './schemas.js';

const RuleSelector = z.strictObject({ pattern: z.string().describe('doublestar glob'), decoration: z.enum(['matches', 'excludes']) });
const ImmutableRuleSchema = z.lazy(() =>
  z
    .strictObject({
      id: z.number(),
      project: z.string(),
      repository: RuleSelector.describe('matched against the repository name without its project'),
      tag: RuleSelector,
      disabled: z.boolean(),
      createdBy: z.string().nullable(),
      createdAt: Timestamp,
    })
    .meta({ id: 'ImmutableRule' }),
);
const TagHistoryEntrySchema = z.lazy(() =>
  z
    .strictObject({
      id: z.number(),
      tag: z.string(),
      oldDigest: z.string().nullable().describe('null: the tag was created'),
      newDigest: z.string().nullable().describe('null: the tag was deleted'),
      at: Timestamp,
      actor: z.string().nullable(),
      via: z.enum(['push', 'delete', 'restore', 'retention', 'proxy-cache']),
    })
    .meta({ id: 'TagHistoryEntry' }),
);

const Selector = z
  .object({
    pattern: z.string().min(1).max(255).describe('doublestar glob: * within a path segment, ** across segments'),
    decoration: z.enum(['matches', 'excludes']).default('matches'),
  })
  .strict();
const Rule = z.lazy(() =>
  z
    .object({
      /** Matched against the repository name without its project (`app` in `team/app`). */
      repository: Selector.default({ pattern: '**', decoration: 'matches' }),
      tag: Selector,
      disabled: z.boolean().default(false),
    })
    .strict(),
);
const Restore = z.lazy(() => z.object({ digest: z.string() }).strict());

const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

export function ruleView(rule: ImmutableRule) {
  return {
    id: rule.id,
    project: rule.project,
    repository: rule.repository,
    tag: rule.tag,
    disabled: rule.disabled,
    createdBy: rule.createdBy,
    createdAt: rule.createdAt.toISOString(),
  };
}

export function historyView(entry: TagHistoryEntry) {
  return {
    id: entry.id,
    tag: entry.tag,
    oldDigest: entry.oldDigest,
    newDigest: entry.newDigest,
    at: entry.at.toISOString(),
    actor: entry.actor,
    via: entry.via,
  };
}

function tagsOf(ctx: ApiContext): TagsService {
  return ctx.features.tags!;
}

function ruleId(ctx: ApiContext): number {
  const raw = ctx.params.id!;
  if (!/^\d{1,15}$/.test(raw))
    throw new RegistryError('NOT_FOUND', `project ${ctx.params.project} has no immutable rule ${raw.slice(0, 32)}`);
  return Number(raw);
}

/**
 * :name (URL-encoded: team%2Fapp), if the caller holds `permission` on it. Without pull the
 * repository answers NOT_FOUND, as a project one cannot read does, so names do not leak.
 */
async function repositoryWith(ctx: ApiContext, permission: 'pull' | 'push'): Promise<string> {
  const name = validateRepositoryName(ctx.params.name!);
  const held = await ctx.auth.rules.permissions(ctx.identity, name);
  if (!held.has('pull')) throw new RegistryError('NOT_FOUND', `repository ${name} not found`);
  if (!held.has(permission)) throw new RegistryError('DENIED', `this needs the ${permission} permission on repository ${name}`);
  return name;
}

function pageQuery(ctx: ApiContext): { tag?: string; limit: number; beforeId?: number } {
  const { tag, n, last } = ctx.query;
  const number = (raw: string, what: string) => {
    if (!/^\d{1,15}$/.test(raw)) throw new RegistryError('INVALID_ARGUMENT', `${what} must be a whole number, got "${raw.slice(0, 32)}"`);
    return Number(raw);
  };
  const limit = n === undefined || n === '' ? DEFAULT_PAGE : Math.min(Math.max(number(n, 'n'), 1), MAX_PAGE);
  return {
    limit,
    ...(tag ? { tag: validateTag(tag) } : {}),
    ...(last ? { beforeId: number(last, 'last') } : {}),
  };
}

export const tagRoutes: ApiRoute[] = [
  {
    method: 'GET',
    path: '/projects/:project/immutable-rules',
    summary: "A project's immutable tag rules",
    response: z.array(ImmutableRuleSchema),
    handler: async (ctx) => (await tagsOf(ctx).listRules((await projectWith(ctx, 'read-project')).name)).map(ruleView),
  },
  {
    method: 'POST',
    path: '/projects/:project/immutable-rules',
    summary: 'Add an immutable tag rule: repository glob × tag glob, each matches or excludes (project-admin)',
    response: ImmutableRuleSchema,
    body: Rule,
    status: 201,
    handler: async (ctx) => {
      const project = await projectWith(ctx, 'manage-project');
      return ruleView(await tagsOf(ctx).addRule(ctx.actor, project.name, ctx.body as z.infer<typeof Rule>));
    },
  },
  {
    method: 'PUT',
    path: '/projects/:project/immutable-rules/:id',
    summary: 'Replace an immutable tag rule (project-admin)',
    body: Rule,
    status: 204,
    handler: async (ctx) => {
      const project = await projectWith(ctx, 'manage-project');
      await tagsOf(ctx).updateRule(ctx.actor, project.name, ruleId(ctx), ctx.body as z.infer<typeof Rule>);
    },
  },
  {
    method: 'DELETE',
    path: '/projects/:project/immutable-rules/:id',
    summary: 'Delete an immutable tag rule (project-admin)',
    status: 204,
    handler: async (ctx) => {
      const project = await projectWith(ctx, 'manage-project');
      await tagsOf(ctx).deleteRule(ctx.actor, project.name, ruleId(ctx));
    },
  },
  {
    method: 'GET',
    path: '/repositories/:name/tag-history',
    summary:
      "Tag creations, moves and deletes of a repository (name URL-encoded), newest first; ?tag=, ?n= (≤ 1000), ?last= (the previous page's next)",
    query: z.object({
      tag: z.string().optional().describe('only the changes of this tag'),
      n: z.string().optional().describe('entries a page (≤ 1000)'),
      last: z.string().optional().describe("the previous page's next"),
    }),
    response: z.strictObject({
      repository: z.string(),
      entries: z.array(TagHistoryEntrySchema),
      next: z.number().nullable().describe('the id to pass as ?last= for older entries; null: no more'),
    }),
    handler: async (ctx) => {
      const name = await repositoryWith(ctx, 'pull');
      const page = await tagsOf(ctx).history(name, pageQuery(ctx));
      return { repository: name, entries: page.entries.map(historyView), next: page.next };
    },
  },
  {
    method: 'POST',
    path: '/repositories/:name/tags/:tag/restore',
    summary: 'Point a tag back at a digest it pointed to within the tag history window (push on the repository)',
    response: z.strictObject({
      repository: z.string(),
      tag: z.string(),
      digest: z.string(),
      previous: z.string().nullable().describe('the digest the tag pointed at before; null: it did not exist'),
    }),
    body: Restore,
    handler: async (ctx) => {
      const name = await repositoryWith(ctx, 'push');
      const tag = validateTag(ctx.params.tag!);
      const { digest } = ctx.body as z.infer<typeof Restore>;
      const { previous } = await tagsOf(ctx).restore(ctx.actor, name, tag, digest);
      return { repository: name, tag, digest, previous };
    },
  },
];
