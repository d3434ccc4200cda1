export { parseBytes, describeBytes, humanBytes } from './bytes.js';
export { quotaPolicy, quotaExceeded, QUOTA_POLICY } from './policy.js';
export type { QuotaStore, QuotaUsage } from './ports.js';
export { QuotaService, quotaView, type QuotaView, type QuotaDrift } from './service.js';
