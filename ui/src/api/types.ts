// Response bodies of the /api/v1 endpoints the UI reads. The OpenAPI document describes paths,
// parameters and request bodies (schema.d.ts, generated) but not yet response bodies, so their
// shapes are written here, from docs/ui-contract and the route handlers (src/http/api/*).

export interface Session {
  username: string;
  admin: boolean;
  csrfToken: string;
  expiresAt: string;
}

export interface Me {
  username?: string;
  name?: string;
  admin: boolean;
  projects?: { name: string; role: string }[];
  memberships?: { project: string; role: string }[];
}

export interface SystemInfo {
  version: string;
  registryHost: string;
  features: Record<string, boolean>;
  oidcProviders: { name: string; displayName?: string }[];
}

export interface Page<T> {
  items: T[];
  next: string | null;
  total?: number;
}

export interface Project {
  name: string;
  public: boolean;
  createdBy: string | null;
  createdAt: string;
  quota?: Quota;
}

export interface Quota {
  project?: string;
  used: number;
  limit: number | null;
  percent: number | null;
}

export interface RepositoryRow {
  name: string;
  tagCount: number;
  pushedAt: string | null;
  pulls: number;
  size: number;
}

export interface Platform {
  digest?: string;
  os: string;
  architecture: string;
  variant?: string | null;
}

export interface TagRow {
  tag: string;
  digest: string;
  mediaType: string;
  artifactType: string | null;
  kind: string;
  size: number;
  platforms: Platform[];
  pushedAt: string | null;
  pulledAt: string | null;
  /** verified: null when the list did not verify (the artifact's signatures endpoint does). */
  signatures: { count: number; verified: boolean | null };
  scan: { status: string; critical: number; high: number; medium: number; low: number; unknown: number } | null;
  sbom: boolean;
}

export interface Descriptor {
  digest: string;
  mediaType: string;
  artifactType?: string | null;
  kind?: string;
  size: number;
  annotations?: Record<string, string> | null;
}

export interface Artifact {
  digest: string;
  mediaType: string;
  artifactType: string | null;
  kind: string;
  size: number;
  manifest: Record<string, unknown>;
  config: Record<string, unknown> | null;
  layers: Descriptor[];
  platforms: Platform[];
  referrers: Descriptor[];
  tags: string[];
  pushedAt: string | null;
}

export interface SearchResult {
  repositories: { name: string; project: string | null }[];
  tags: { repository: string; tag: string; digest: string }[];
}

export interface BatchDelete {
  deleted: string[];
  failed: { tag: string; code: string; message: string }[];
}

export interface Member {
  project?: string;
  username: string;
  role: string;
}

export interface Robot {
  name: string;
  project: string | null;
  description: string | null;
  permissions: { project: string; repository: string; actions: string[] }[];
  expiresAt: string | null;
  createdBy: string | null;
  createdAt: string;
  secret?: string;
}

export interface ImmutableRule {
  id: number;
  repository: { decoration: string; pattern: string } | string;
  tag: { decoration: string; pattern: string } | string;
  disabled: boolean;
}

export interface RetentionRule {
  template: 'latestPushedK' | 'latestPulledN' | 'nDaysSinceLastPush' | 'nDaysSinceLastPull' | 'always';
  count?: number;
  days?: number;
  repositories?: { decoration: 'matches' | 'excludes'; pattern: string };
  tags?: { decoration: 'matches' | 'excludes'; pattern: string; untagged?: boolean };
  disabled?: boolean;
}

export interface RetentionPolicy {
  project: string;
  rules: RetentionRule[];
  schedule: string | null;
  nextRunAt: string | null;
}

export interface RetentionRun {
  id: number;
  project: string;
  dryRun: boolean;
  status: 'running' | 'ok' | 'failed';
  startedAt: string;
  finishedAt: string | null;
  summary: Record<string, number> | { error: string } | null;
  report?: {
    totals: Record<string, number>;
    repositories: {
      repository: string;
      kept: { tag: string; digest: string; reasons: string[] }[];
      removed: { tag: string; digest: string }[];
      refused: { tag: string; digest: string; reason: string }[];
    }[];
  } | null;
}

export interface Webhook {
  id: number;
  name?: string;
  url: string;
  events?: string[];
  enabled?: boolean;
  [key: string]: unknown;
}

export interface Delivery {
  id: number;
  status?: string;
  event?: string;
  attempts?: number;
  createdAt?: string;
  [key: string]: unknown;
}

export interface SignatureStatus {
  verified: boolean;
  policy?: { mode: string };
  signatures: {
    format: string;
    source: { kind: string; tag?: string };
    manifest: string;
    valid: boolean;
    reason?: string;
    signer?: { kind?: string; name?: string; fingerprint?: string; subject?: string };
    signedAt?: string;
  }[];
}

export interface VulnReport {
  digest: string;
  status: 'complete' | 'failed';
  scannedAt: number;
  packages: number;
  summary: Record<string, number>;
  findings: { id: string; aliases: string[]; summary: string | null; package: string; installed: string; fixed: string | null; severity: string; links: string[] }[];
  error: string | null;
}

export interface TagHistoryEntry {
  id: number;
  tag: string;
  oldDigest: string | null;
  newDigest: string | null;
  at: string;
  actor: string | null;
  via: string | null;
}

export interface User {
  username: string;
  admin: boolean;
  email?: string | null;
  [key: string]: unknown;
}

export interface Job {
  name: string;
  schedule?: string | null;
  nextRunAt?: string | null;
  running?: boolean;
  [key: string]: unknown;
}

export interface AuditEntry {
  id?: number;
  at?: string;
  time?: string;
  actor?: string;
  action?: string;
  resource?: string;
  [key: string]: unknown;
}

// Forms of the settings and administration views (helper/uiforms).
export interface WebhookPolicy {
  id: number;
  project: string;
  name: string;
  url: string;
  format: 'distribution' | 'distribution-v2' | 'harbor' | 'cloudevents';
  events: string[];
  repositories: string[];
  tags: string[];
  enabled: boolean;
  hasAuthHeader: boolean;
  hasSecret: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface RegistryEndpoint {
  id: number;
  name: string;
  url: string;
  kind: 'distribution' | 'berth' | 'harbor' | 'docker-hub' | 'other';
  description: string;
  username: string | null;
  hasCredential: boolean;
  insecure: boolean;
  hasCaBundle: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface PingResult {
  ok: boolean;
  status: number;
  auth: string;
  apiVersion: string | null;
  latencyMs: number;
  reason?: string | null;
}

export interface ReplicationPolicy {
  id: number;
  name: string;
  description: string;
  direction: 'push' | 'pull';
  registry: string;
  repositories: string[];
  tags: string[];
  artifactTypes: string[];
  onlySigned: boolean;
  destNamespace: string | null;
  flatten: number;
  trigger: 'manual' | 'cron' | 'event';
  cron: string | null;
  override: boolean;
  deletion: boolean;
  concurrency: number;
  bandwidth: number | null;
  enabled: boolean;
}

export interface ReplicationExecution {
  id: number;
  policy: string;
  trigger: string;
  status: string;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  copied: number;
  skipped: number;
  failed: number;
  deleted: number;
  bytes: number;
  error: string | null;
}

export interface ReplicationTask {
  id: number;
  sourceRepository: string;
  destRepository: string;
  reference: string;
  digest: string | null;
  status: 'copied' | 'skipped' | 'failed' | 'deleted';
  reason: string | null;
  bytes: number;
  durationMs: number;
  finishedAt: number;
}

export interface ProxyBinding {
  project: string;
  endpoint: string | null;
  namespace: string | null;
  tagTtlSeconds: number;
  keepDeletedTags: boolean | null;
}

export interface SignaturePolicy {
  project: string;
  mode: 'off' | 'audit' | 'enforce';
  inheritIndex: boolean;
  keys: { id: number; name: string; kind: string; fingerprint: string; [key: string]: unknown }[];
  updatedBy: string | null;
  updatedAt: string | null;
}

export interface VulnPolicy {
  mode: 'off' | 'audit' | 'enforce';
  severity: 'low' | 'medium' | 'high' | 'critical';
  allowlist: string[];
  unscanned: 'allow' | 'deny' | 'grace';
  graceSeconds: number;
  inheritIndex: boolean;
  [key: string]: unknown;
}
