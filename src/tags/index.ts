export { immutableTagsPolicy, tagHistoryPolicy, IMMUTABLE_POLICY, TAG_HISTORY_POLICY } from './policy.js';
export { tagHistoryPruneJob } from './prune-job.js';
export { ImmutableRules } from './rules.js';
export { TagsService, type RuleAuditWriter, type TagsActor, type HistoryPage } from './service.js';
export type * from './ports.js';
