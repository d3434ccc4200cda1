export { matchPackages, summarize, type Finding, type InstalledPackage, type MatchResult, type SeverityCounts } from './match.js';
export { packageListSchema } from './packages.js';
export type { VulnDbStore, VulnImportRun } from './ports.js';
export { SEVERITIES, severityRank, type Severity } from './severity.js';
export { readOsvSource } from './sources.js';
export { VulnDb, type VulnDbStatus } from './vulndb.js';
