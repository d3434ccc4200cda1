import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Actor } from '../../auth/accounts.js';
import { ANONYMOUS, basicCredentials, bearerToken, identityName, isSystemAdmin, type Identity } from '../../auth/identity.js';
import { BASIC_CHALLENGE } from '../../auth/policies.js';
import type { AuthService } from '../../auth/service.js';
import { RegistryError } from '../../core/errors.js';
import { auditRoutes } from './audit.js';
import { openApiDocument } from './openapi.js';
import { projectRoutes } from './projects.js';
import type { ApiAccess, ApiRoute } from './route.js';
import { robotRoutes } from './robots.js';
import { userRoutes } from './users.js';

export const API_PREFIX = '/api/v1';
const JSON_LIMIT = 1024 * 1024;

/** With auth: none there are no accounts: every caller acts as an administrator. */
const OPEN_ADMIN: Identity = { kind: 'user', name: 'anonymous', admin: true };

const identities = new WeakMap<FastifyRequest, Identity>();

/** The authenticated caller of an /api request (set by the hook below). */
export function apiIdentity(request: FastifyRequest): Identity {
  return identities.get(request) ?? ANONYMOUS;
}

export function apiActor(request: FastifyRequest): Actor {
  return { name: identityName(apiIdentity(request)) || 'anonymous', ip: request.ip };
}

/**
 * The admin REST API under /api/v1. Authentication and the coarse access check run in a
 * root-level hook for EVERY /api/ path, so endpoints other modules add there (gc, storage)
 * are admin-only unless their route config says `{ access: 'user' | 'public' }`.
 */
export function registerAdminApi(app: FastifyInstance, auth: AuthService): void {
  app.addHook('onRequest', async (request) => {
    // Judged by the matched route as well as the raw URL, so no spelling of a path slips past.
    if (!request.url.startsWith('/api/') && !(request.routeOptions.url ?? '').startsWith('/api/')) return;
    const access = (request.routeOptions.config as { access?: ApiAccess } | undefined)?.access ?? 'admin';
    const identity = await authenticate(auth, request, access);
    identities.set(request, identity);
    if (access === 'admin' && !isSystemAdmin(identity)) throw new RegistryError('DENIED', 'this operation needs a system administrator');
  });

  const routes: ApiRoute[] = [...userRoutes, ...projectRoutes, ...robotRoutes, ...auditRoutes];
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
      for (const route of routes) registerRoute(scope, auth, route);
      const document = openApiDocument(routes, API_PREFIX);
      scope.get('/openapi.json', { config: { access: 'public' } }, async () => document);
    },
    { prefix: API_PREFIX },
  );
}

function registerRoute(scope: FastifyInstance, auth: AuthService, route: ApiRoute): void {
  scope.route({
    method: route.method,
    url: route.path,
    config: { access: route.access },
    handler: async (request, reply) => {
      const body = route.body ? parseBody(route.body, request.body) : undefined;
      const result = await route.handler({
        auth,
        identity: apiIdentity(request),
        actor: apiActor(request),
        params: request.params as Record<string, string>,
        query: request.query as Record<string, string | undefined>,
        body,
        request,
        reply,
      });
      reply.code(route.status ?? 200);
      return route.status === 204 ? reply.send() : result;
    },
  });
}

function parseBody(schema: z.ZodType, body: unknown): unknown {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  throw new RegistryError('INVALID_ARGUMENT', `invalid request body: ${issues.map((i) => `${i.path || '(body)'}: ${i.message}`).join('; ')}`, issues);
}

/** Basic credentials or a Bearer token from this server (or the external issuer); anonymous only for public routes. */
async function authenticate(auth: AuthService, request: FastifyRequest, access: ApiAccess): Promise<Identity> {
  if (auth.mode === 'none') return OPEN_ADMIN;
  const challenge = auth.mode === 'basic' ? BASIC_CHALLENGE : { 'www-authenticate': `Bearer realm="${auth.config.token.realm ?? `${auth.baseUrl(request)}/token`}",service="${auth.config.token.service}"` };
  const credentials = basicCredentials(request);
  if (credentials) return auth.authenticator.login(credentials.username, credentials.password, request.ip, challenge);
  const token = bearerToken(request);
  if (token && auth.verifier) {
    const identity = await identityFromToken(auth, token);
    if (identity) return identity;
    throw new RegistryError('UNAUTHORIZED', 'invalid token', null, challenge);
  }
  if (access === 'public') return ANONYMOUS;
  throw new RegistryError('UNAUTHORIZED', 'authentication required', null, challenge);
}

async function identityFromToken(auth: AuthService, token: string): Promise<Identity | null> {
  try {
    const verified = await auth.verifier!.verify(token);
    if (!auth.issuer) return verified.subject ? { kind: 'external', name: verified.subject } : null;
    const identity = await auth.authenticator.current(verified.subject);
    return identity && identity.kind !== 'anonymous' ? identity : null;
  } catch {
    return null;
  }
}
