import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { RequestCredentials } from '../../auth/access.js';
import type { Actor } from '../../auth/accounts.js';
import type { Identity } from '../../auth/identity.js';
import type { OidcService } from '../../auth/oidc/service.js';
import type { AuthService } from '../../auth/service.js';
import type { BrowserSessions } from '../../auth/sessions.js';
import type { BrowseFeature } from './browse.js';
import type { GarbageCollector } from '../../gc/collector.js';
import type { StorageUsageQueries } from '../../gc/ports.js';
import type { JobRunStore } from '../../jobs/ports.js';
import type { JobInfo } from '../../jobs/scheduler.js';
import type { TagsService } from '../../tags/service.js';
import type { RetentionService } from '../../retention/service.js';
import type { QuotaService } from '../../quotas/service.js';
import type { WebhookService } from '../../webhooks/service.js';
import type { SignatureService } from '../../signatures/service.js';
import type { ArtifactScanner } from '../../scanning/scanner.js';
import type { SupplyChainService } from '../../scanning/supply-chain.js';
import type { SbomService } from '../../sbom/service.js';
import type { VulnPolicyService } from '../../scanning/policy-service.js';
import type { RegistryService } from '../../registries/service.js';
import type { ProxyCacheService } from '../../registries/proxy-service.js';
import type { ReplicationService } from '../../replication/service.js';

export type { ApiAccess } from '../../auth/permissions.js';

/** Optional features whose endpoints live under /api/v1 (buildApp's `gc` option). */
export interface ApiFeatures {
  /** The web UI's browse endpoints: system info, search, repositories, tags, artifacts, job runs (src/browse). */
  browse?: BrowseFeature;
  /** /api/v1/session: browser sessions of the web UI; their cookie authenticates /api/v1 calls (src/auth/sessions.ts). */
  sessions?: BrowserSessions;
  /** /api/v1/oidc/… browser login and /api/v1/users/:username/cli-secret (src/auth/oidc). */
  oidc?: OidcService;
  gc?: { collector: GarbageCollector; usage: StorageUsageQueries };
  /** GET /api/v1/jobs: the scheduler's jobs and the run history (src/jobs). */
  jobs?: { list(): JobInfo[]; history: JobRunStore };
  /** GET/PUT /api/v1/projects/:project/quota, GET /api/v1/quotas (src/quotas). */
  quotas?: QuotaService;
  /** /api/v1/projects/:project/retention[/runs] (src/retention). */
  retention?: RetentionService;
  /** /api/v1/projects/:project/immutable-rules, /api/v1/repositories/:name/tag-history and …/restore (src/tags). */
  tags?: TagsService;
  /** /api/v1/projects/:project/webhooks[…] and /api/v1/webhooks/deliveries[…] (src/webhooks). */
  webhooks?: WebhookService;
  /** /api/v1/projects/:project/signature-policy[…] and …/artifacts/:digest/signatures (src/signatures). */
  signatures?: SignatureService;
  /** …/artifacts/:digest/vulnerabilities and …/scan: vulnerability scans against the offline database (src/scanning). */
  scanning?: ArtifactScanner;
  /** …/artifacts/:digest/sbom: SBOMs generated from image layers or pushed by clients (src/sbom). */
  sbom?: SbomService;
  /** /api/v1/projects/:project/supply-chain[…] and /api/v1/supply-chain/status: SBOM and scan on push, backfill, rescans (src/scanning). */
  supplyChain?: SupplyChainService;
  /** /api/v1/projects/:project/vulnerability-policy: vulnerability pull policies (src/scanning/policy.ts). */
  vulnPolicy?: VulnPolicyService;
  /** /api/v1/registries[…]: remote registry endpoints and their connection test (src/registries). */
  registries?: RegistryService;
  /** /api/v1/proxy-cache and /api/v1/projects/:project/proxy-cache: pull-through cache projects (src/registries). */
  proxyCache?: ProxyCacheService;
  /** The default tag TTL of a new cache project (proxy.tagttl), ms. */
  proxyCacheDefaultTtlMs?: number;
  /** /api/v1/replication/…: replication policies, executions and tasks (src/replication). */
  replication?: ReplicationService;
}

export interface ApiContext {
  auth: AuthService;
  features: ApiFeatures;
  identity: Identity;
  actor: Actor;
  credentials: RequestCredentials;
  params: Record<string, string>;
  query: Record<string, string | undefined>;
  body: unknown;
  request: FastifyRequest;
  reply: FastifyReply;
}

/**
 * One admin-API endpoint: the same table registers the routes and writes openapi.json. Who
 * may call it is not declared here but in API_OPERATIONS (src/auth/permissions.ts), the
 * permission table; a route missing there refuses to register.
 */
export interface ApiRoute {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Fastify path under /api/v1, e.g. /projects/:project/members/:username */
  path: string;
  summary: string;
  body?: z.ZodType;
  /** The query parameters it takes (for openapi.json; the handler validates them). */
  query?: z.ZodObject;
  /**
   * The JSON body of a successful answer, for openapi.json (`responses[status]`; schemas given an
   * id with `.meta({ id })` become components.schemas). Every route that answers with a JSON body
   * declares one; with BERTH_API_CHECK_RESPONSES=1 (the tests) each answer is checked against it.
   */
  response?: z.ZodType;
  /** Status of a successful answer (default 200; 204 sends no body). A handler may set another on ctx.reply. */
  status?: number;
  handler(ctx: ApiContext): Promise<unknown>;
}
