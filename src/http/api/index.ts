import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Actor } from '../../auth/accounts.js';
import { ANONYMOUS, identityName, type Identity } from '../../auth/identity.js';
import { apiOperation, type ApiOperation } from '../../auth/permissions.js';
import type { AuthService } from '../../auth/service.js';
import { RegistryError } from '../../core/errors.js';
import { credentialsReader } from '../credentials.js';
import { auditRoutes } from './audit.js';
import { bindingRoutes } from './bindings.js';
import { gcRoutes } from './gc.js';
import { jobRoutes } from './jobs.js';
import { oidcRoutes } from './oidc.js';
import { projectRoutes } from './projects.js';
import { retentionRoutes } from './retention.js';
import { quotaRoutes } from './quotas.js';
import type { ApiFeatures, ApiRoute } from './route.js';
import { robotRoutes } from './robots.js';
import { tagRoutes } from './tags.js';
import { userRoutes } from './users.js';
import { webhookRoutes } from './webhooks.js';
import { signatureRoutes } from './signatures.js';
import { scanningRoutes } from './scanning.js';
import { supplyChainRoutes } from './supply-chain.js';
import { vulnPolicyRoutes } from './vuln-policy.js';
import { sbomRoutes } from './sbom.js';
import { proxyCacheRoutes, registryRoutes } from './registries.js';
import { replicationRoutes } from './replication.js';
import { sessionCookie, sessionRoutes } from './session.js';
import { browseRoutes } from './browse.js';
import { BrowserSessions, CSRF_HEADER } from '../../auth/sessions.js';
import { isSystemAdmin } from '../../auth/identity.js';

export const API_PREFIX = '/api/v1';
const JSON_LIMIT = 1024 * 1024;
const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const identities = new WeakMap<FastifyRequest, Identity>();

/** The authenticated caller of an /api request (set by the gate). */
export function apiIdentity(request: FastifyRequest): Identity {
  return identities.get(request) ?? ANONYMOUS;
}

export function apiActor(request: FastifyRequest): Actor {
  return { name: identityName(apiIdentity(request)) || 'anonymous', ip: request.ip };
}

/** Every admin-API route this server serves, given its features: the one route table. */
export function apiRoutes(features: ApiFeatures): ApiRoute[] {
  // One entry per line: features add theirs at the end.
  return [
    ...userRoutes,
    ...sessionRoutes,
    ...projectRoutes,
    ...robotRoutes,
    ...auditRoutes,
    ...bindingRoutes,
    ...(features.oidc ? oidcRoutes : []),
    ...(features.gc ? gcRoutes : []),
    ...(features.jobs ? jobRoutes : []),
    ...(features.quotas ? quotaRoutes : []),
    ...(features.retention ? retentionRoutes : []),
    ...(features.tags ? tagRoutes : []),
    ...(features.webhooks ? webhookRoutes : []),
    ...(features.signatures ? signatureRoutes : []),
    ...(features.scanning ? scanningRoutes : []),
    ...(features.sbom ? sbomRoutes : []),
    ...(features.supplyChain ? supplyChainRoutes : []),
    ...(features.vulnPolicy ? vulnPolicyRoutes : []),
    ...(features.registries ? registryRoutes : []),
    ...(features.proxyCache ? proxyCacheRoutes : []),
    ...(features.replication ? replicationRoutes : []),
    ...(features.browse ? browseRoutes : []),
  ];
}

/**
 * The admin REST API under /api/v1. Each route comes from the route table (apiRoutes) and is
 * gated by its row in the permission table (API_OPERATIONS, src/auth/permissions.ts) before its
 * handler runs; openapi.json is generated from the same table.
 */
export function registerAdminApi(app: FastifyInstance, auth: AuthService, features: ApiFeatures = {}): void {
  const credentials = credentialsReader(auth.baseUrl);
  const gated = new WeakSet<ApiOperation>();

  // Deny-by-default safety net, not the source of truth: an /api/ request that matched no table
  // route (an unknown path, or an endpoint registered outside the table) needs a system admin.
  // Judged by the matched route as well as the raw URL, so no spelling of a path slips past.
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/api/') && !(request.routeOptions.url ?? '').startsWith('/api/')) return;
    const operation = (request.routeOptions.config as { apiOperation?: ApiOperation } | undefined)?.apiOperation;
    if (operation && gated.has(operation)) return;
    identities.set(request, await gate(request, 'admin'));
  });

  /**
   * Who the caller is, for a route of `access`: a browser session cookie (only when no
   * Authorization header is sent; mutating calls must echo the session's CSRF token), else
   * Basic credentials or an API token (AuthService.authorizeApi). POST /session signs in with
   * a password whatever cookie the browser still holds.
   */
  const gate = async (request: FastifyRequest, access: ApiOperation['access'], operation?: ApiOperation): Promise<Identity> => {
    const sessions = features.sessions;
    const signingIn = operation?.method === 'POST' && operation.path === '/session';
    if (sessions && auth.mode !== 'none' && request.headers.authorization === undefined && !signingIn) {
      const id = sessionCookie(request);
      if (id !== undefined) {
        const live = await sessions.resolve(id);
        if (live) {
          if (MUTATING.has(request.method)) {
            const given = request.headers[CSRF_HEADER];
            if (!BrowserSessions.csrfMatches(live, typeof given === 'string' ? given : undefined)) {
              throw new RegistryError(
                'DENIED',
                `${given === undefined ? 'missing' : 'wrong'} CSRF token: a ${request.method} signed in by the session cookie must send the X-CSRF-Token header that /api/v1/session answered`,
              );
            }
          }
          if (access === 'admin' && !isSystemAdmin(live.identity))
            throw new RegistryError('DENIED', 'this operation needs a system administrator');
          return live.identity;
        }
        // A stale cookie: 401 without a challenge, so the browser shows the UI's sign-in page, not its own dialog.
        if (access !== 'public')
          throw new RegistryError('UNAUTHORIZED', 'the browser session has expired or was signed out; sign in again');
      }
    }
    return auth.authorizeApi(credentials(request), access);
  };

  const routes = apiRoutes(features);
  // Built at the first GET /openapi.json, not at start: the document (every route's zod schemas
  // turned into JSON Schema) is ~1 MB of heap that an idle worker never needs (issue 19).
  let document: Promise<Record<string, unknown>> | undefined;
  const documentRoute = openApiRoute(
    () => (document ??= import('./openapi.js').then(({ openApiDocument }) => openApiDocument([...routes, documentRoute], API_PREFIX))),
  );
  app.register(
    async (scope) => {
      // Only the admin API parses JSON; /v2 streams its bodies untouched.
      scope.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: JSON_LIMIT }, (_request, body, done) => {
        try {
          done(null, body === '' ? undefined : JSON.parse(body as string));
        } catch {
          done(new RegistryError('INVALID_ARGUMENT', 'request body is not valid JSON'), undefined);
        }
      });
      for (const route of [...routes, documentRoute]) {
        const operation = apiOperation(route.method, route.path);
        gated.add(operation);
        registerRoute(scope, auth, features, route, operation, credentials, gate);
      }
    },
    { prefix: API_PREFIX },
  );
}

/** The response schema of GET /openapi.json (an OpenAPI 3.1 document). */
export const OPENAPI_DOCUMENT = z.lazy(() => z.record(z.string(), z.unknown()).describe('an OpenAPI 3.1 document'));

function openApiRoute(document: () => Promise<Record<string, unknown>>): ApiRoute {
  return {
    method: 'GET',
    path: '/openapi.json',
    summary: 'This document (OpenAPI 3.1)',
    response: OPENAPI_DOCUMENT,
    handler: async () => document(),
  };
}

function registerRoute(
  scope: FastifyInstance,
  auth: AuthService,
  features: ApiFeatures,
  route: ApiRoute,
  operation: ApiOperation,
  credentials: ReturnType<typeof credentialsReader>,
  gate: (request: FastifyRequest, access: ApiOperation['access'], operation: ApiOperation) => Promise<Identity>,
): void {
  const check = process.env.BERTH_API_CHECK_RESPONSES === '1';
  scope.route({
    method: route.method,
    url: route.path,
    config: { apiOperation: operation },
    // The gate: the route's row in the permission table, before the body is even parsed.
    onRequest: async (request) => {
      identities.set(request, await gate(request, operation.access, operation));
    },
    handler: async (request, reply) => {
      const body = route.body ? parseBody(route.body, request.body) : undefined;
      reply.code(route.status ?? 200);
      const result = await route.handler({
        auth,
        features,
        identity: apiIdentity(request),
        actor: apiActor(request),
        credentials: credentials(request),
        params: request.params as Record<string, string>,
        query: request.query as Record<string, string | undefined>,
        body,
        request,
        reply,
      });
      if (reply.statusCode === 204) return reply.send();
      if (check && route.response && !reply.sent) checkResponse(route, result, request);
      return result;
    },
  });
}

/**
 * BERTH_API_CHECK_RESPONSES=1 (set by the tests, off in production; read when the routes register): every answer is parsed with
 * its route's response schema, as JSON would carry it, so openapi.json cannot drift from what
 * the handlers send. A mismatch answers 500 naming the route and the zod issues, and is logged.
 */
function checkResponse(route: ApiRoute, result: unknown, request: FastifyRequest): void {
  const sent: unknown = result === undefined ? undefined : JSON.parse(JSON.stringify(result));
  const parsed = route.response!.safeParse(sent);
  if (parsed.success) return;
  const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
  const message = `response of ${route.method} ${API_PREFIX}${route.path} does not match its schema: ${issues}`;
  request.log.error({ route: `${route.method} ${route.path}`, issues: parsed.error.issues }, message);
  throw new RegistryError('UNKNOWN', message, { route: `${route.method} ${API_PREFIX}${route.path}`, issues: parsed.error.issues });
}

function parseBody(schema: z.ZodType, body: unknown): unknown {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  throw new RegistryError(
    'INVALID_ARGUMENT',
    `invalid request body: ${issues.map((i) => `${i.path || '(body)'}: ${i.message}`).join('; ')}`,
    issues,
  );
}
