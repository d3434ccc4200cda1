import { Cron } from 'croner';
import { z } from 'zod';
import { isCron } from '../config/cron.js';
import type { RetentionPolicy, RetentionRule, RetentionStore } from './ports.js';

/** Harbor's limits: K, N < 32767; days up to ~55 000 years is silly, 100 years is plenty. */
const MAX_COUNT = 32_766;
const MAX_DAYS = 36_500;

const selector = {
  decoration: z.enum(['matches', 'excludes']).default('matches'),
  pattern: z.string().max(1024).default('**').describe('doublestar glob; empty or ** matches everything'),
};

const RepositorySelector = z.object(selector).strict().default({ decoration: 'matches', pattern: '**' });
const TagSelector = z
  .object({
    ...selector,
    untagged: z.boolean().optional().describe('untagged artifacts are candidates too (default: true for matches, false for excludes)'),
  })
  .strict()
  .default({ decoration: 'matches', pattern: '**' });

const common = { repositories: RepositorySelector, tags: TagSelector, disabled: z.boolean().default(false) };

/** One rule, as the API and CLI take it (Harbor's templates; count/days default as Harbor's). */
export const RuleSchema = z.discriminatedUnion('template', [
  z.object({ template: z.literal('latestPushedK'), count: z.number().int().min(0).max(MAX_COUNT).default(10), ...common }).strict(),
  z.object({ template: z.literal('latestPulledN'), count: z.number().int().min(0).max(MAX_COUNT).default(10), ...common }).strict(),
  z.object({ template: z.literal('nDaysSinceLastPush'), days: z.number().int().min(0).max(MAX_DAYS).default(30), ...common }).strict(),
  z.object({ template: z.literal('nDaysSinceLastPull'), days: z.number().int().min(0).max(MAX_DAYS).default(30), ...common }).strict(),
  z.object({ template: z.literal('always'), ...common }).strict(),
]);

/** A project's policy as PUT …/retention takes it. */
export const PolicySchema = z
  .object({
    rules: z.array(RuleSchema).max(50),
    schedule: z
      .string()
      .refine(isCron, 'expected a cron expression like "0 3 * * *" (5 fields, or 6 with seconds)')
      .nullable()
      .default(null)
      .describe('cron expression on which the policy runs; null: only on demand'),
  })
  .strict();

/** The next time `schedule` fires after `now` (null without a schedule). */
export function nextRun(schedule: string | null, now: Date): Date | null {
  if (schedule === null) return null;
  const cron = new Cron(schedule, { paused: true });
  try {
    return cron.nextRun(now);
  } finally {
    cron.stop();
  }
}

/**
 * The policy a proxy-cache project starts with (the pull-through cache issue): keep what was
 * pulled within the last `days` (7: Harbor's default for proxy projects), checked daily.
 */
export function proxyCacheDefaultPolicy(days = 7): RetentionPolicy {
  return {
    rules: [
      {
        template: 'nDaysSinceLastPull',
        days,
        repositories: { decoration: 'matches', pattern: '**' },
        tags: { decoration: 'matches', pattern: '**', untagged: true },
      },
    ],
    schedule: '0 0 * * *',
  };
}

/** The default retention window of cache projects from `proxy.ttl` (ms): whole days rounded up, 0 for none. */
function proxyCacheRetentionDays(ttlMs: number): number {
  return ttlMs <= 0 ? 0 : Math.min(MAX_DAYS, Math.ceil(ttlMs / 86_400_000));
}

/**
 * What to do when a project is bound as a pull-through cache (the server and the CLI wire this):
 * give it the default policy (`proxyCacheDefaultPolicy` over `proxy.ttl`, `ttlMs`) unless it has
 * a policy already; a ttl of 0 gives none.
 */
export function proxyCachePolicyOnBind(
  store: Pick<RetentionStore, 'policy' | 'setPolicy'>,
  ttlMs: number,
): (project: string) => Promise<void> {
  const days = proxyCacheRetentionDays(ttlMs);
  return async (project) => {
    if (days <= 0 || (await store.policy(project))) return;
    const policy = proxyCacheDefaultPolicy(days);
    const now = new Date();
    await store.setPolicy(project, policy, nextRun(policy.schedule, now), 'proxy-cache', now);
  };
}

/** How a report names a rule: `rule 2: latestPushedK 3`. */
export function ruleLabel(rule: RetentionRule, index: number): string {
  const param = rule.count ?? rule.days;
  return `rule ${index + 1}: ${rule.template}${param === undefined ? '' : ` ${param}`}`;
}
