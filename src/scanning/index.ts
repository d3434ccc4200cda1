export { matchPackages, summarize, type Finding, type InstalledPackage, type MatchResult, type SeverityCounts } from './match.js';
export { packageListSchema } from './packages.js';
export type { VulnDbStore, VulnImportRun } from './ports.js';
export { SEVERITIES, severityRank, type Severity } from './severity.js';
export { readOsvSource } from './sources.js';
export { VulnDb, type VulnDbStatus } from './vulndb.js';
export {
  judgeScan,
  vulnerabilityPolicy,
  VulnVerdictCache,
  vulnViolationRecorder,
  VULNERABILITY_POLICY,
  type VulnViolation,
} from './policy.js';
export { VulnPolicyService, VULN_POLICY_DEFAULTS, type VulnPolicyActor } from './policy-service.js';
export {
  VULN_POLICY_MODES,
  VULN_THRESHOLDS,
  VULN_UNSCANNED,
  type VulnPolicyMode,
  type VulnPolicySettings,
  type VulnPolicyStore,
  type VulnThreshold,
  type VulnUnscanned,
} from './ports.js';
